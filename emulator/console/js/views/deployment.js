// One deployment: the instance × lifecycle-event grid, each event's script output, the
// configuration's success rule in one line, and the link between a failure and its rollback.
// Behind a load balancer also: each instance's side (Blue original / Green replacement), the
// release's steps (deploymentStatusMessages) and the continue buttons while it waits.

import { get, post } from "../api.js";
import { badge, duration, enc, h, link, replace, section, when } from "../dom.js";
import { rollbackMarker } from "./execution.js";

export function deploymentView(id) {
  let deployment;
  let trigger = null; // the deployment this one rolls back
  let selected = null; // [instanceId, eventName]
  const facts = h("div");
  const waiting = h("div", { dataset: { field: "waiting" } });
  const steps = h("div");
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
        waiting,
        steps,
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
      const onButton = document.activeElement && waiting.contains(document.activeElement)
        ? document.activeElement.dataset.waitType : null;
      paint();
      if (onButton) {
        const again = waiting.querySelector(`button[data-wait-type="${onButton}"]`);
        if (again) again.focus();
      }
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
      h("dt", {}, "Status"), h("dd", { dataset: { field: "status" } }, statusBadge(d.status)),
      rollbackMarker(d) ? [h("dt", {}, "Rollback"), h("dd", {}, rollbackMarker(d), d.rollbackInfo.rollbackMessage ? h("span", { class: "muted" }, ` — ${d.rollbackInfo.rollbackMessage}`) : null)] : null,
      alarmStop ? [h("dt", {}, "Why"), h("dd", {}, link(`#/why-rollback/${enc(alarmStop.deploymentId)}`,
        "Why it rolled back: the alarm timeline", { dataset: { whyRollback: alarmStop.deploymentId } }))] : null,
      d.errorInformation ? [h("dt", {}, "Error"), h("dd", { class: "error-text" }, `${d.errorInformation.code}: ${d.errorInformation.message}`)] : null,
      h("dt", {}, "Configuration"), h("dd", { dataset: { field: "configuration" } }, d.configurationExplained || d.deploymentConfigName),
      d.deploymentStyle ? [h("dt", {}, "Type"), h("dd", { dataset: { field: "type" } }, styleText(d.deploymentStyle))] : null,
      d.loadBalancerInfo ? [h("dt", {}, "Load balancing"), h("dd", { dataset: { field: "load-balancing" } },
        loadBalancingText(d.loadBalancerInfo), " · ", link("#/load-balancers", "Load balancers page"))] : null,
      h("dt", {}, "Application"), h("dd", {}, `${d.applicationName} / ${d.deploymentGroupName}`),
      h("dt", {}, "Revision"), h("dd", { class: "mono" }, revisionText(d.revision), d.description ? h("span", { class: "muted" }, ` (${d.description})`) : null),
      h("dt", {}, "Automatic rollback"), h("dd", {}, d.autoRollbackConfiguration && d.autoRollbackConfiguration.enabled
        ? `on ${(d.autoRollbackConfiguration.events || []).join(", ")}` : "off"),
      h("dt", {}, "Instances"), h("dd", {}, Object.entries(overview).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(", ") || "–"),
      h("dt", {}, "Started"), h("dd", {}, when(d.startTime || d.createTime)),
      h("dt", {}, "Duration"), h("dd", {}, duration(d.startTime || d.createTime, d.completeTime || d.endTime))));

    paintWaiting();
    paintSteps();
    // Originals (Blue) before replacements (Green), each side in launch order.
    const side = (t) => ({ Blue: 0, Green: 1 }[t.instanceLabel] ?? 0);
    const targets = (d.targets || []).map((t, i) => [t, i]).sort((a, b) => side(a[0]) - side(b[0]) || a[1] - b[1]).map(([t]) => t);
    if (!targets.length) {
      replace(grid, h("p", { class: "muted" }, d.status === "Created" || d.status === "Queued" ? "Choosing instances…" : "No instances matched this deployment group."));
      return;
    }
    const events = eventOrder(targets, (d.deploymentStyle || {}).deploymentType === "BLUE_GREEN");
    // Lifecycle events down, instances across: the events are many and fixed, the fleet is small,
    // so the grid fits a phone and fills top to bottom as the deployment runs.
    const byInstance = Object.fromEntries(targets.map((t) => [t.instanceId,
      Object.fromEntries((t.lifecycleEvents || []).map((e) => [e.lifecycleEventName, e]))]));
    replace(grid, h("div", { class: "table-wrap" }, h("table", { class: "grid" },
      h("caption", { class: "visually-hidden" }, "Each instance's lifecycle events; choose one to see its script output"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Lifecycle event"),
        targets.map((t) => h("th", { scope: "col", dataset: { instance: t.instanceId, side: t.instanceLabel || "" } }, t.name || t.instanceId,
          h("br"), h("span", { class: "mono muted" }, t.instanceId),
          t.instanceLabel ? [h("br"), sideBadge(t.instanceLabel)] : null)))),
      h("tbody", {},
        h("tr", { class: "overall" }, h("th", { scope: "row" }, "Instance status"),
          targets.map((t) => h("td", { dataset: { instance: t.instanceId, status: t.status } }, badge(t.status)))),
        events.map((name) => h("tr", { dataset: { event: name } }, h("th", { scope: "row" }, name),
          targets.map((t) => {
            const e = byInstance[t.instanceId][name];
            if (!e) return h("td", { dataset: { instance: t.instanceId, event: name, status: "" } }, "–");
            return h("td", { dataset: { instance: t.instanceId, event: name, status: e.status } },
              h("button", { type: "button", class: "cell", "aria-label": `${t.name || t.instanceId}${t.instanceLabel ? ` (${t.instanceLabel})` : ""} ${name}: ${e.status}. Show script output`,
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
    text = text || diag.logTail || TRAFFIC_STEPS[eventName] || "(no script output)";
    const heading = h("h3", { tabindex: "-1" }, `${target.name || instanceId} · ${eventName}`);
    replace(output,
      heading,
      h("p", {}, badge(event.status), " ", duration(event.startTime, event.endTime),
        diag.errorCode && diag.errorCode !== "Success"
          ? h("span", { class: "error-text" }, ` ${diag.errorCode}${diag.scriptName ? ` in ${diag.scriptName}` : ""}: ${(diag.message || "").split("\n")[0]}`) : null),
      h("pre", { class: "log", tabindex: "0", dataset: { instance: instanceId, event: eventName } }, text));
    if (focus) heading.focus();
  }
  function paintWaiting() {
    const d = deployment;
    const ended = ["Succeeded", "Failed", "Stopped"].includes(d.status);
    const ready = d.status === "Ready";
    const terminating = d.instanceTerminationWaitTimeStarted && !ended;
    if (!ready && !terminating) {
      replace(waiting);
      return;
    }
    const message = h("p", { class: "message", role: "status" });
    const button = (waitType, label, lead) => h("div", {},
      h("p", {}, lead),
      h("button", { type: "button", class: "primary", dataset: { waitType }, onclick: async (e) => {
        e.target.disabled = true;
        try {
          await post(`/deployments/${enc(id)}/continue`, { deploymentWaitType: waitType });
          replace(message, `${waitType} continued; the deployment moves on.`);
        } catch (err) {
          e.target.disabled = false;
          replace(message, h("span", { class: "error-text" }, `${err.kind}: ${err.message}`));
        }
      } }, label));
    replace(waiting, h("div", { class: "waiting" },
      ready ? button("READY_WAIT", "Continue (reroute traffic)",
        "Ready: the replacement environment is installed and waits for a continue before traffic moves to it.") : null,
      terminating ? button("TERMINATION_WAIT", "End termination wait",
        "Traffic is on the replacement environment; the original instances wait to be terminated.") : null,
      message));
  }

  function paintSteps() {
    const messages = deployment.deploymentStatusMessages || [];
    if (!messages.length) {
      replace(steps);
      return;
    }
    replace(steps, section("Steps",
      h("ol", { class: "steps", "aria-live": "polite", dataset: { field: "steps" } }, messages.map((m) => h("li", {}, m)))));
  }
  return view;
}

// CodeDeploy's own steps run no script; say what they did instead of "no script output".
const TRAFFIC_STEPS = {
  BlockTraffic: "(BlockTraffic runs no script: CodeDeploy deregistered the instance from the target groups and waited for draining to end.)",
  AllowTraffic: "(AllowTraffic runs no script: CodeDeploy registered the instance in the target groups and waited for their health checks to report it healthy.)",
};

// Lifecycle events in the order they run: in place, traffic is blocked first and allowed last; in
// blue/green the replacements install and take traffic, then the originals block it.
const BLOCK = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"];
const INSTALL = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService"];
const ALLOW = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"];

export function eventOrder(targets, blueGreen) {
  const canonical = blueGreen ? [...INSTALL, ...ALLOW, ...BLOCK] : [...BLOCK, ...INSTALL, ...ALLOW];
  const seen = [];
  for (const t of targets) for (const e of t.lifecycleEvents || []) if (!seen.includes(e.lifecycleEventName)) seen.push(e.lifecycleEventName);
  const rank = (name) => (canonical.includes(name) ? canonical.indexOf(name) : canonical.length + seen.indexOf(name));
  return seen.sort((a, b) => rank(a) - rank(b));
}

// A deployment in Ready waits for someone: shown as waiting, not as done.
function statusBadge(status) {
  if (status !== "Ready") return badge(status);
  const span = badge("Pending", "Ready");
  span.dataset.status = status;
  span.title = "Waiting for a continue";
  return span;
}

function sideBadge(label) {
  const what = { Blue: "original", Green: "replacement" }[label];
  return h("span", { class: `side side-${label.toLowerCase()}`, dataset: { side: label } }, what ? `${label} (${what})` : label);
}

function styleText(style) {
  const type = { IN_PLACE: "In place", BLUE_GREEN: "Blue/green" }[style.deploymentType] || style.deploymentType;
  return style.deploymentOption === "WITH_TRAFFIC_CONTROL" ? `${type}, with traffic control` : `${type}, without traffic control`;
}

function loadBalancingText(info) {
  const parts = [];
  for (const tg of info.targetGroupInfoList || []) parts.push(`target group ${tg.name}`);
  for (const lb of info.elbInfoList || []) parts.push(`classic load balancer ${lb.name}`);
  for (const pair of info.targetGroupPairInfoList || []) parts.push(`target groups ${(pair.targetGroups || []).map((tg) => tg.name).join(" and ")}`);
  return parts.join(", ") || "–";
}

function revisionText(revision) {
  const s3 = (revision || {}).s3Location;
  return s3 ? `s3://${s3.bucket}/${s3.key}` : JSON.stringify(revision || {});
}
