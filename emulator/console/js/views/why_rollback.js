// Why a deployment rolled back: the control plane's report as one timeline (deployment, lifecycle
// events, alarm changes, the stop, the rollback), the datapoints that breached, and what the fleet serves now.

import { get } from "../api.js";
import { badge, enc, h, link, replace, section } from "../dom.js";

function clock(t) {
  const d = new Date(t * 1000);
  return h("time", { datetime: d.toISOString(), title: d.toISOString() },
    d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) + `.${String(d.getMilliseconds()).padStart(3, "0")}`);
}

function kindOf(entry) {
  if (entry.source.startsWith("alarm ")) return "alarm";
  if (entry.source.startsWith("d-")) return "deployment";
  return "instance";
}

export function whyRollbackView(id) {
  let report;
  const body = h("div");
  const view = {
    title: `Why ${id} rolled back`,
    async load() {
      report = await get(`/cloudwatch/why-rollback/${enc(id)}`);
    },
    render() {
      paint();
      return h("div", { dataset: { page: "why-rollback" } },
        h("p", { class: "crumbs" }, link("#/metrics", "Metrics and alarms"), " / why it rolled back"),
        h("h1", {}, `Why ${report.deploymentId} rolled back`), body);
    },
    wants: (change) => change.kind === "metric-alarm" ||
      (change.kind === "deployment" && [report.deploymentId, report.rollbackDeploymentId].includes(change.id)),
    async refresh() {
      await view.load();
      paint();
    },
  };

  function paint() {
    const r = report;
    const start = r.timeline.length ? r.timeline[0].time : 0;
    const factor = r.timeScale || 1;
    replace(body,
      h("dl", { class: "facts" },
        h("dt", {}, "Deployment"), h("dd", {}, link(`#/deployments/${enc(r.deploymentId)}`, r.deploymentId), " ", badge(r.status)),
        r.errorInformation ? [h("dt", {}, "Stopped because"), h("dd", { class: "error-text" }, `${r.errorInformation.code}: ${r.errorInformation.message}`)] : null,
        h("dt", {}, "Rollback"), h("dd", {}, r.rollbackDeploymentId
          ? [link(`#/deployments/${enc(r.rollbackDeploymentId)}`, r.rollbackDeploymentId), " ", badge(r.rollbackStatus)]
          : "none"),
        h("dt", {}, "Alarms watched"), h("dd", {}, r.alarms.length ? r.alarms.join(", ") : "none")),
      section("Timeline", r.timeline.length
        ? h("ol", { class: "timeline" }, r.timeline.map((e) => h("li", { dataset: { kind: kindOf(e), source: e.source } },
          h("span", { class: "when" }, clock(e.time), h("span", { class: "muted" }, ` +${((e.time - start) * factor).toFixed(1)} s`)),
          h("span", { class: "kind" }, kindOf(e)),
          h("span", { class: "what" }, h("strong", {}, e.source), " ", e.text))))
        : h("p", {}, "Nothing happened yet.")),
      h("p", { class: "muted" }, factor === 1 ? "Offsets are seconds from the first event."
        : `Offsets are emulated seconds from the first event (time ×${factor}); clock times are real.`),
      section("Datapoints that breached", r.breachingDatapoints.length
        ? h("div", { class: "table-wrap" }, h("table", { class: "list breaching" },
          h("thead", {}, h("tr", {}, ["Alarm", "Period starting", "Value"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, r.breachingDatapoints.map((p) => h("tr", {}, h("td", {}, p.alarm), h("td", {}, clock(p.timestamp)), h("td", {}, String(p.value)))))))
        : h("p", {}, "No breaching datapoints were recorded (an alarm set by hand, or one that could not be read).")),
      section("What the fleet serves now", h("div", { class: "table-wrap" }, h("table", { class: "list served" },
        h("thead", {}, h("tr", {}, ["Instance", "Deployment it serves", "Answer"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, r.servedNow.map((s) => h("tr", {},
          h("th", { scope: "row" }, s.name || s.instanceId),
          h("td", {}, s.revisionDeployment ? link(`#/deployments/${enc(s.revisionDeployment)}`, s.revisionDeployment) : "–"),
          h("td", {}, s.status ? `${s.status} ${s.title || ""}` : (s.error || "no answer")))))))));
  }
  return view;
}
