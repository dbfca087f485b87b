// The fleet: each instance's tags, health, the revision it serves and its app.

import { get } from "../api.js";
import { badge, enc, h, link, replace, when } from "../dom.js";

export function fleetView() {
  let instances = [];
  const body = h("div");
  const view = {
    title: "Fleet",
    async load() {
      ({ instances } = await get("/instances"));
    },
    render() {
      paint();
      return h("div", {}, h("h1", {}, "Fleet"),
        h("p", { class: "muted" }, "Instances are agent containers; launch more with ", h("code", {}, "pipelocal instances launch --count N --tag Key=Value"), "."),
        body);
    },
    wants: (change) => change.kind === "deployment-target" || change.kind === "deployment",
    async refresh() {
      await view.load();
      paint();
    },
  };
  function paint() {
    if (!instances.length) {
      replace(body, h("p", {}, "No instances are running."));
      return;
    }
    replace(body, h("div", { class: "table-wrap" }, h("table", { class: "list fleet" },
      h("caption", { class: "visually-hidden" }, "Instances"),
      h("thead", {}, h("tr", {}, ["Instance", "Tags", "Health", "Serving", "App", "Launched"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, instances.map((i) => {
        const revision = i.revision || {};
        return h("tr", { dataset: { instance: i.instanceId } },
          h("th", { scope: "row" }, i.name || i.instanceId, h("br"), h("span", { class: "mono muted" }, i.instanceId)),
          h("td", {}, h("ul", { class: "tags" }, Object.entries(i.tags || {}).map(([k, v]) => h("li", {}, h("code", {}, `${k}=${v}`))))),
          h("td", {}, badge(i.state, health(i)), i.privateIpAddress ? h("div", { class: "mono muted" }, i.privateIpAddress) : null),
          h("td", { dataset: { field: "revision" } }, revision.deploymentId
            ? [link(`#/deployments/${enc(revision.deploymentId)}`, revision.deploymentId), h("div", { class: "muted" }, revision.description || "")]
            : h("span", { class: "muted" }, "Nothing deployed yet")),
          h("td", {}, i.appUrl && i.state === "running" ? h("a", { href: i.appUrl, target: "_blank", rel: "noopener" }, "Open the app", h("span", { class: "visually-hidden" }, ` on ${i.name || i.instanceId}`)) : "–"),
          h("td", {}, when(i.launchTime)));
      })))));
  }
  return view;
}

function health(instance) {
  if (instance.state !== "running") return instance.state || "unknown";
  return instance.agentRegistered ? "running, agent registered" : "running, agent not registered yet";
}
