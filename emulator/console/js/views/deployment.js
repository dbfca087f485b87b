// One deployment: the instance × lifecycle-event grid, each event's script output, the
// configuration's success rule in one line, and the link between a failure and its rollback.

import { get } from "../api.js";
import { badge, duration, enc, h, link, replace, section, when } from "../dom.js";
import { rollbackMarker } from "./execution.js";

export function deploymentView(id) {
  let deployment;
  let trigger = null; // the deployment this one rolls back
  let selected = null; // [instanceId, eventName]
  const facts = h("div");
  const grid = h("div");
  const output = h("div", { class: "output", "aria-live": "polite" },
    h("p", { class: "muted" }, "Choose a lifecycle event in the grid to see its script output."));
  const view = {
    title: `Deployment ${id}`,
    async load() {
      deployment = await get(`/deployments/${enc(id)}`);
      const of = (deployment.rollbackInfo || {}).rollbackTriggeringDeploymentId;
      trigger = of ? await get(`/deployments/${enc(of)}`).catch(() => null) : null;
    },
    render() {
      paint();
      return h("div", {},
        h("p", { class: "crumbs" }, link("#/pipelines", "Pipelines"), " / deployment"),
        h("h1", {}, `Deployment ${id}`),
        facts,
        section("Instances and lifecycle events", grid),
        section("Script output", output));
    },
    wants: (change) => (change.kind === "deployment" && change.id === id) ||
      (change.kind === "deployment-target" && change.detail.deploymentId === id),
    async refresh() {
      await view.load();
      // a live repaint keeps the keyboard where it was: on the same grid cell, or in the output
      const cell = document.activeElement && document.activeElement.closest("td[data-event]");
      const where = cell ? [cell.dataset.instance, cell.dataset.event] : null;
      const inOutput = output.contains(document.activeElement);
      paint();
      if (where) {
        const again = grid.querySelector(`td[data-instance="${CSS.escape(where[0])}"][data-event="${CSS.escape(where[1])}"] button`);
        if (again) again.focus();
      }
      if (selected) await show(...selected, inOutput);
    },
  };

  function paint() {
    const d = deployment;
    const overview = d.deploymentOverview || {};
    const alarmStop = [d, trigger].find((x) => x && (x.errorInformation || {}).code === "ALARM_ACTIVE" &&
      (x.rollbackInfo || {}).rollbackDeploymentId);
    replace(facts, h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", { dataset: { field: "status" } }, badge(d.status)),
      rollbackMarker(d) ? [h("dt", {}, "Rollback"), h("dd", {}, rollbackMarker(d), d.rollbackInfo.rollbackMessage ? h("span", { class: "muted" }, ` — ${d.rollbackInfo.rollbackMessage}`) : null)] : null,
      alarmStop ? [h("dt", {}, "Why"), h("dd", {}, link(`#/why-rollback/${enc(alarmStop.deploymentId)}`,
        "Why it rolled back: the alarm timeline", { dataset: { whyRollback: alarmStop.deploymentId } }))] : null,
      d.errorInformation ? [h("dt", {}, "Error"), h("dd", { class: "error-text" }, `${d.errorInformation.code}: ${d.errorInformation.message}`)] : null,
      h("dt", {}, "Configuration"), h("dd", { dataset: { field: "configuration" } }, d.configurationExplained || d.deploymentConfigName),
      h("dt", {}, "Application"), h("dd", {}, `${d.applicationName} / ${d.deploymentGroupName}`),
      h("dt", {}, "Revision"), h("dd", { class: "mono" }, revisionText(d.revision), d.description ? h("span", { class: "muted" }, ` (${d.description})`) : null),
      h("dt", {}, "Automatic rollback"), h("dd", {}, d.autoRollbackConfiguration && d.autoRollbackConfiguration.enabled
        ? `on ${(d.autoRollbackConfiguration.events || []).join(", ")}` : "off"),
      h("dt", {}, "Instances"), h("dd", {}, Object.entries(overview).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(", ") || "–"),
      h("dt", {}, "Started"), h("dd", {}, when(d.startTime || d.createTime)),
      h("dt", {}, "Duration"), h("dd", {}, duration(d.startTime || d.createTime, d.completeTime || d.endTime))));

    const targets = d.targets || [];
    if (!targets.length) {
      replace(grid, h("p", { class: "muted" }, d.status === "Created" || d.status === "Queued" ? "Choosing instances…" : "No instances matched this deployment group."));
      return;
    }
    const events = [];
    for (const t of targets) for (const e of t.lifecycleEvents || []) if (!events.includes(e.lifecycleEventName)) events.push(e.lifecycleEventName);
    // Lifecycle events down, instances across: the events are many and fixed, the fleet is small,
    // so the grid fits a phone and fills top to bottom as the deployment runs.
    const byInstance = Object.fromEntries(targets.map((t) => [t.instanceId,
      Object.fromEntries((t.lifecycleEvents || []).map((e) => [e.lifecycleEventName, e]))]));
    replace(grid, h("div", { class: "table-wrap" }, h("table", { class: "grid" },
      h("caption", { class: "visually-hidden" }, "Each instance's lifecycle events; choose one to see its script output"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Lifecycle event"),
        targets.map((t) => h("th", { scope: "col", dataset: { instance: t.instanceId } }, t.name || t.instanceId,
          h("br"), h("span", { class: "mono muted" }, t.instanceId))))),
      h("tbody", {},
        h("tr", { class: "overall" }, h("th", { scope: "row" }, "Instance status"),
          targets.map((t) => h("td", { dataset: { instance: t.instanceId, status: t.status } }, badge(t.status)))),
        events.map((name) => h("tr", { dataset: { event: name } }, h("th", { scope: "row" }, name),
          targets.map((t) => {
            const e = byInstance[t.instanceId][name];
            if (!e) return h("td", { dataset: { instance: t.instanceId, event: name, status: "" } }, "–");
            return h("td", { dataset: { instance: t.instanceId, event: name, status: e.status } },
              h("button", { type: "button", class: "cell", "aria-label": `${t.name || t.instanceId} ${name}: ${e.status}. Show script output`,
                onclick: () => show(t.instanceId, name, true) }, badge(e.status)));
          })))))));
  }

  async function show(instanceId, eventName, focus) {
    selected = [instanceId, eventName];
    const target = (deployment.targets || []).find((t) => t.instanceId === instanceId);
    const event = target && (target.lifecycleEvents || []).find((e) => e.lifecycleEventName === eventName);
    if (!event) return;
    let text = "";
    try {
      text = (await get(`/deployments/${enc(id)}/instances/${enc(instanceId)}/events/${enc(eventName)}/log`)).log;
    } catch {
      text = "";
    }
    const diag = event.diagnostics || {};
    text = text || diag.logTail || "(no script output)";
    const heading = h("h3", { tabindex: "-1" }, `${target.name || instanceId} · ${eventName}`);
    replace(output,
      heading,
      h("p", {}, badge(event.status), " ", duration(event.startTime, event.endTime),
        diag.errorCode && diag.errorCode !== "Success"
          ? h("span", { class: "error-text" }, ` ${diag.errorCode}${diag.scriptName ? ` in ${diag.scriptName}` : ""}: ${(diag.message || "").split("\n")[0]}`) : null),
      h("pre", { class: "log", tabindex: "0", dataset: { instance: instanceId, event: eventName } }, text));
    if (focus) heading.focus();
  }
  return view;
}

function revisionText(revision) {
  const s3 = (revision || {}).s3Location;
  return s3 ? `s3://${s3.bucket}/${s3.key}` : JSON.stringify(revision || {});
}
