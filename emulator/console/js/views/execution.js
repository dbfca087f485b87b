// One pipeline execution: its stages and actions as boxes, the source revision, and the
// controls the backend supports (stop). Deploy actions show the rollback their deployment caused.

import { codepipeline, get, post } from "../api.js";
import { badge, duration, enc, h, link, replace, section, short, when } from "../dom.js";

const TERMINAL = new Set(["Succeeded", "Failed", "Stopped", "Superseded", "Cancelled"]);

export function revisionLine(run) {
  const revisions = run.artifactRevisions || [];
  if (!revisions.length) return "–";
  return h("span", { class: "revisions" }, revisions.map((r) => h("span", { class: "revision-item", dataset: { commit: r.revisionId } },
    h("code", { class: "commit", title: r.revisionId }, short(r.revisionId)), " ", h("span", { class: "commit-message" }, r.revisionSummary || ""))));
}

// The page a user follows from an action: the build, the deployment, or the commit.
export function actionTarget(decl, action) {
  const provider = decl.actionTypeId ? decl.actionTypeId.provider : "";
  const ext = action.externalExecutionId;
  if (!ext) return null;
  if (provider === "CodeBuild") return link(`#/builds/${enc(ext)}`, "Build details", { class: "details", dataset: { build: ext } });
  if (provider === "CodeDeploy") return link(`#/deployments/${enc(ext)}`, `Deployment ${ext}`, { class: "details", dataset: { deployment: ext } });
  if (provider === "CodeCommit") return h("code", { class: "commit", title: ext }, short(ext));
  return null;
}

