// Pipelines: the list with each one's last execution, and one pipeline's stages and history.

import { codepipeline, get, post } from "../api.js";
import { badge, duration, enc, h, link, replace, section, short, when } from "../dom.js";
import { actionTarget, revisionLine } from "./execution.js";

const PIPELINE_KINDS = new Set(["pipeline-execution", "stage-execution", "action-execution"]);

export function pipelineListView() {
  let rows = [];
  const body = h("div");
  const view = {
    title: "Pipelines",
    async load() {
      const { pipelines } = await get("/pipelines");
      rows = await Promise.all(pipelines.map(async (p) => {
        const { pipelineExecutionSummaries: runs } = await get(`/pipelines/${enc(p.name)}/executions`);
        return { pipeline: p, last: runs[0] };
      }));
    },
    render() {
      paint();
      return h("div", {}, h("h1", {}, "Pipelines"), body);
    },
    wants: (change) => change.kind === "pipeline-execution",
    async refresh() {
      await view.load();
      paint();
    },
  };
  function paint() {
    if (!rows.length) {
      replace(body, h("p", {}, "No pipelines yet. Create one with ", h("code", {}, "pipelocal pipeline create -f pipeline.json"), "."));
      return;
    }
    replace(body, h("div", { class: "table-wrap" }, h("table", { class: "list" },
      h("caption", { class: "visually-hidden" }, "Pipelines and their last execution"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Pipeline"), h("th", { scope: "col" }, "Last execution"),
        h("th", { scope: "col" }, "Source revision"), h("th", { scope: "col" }, "Started"))),
      h("tbody", {}, rows.map(({ pipeline, last }) => h("tr", { dataset: { pipeline: pipeline.name } },
        h("th", { scope: "row" }, link(`#/pipelines/${enc(pipeline.name)}`, pipeline.name)),
        h("td", {}, last ? link(`#/executions/${enc(last.pipelineExecutionId)}`, badge(last.status),
          { "aria-label": `execution ${short(last.pipelineExecutionId)}: ${last.status}` }) : badge(null, "No executions")),
        h("td", {}, last ? revisionLine(last) : "–"),
        h("td", {}, last ? when(last.startTime) : "–")))))));
  }
  return view;
}