export function executionView(id) {
  let execution, pipeline, deployments = {};
  const body = h("div");
  const controls = h("div", { class: "actions" });
  const message = h("p", { class: "message", role: "status" });
  const watched = new Set();
  const view = {
    title: `Execution ${short(id)}`,
    async load() {
      execution = await get(`/executions/${enc(id)}`);
      pipeline = (await get(`/pipelines/${enc(execution.pipelineName)}`)).pipeline;
      const deployIds = execution.actions.filter((a) => providerOf(a) === "CodeDeploy" && a.externalExecutionId).map((a) => a.externalExecutionId);
      const found = await Promise.all(deployIds.map((d) => get(`/deployments/${enc(d)}`).catch(() => null)));
      deployments = Object.fromEntries(found.filter(Boolean).map((d) => [d.deploymentId, d]));
      watched.clear();
      for (const a of execution.actions) if (a.externalExecutionId) watched.add(a.externalExecutionId);
      for (const d of Object.values(deployments)) if (d.rollbackInfo && d.rollbackInfo.rollbackDeploymentId) watched.add(d.rollbackInfo.rollbackDeploymentId);
    },
    render() {
      paint();
      return h("div", {},
        h("p", { class: "crumbs" }, link("#/pipelines", "Pipelines"), " / ",
          link(`#/pipelines/${enc(execution.pipelineName)}`, execution.pipelineName), " / ", short(id)),
        h("div", { class: "title-row" }, h("h1", {}, `Execution ${short(id)}`), controls),
        message, body);
    },
    wants: (change) => change.detail.pipelineExecutionId === id || watched.has(change.id) || watched.has(change.detail.deploymentId),
    async refresh() {
      await view.load();
      paint();
    },
  };

  function providerOf(action) {
    const stage = pipeline.stages.find((s) => s.name === action.stageName);
    const decl = stage && stage.actions.find((d) => d.name === action.actionName);
    return decl && decl.actionTypeId ? decl.actionTypeId.provider : "";
  }

  function paint() {
    // Stop and wait lets running actions finish; abandoning (also while Stopping) ends them at once.
    const stop = (abandon, label, done) => h("button", { type: "button", onclick: async (e) => {
      e.target.disabled = true;
      try {
        await post(`/executions/${enc(id)}/stop`, { abandon, reason: "stopped from the console" });
        message.textContent = done;
      } catch (err) {
        message.textContent = `Stop failed: ${err.message}`;
        e.target.disabled = false;
      }
    } }, label);
    replace(controls,
      execution.status === "InProgress" ? stop(false, "Stop execution", "Stopping: actions in progress finish first.") : null,
      execution.status === "InProgress" || execution.status === "Stopping"
        ? stop(true, "Stop and abandon", "Stopped: actions in progress were abandoned.") : null);

    const stages = Object.fromEntries(execution.stages.map((s) => [s.stageName, s]));
    const actions = Object.fromEntries(execution.actions.map((a) => [`${a.stageName}/${a.actionName}`, a]));
    const boxes = pipeline.stages.map((stage, index) => {
      const run = stages[stage.name];
      return [h("section", { class: "stage", "aria-labelledby": `xstage-${index}`, dataset: { stage: stage.name, status: run ? run.status : "" } },
        h("header", {}, h("h3", { id: `xstage-${index}` }, stage.name), h("span", { class: "actions" },
          run && (run.status === "Failed" || run.status === "Stopped") && TERMINAL.has(execution.status) ? retryButton(stage.name) : null,
          badge(run && run.status, run ? null : "Not entered"))),
        run ? h("p", { class: "muted" }, run.endTime ? "Took " : "Running for ", duration(run.createdAt, run.endTime)) : null,
        stage.actions.some((a) => a.actionTypeId.provider === "Manual" && (actions[`${stage.name}/${a.name}`] || {}).status === "InProgress")
          ? h("p", { class: "note" }, "Waiting for approval: approve or reject it on the ",
            link(`#/pipelines/${enc(execution.pipelineName)}`, "pipeline page"), ".") : null,
        h("ul", { class: "actions-list" }, stage.actions.map((decl) => {
          const a = actions[`${stage.name}/${decl.name}`];
          const deployment = a && deployments[a.externalExecutionId];
          return h("li", { class: "action", dataset: { action: decl.name, status: a ? a.status : "" } },
            h("span", { class: "action-name" }, decl.name),
            h("span", { class: "provider" }, decl.actionTypeId.provider),
            badge(a && a.status),
            a ? actionTarget(decl, a) : null,
            a && a.summary ? h("span", { class: "summary" }, a.summary) : null,
            a && a.errorMessage && a.errorMessage !== a.summary ? h("span", { class: "error-text" }, a.errorMessage) : null,
            deployment ? rollbackMarker(deployment) : null);
        }))),
      index < pipeline.stages.length - 1 ? h("div", { class: "transition", "aria-label": "transition" }, h("span", { "aria-hidden": "true" }, "↓")) : null];
    });
    replace(body,
      h("dl", { class: "facts" },
        h("dt", {}, "Status"), h("dd", { dataset: { field: "status" } }, badge(execution.status)),
        execution.statusSummary ? [h("dt", {}, "Summary"), h("dd", {}, execution.statusSummary)] : null,
        h("dt", {}, "Source revision"), h("dd", {}, revisionLine(execution)),
        h("dt", {}, "Trigger"), h("dd", {}, execution.trigger ? `${execution.trigger.triggerType}: ${execution.trigger.triggerDetail}` : "–"),
        h("dt", {}, "Started"), h("dd", {}, when(execution.startTime)),
        h("dt", {}, "Duration"), h("dd", {}, duration(execution.startTime, execution.endTime))),
      section("Stages", h("div", { class: "stages" }, boxes)));
  }

  function retryButton(stageName) {
    return h("button", { type: "button", "aria-label": `Retry the failed actions of stage ${stageName}`, onclick: async (e) => {
      e.target.disabled = true;
      try {
        await codepipeline("RetryStageExecution", { pipelineName: execution.pipelineName, stageName,
          pipelineExecutionId: id, retryMode: "FAILED_ACTIONS" });
        message.textContent = `Retrying ${stageName}.`;
      } catch (err) {
        message.textContent = err.message;
        e.target.disabled = false;
      }
    } }, "Retry stage");
  }
  return view;
}

export function rollbackMarker(deployment) {
  const info = deployment.rollbackInfo || {};
  if (info.rollbackDeploymentId) {
    return h("span", { class: "rollback", dataset: { rollback: info.rollbackDeploymentId } },
      h("span", { "aria-hidden": "true" }, "⟲ "), "Rolled back by ",
      link(`#/deployments/${enc(info.rollbackDeploymentId)}`, info.rollbackDeploymentId));
  }
  if (info.rollbackTriggeringDeploymentId) {
    return h("span", { class: "rollback", dataset: { rollbackOf: info.rollbackTriggeringDeploymentId } },
      h("span", { "aria-hidden": "true" }, "⟲ "), "Rollback of ",
      link(`#/deployments/${enc(info.rollbackTriggeringDeploymentId)}`, info.rollbackTriggeringDeploymentId));
  }
  return null;
}