export function pipelineView(name) {
  let pipeline, state, runs;
  const comments = {};
  const diagram = h("div");
  const history = h("div");
  const message = h("p", { class: "message", role: "status" });
  const view = {
    title: name,
    async load() {
      [pipeline, state, { pipelineExecutionSummaries: runs }] = await Promise.all([
        get(`/pipelines/${enc(name)}`), get(`/pipelines/${enc(name)}/state`), get(`/pipelines/${enc(name)}/executions`)]);
    },
    render() {
      paint();
      const release = h("button", { type: "button", class: "primary", onclick: async () => {
        release.disabled = true;
        try {
          const { pipelineExecutionId } = await post(`/pipelines/${enc(name)}/executions`);
          message.textContent = `Started execution ${short(pipelineExecutionId)}.`;
        } catch (err) {
          message.textContent = `Release change failed: ${err.message}`;
        } finally {
          release.disabled = false;
        }
      } }, "Release change");
      return h("div", {},
        h("p", { class: "crumbs" }, link("#/pipelines", "Pipelines"), " / ", name),
        h("div", { class: "title-row" }, h("h1", {}, name), h("div", { class: "actions" }, release)),
        message,
        section("Stages (latest run of each)", diagram),
        section("Execution history", history));
    },
    wants: (change) => PIPELINE_KINDS.has(change.kind) && change.detail.pipelineName === name,
    async refresh() {
      await view.load();
      paint();
    },
  };

  function paint() {
    const focused = document.activeElement && document.activeElement.id;
    paintStages();
    const again = focused && document.getElementById(focused);
    if (again && again !== document.activeElement) again.focus();
  }

  function paintStages() {
    const byId = Object.fromEntries(runs.map((r) => [r.pipelineExecutionId, r]));
    const declared = Object.fromEntries(pipeline.pipeline.stages.map((s) => [s.name, s]));
    const stages = state.stageStates.map((stage, index) => {
      const latest = stage.latestExecution;
      const run = latest && byId[latest.pipelineExecutionId];
      const retry = latest && (latest.status === "Failed" || latest.status === "Stopped")
        ? h("button", { type: "button", "aria-label": `Retry the failed actions of stage ${stage.stageName}`,
          onclick: (e) => act(e.target, () => codepipeline("RetryStageExecution", {
            pipelineName: name, stageName: stage.stageName, pipelineExecutionId: latest.pipelineExecutionId, retryMode: "FAILED_ACTIONS" }),
          `Retrying ${stage.stageName}.`) }, "Retry stage") : null;
      const box = h("section", { class: "stage", "aria-labelledby": `stage-${index}`,
        dataset: { stage: stage.stageName, status: latest ? latest.status : "", execution: latest ? latest.pipelineExecutionId : "" } },
        h("header", {}, h("h3", { id: `stage-${index}` }, stage.stageName), h("span", { class: "actions" }, retry, badge(latest && latest.status))),
        run ? h("p", { class: "revision" }, link(`#/executions/${enc(run.pipelineExecutionId)}`, `Execution ${short(run.pipelineExecutionId)}`),
          ": ", revisionLine(run)) : h("p", { class: "revision muted" }, "Not run yet"),
        h("ul", { class: "actions-list" }, stage.actionStates.map((a) => {
          const decl = (declared[stage.stageName].actions || []).find((d) => d.name === a.actionName) || {};
          const latestAction = a.latestExecution;
          return h("li", { class: "action", dataset: { action: a.actionName, status: latestAction ? latestAction.status : "" } },
            h("span", { class: "action-name" }, a.actionName),
            h("span", { class: "provider" }, decl.actionTypeId ? decl.actionTypeId.provider : ""),
            badge(latestAction && latestAction.status),
            latestAction ? actionTarget(decl, latestAction) : null,
            latestAction && latestAction.summary ? h("span", { class: "summary" }, latestAction.summary) : null,
            latestAction && latestAction.errorDetails && latestAction.errorDetails.message !== latestAction.summary
              ? h("span", { class: "error-text" }, latestAction.errorDetails.message) : null,
            latestAction && latestAction.token && latestAction.status === "InProgress" ? approval(stage.stageName, a.actionName, latestAction.token) : null);
        })));
      const arrow = index < state.stageStates.length - 1 ? transition(state.stageStates[index + 1]) : null;
      return [box, arrow];
    });
    replace(diagram, h("div", { class: "stages" }, stages));

    if (!runs.length) {
      replace(history, h("p", {}, "No executions yet: push to the source branch or press Release change."));
      return;
    }
    replace(history, h("div", { class: "table-wrap" }, h("table", { class: "list history" },
      h("caption", { class: "visually-hidden" }, "Executions, newest first"),
      h("thead", {}, h("tr", {}, ["Execution", "Status", "Source revision", "Trigger", "Started", "Duration"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, runs.map((run) => h("tr", { dataset: { execution: run.pipelineExecutionId, status: run.status } },
        h("th", { scope: "row" }, link(`#/executions/${enc(run.pipelineExecutionId)}`, short(run.pipelineExecutionId), { class: "mono" })),
        h("td", {}, badge(run.status)),
        h("td", {}, revisionLine(run)),
        h("td", {}, run.trigger ? `${run.trigger.triggerType}: ${run.trigger.triggerDetail}` : "–"),
        h("td", {}, when(run.startTime)),
        h("td", {}, duration(run.startTime, run.endTime))))))));
  }
  // Runs one control's request, says what happened, and re-reads the page (transitions and
  // approvals change no status by themselves, so no event would refresh it).
  async function act(button, request, done) {
    button.disabled = true;
    try {
      await request();
      message.textContent = done;
      await view.refresh();
    } catch (err) {
      message.textContent = err.message;
      button.disabled = false;
    }
  }

  function approval(stageName, actionName, token) {
    const summaryId = `approval-${stageName}-${actionName}`.replace(/[^A-Za-z0-9_-]/g, "-");
    // A live refresh repaints the page; what was typed (and the focus) survives it.
    const summary = h("input", { type: "text", id: summaryId, name: "summary", placeholder: "optional comment",
      value: comments[token] || "", oninput: (e) => { comments[token] = e.target.value; } });
    const decide = (status) => (e) => act(e.target, () => codepipeline("PutApprovalResult", {
      pipelineName: name, stageName, actionName, token, result: { status, summary: summary.value } }),
      `${status} ${stageName}/${actionName}.`);
    return h("div", { class: "approval", role: "group", "aria-label": `Manual approval ${actionName}` },
      h("label", { for: summaryId }, "Comment"), summary,
      h("button", { type: "button", class: "primary", onclick: decide("Approved") }, "Approve"),
      h("button", { type: "button", class: "danger", onclick: decide("Rejected") }, "Reject"));
  }

  function transition(next) {
    const t = next.inboundTransitionState || { enabled: true };
    const toggle = h("button", { type: "button", class: "small",
      "aria-label": `${t.enabled ? "Disable" : "Enable"} the transition into ${next.stageName}`,
      onclick: (e) => act(e.target, () => codepipeline(t.enabled ? "DisableStageTransition" : "EnableStageTransition",
        t.enabled ? { pipelineName: name, stageName: next.stageName, transitionType: "Inbound", reason: "disabled from the console" }
          : { pipelineName: name, stageName: next.stageName, transitionType: "Inbound" }),
      `Transition into ${next.stageName} ${t.enabled ? "disabled" : "enabled"}.`) }, t.enabled ? "Disable" : "Enable");
    return h("div", { class: `transition${t.enabled ? "" : " disabled"}`, dataset: { into: next.stageName, enabled: String(t.enabled !== false) } },
      h("span", { "aria-hidden": "true", class: "arrow" }, t.enabled ? "↓" : "⛔"),
      t.enabled ? " transition enabled " : ` transition disabled${t.disabledReason ? `: ${t.disabledReason}` : ""} `, toggle);
  }
  return view;
}
