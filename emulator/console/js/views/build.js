// One build: phases with durations, the log as it is written, test reports and the artifact.

import { get } from "../api.js";
import { badge, duration, enc, h, link, replace, section, when } from "../dom.js";
import { followLog } from "../live.js";

export function buildView(id) {
  let build;
  let stop = null;
  const facts = h("div");
  const phases = h("div");
  const artifacts = h("div");
  const reports = h("div");
  const log = h("pre", { class: "log", tabindex: "0", "aria-label": "Build log", dataset: { state: "streaming" } });
  const logState = h("p", { class: "muted", role: "status" }, "Streaming the log…");
  const view = {
    title: `Build ${id}`,
    async load() {
      build = await get(`/builds/${enc(id)}`);
    },
    render() {
      paint();
      stop = followLog(id, (text) => {
        const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        log.append(text);
        if (atBottom) log.scrollTop = log.scrollHeight;
      }, () => {
        log.dataset.state = "complete";
        logState.textContent = "The build is complete; this is the whole log.";
      });
      return h("div", {},
        h("p", { class: "crumbs" }, link("#/pipelines", "Pipelines"), " / build"),
        h("h1", {}, `${build.projectName} build #${build.buildNumber}`),
        facts,
        section("Phases", phases),
        section("Test reports", reports),
        section("Artifacts", artifacts),
        section("Log", logState, log));
    },
    wants: (change) => change.kind === "build" && change.id === id,
    async refresh() {
      await view.load();
      paint();
    },
    dispose() {
      if (stop) stop();
    },
  };

  function paint() {
    replace(facts, h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", { dataset: { field: "status" } }, badge(build.buildStatus || build.status)),
      h("dt", {}, "Current phase"), h("dd", {}, build.currentPhase || "–"),
      h("dt", {}, "Build id"), h("dd", { class: "mono" }, build.id),
      h("dt", {}, "Source version"), h("dd", { class: "mono" }, build.resolvedSourceVersion || build.sourceVersion || "–"),
      h("dt", {}, "Initiator"), h("dd", {}, build.initiator || "–"),
      h("dt", {}, "Image"), h("dd", {}, (build.environment || {}).image || "–"),
      h("dt", {}, "Started"), h("dd", {}, when(build.startTime)),
      h("dt", {}, "Duration"), h("dd", {}, duration(build.startTime, build.endTime))));
    replace(phases, h("div", { class: "table-wrap" }, h("table", { class: "list phases" },
      h("caption", { class: "visually-hidden" }, "Build phases in order"),
      h("thead", {}, h("tr", {}, ["Phase", "Status", "Started", "Duration", "Message"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, (build.phases || []).map((p) => {
        // AWS leaves COMPLETED without a status: it is reached, not run.
        const status = p.phaseStatus || (build.buildComplete ? "" : "IN_PROGRESS");
        return h("tr", { dataset: { phase: p.phaseType, status } },
        h("th", { scope: "row" }, p.phaseType),
        h("td", {}, badge(status, status ? null : "Reached")),
        h("td", {}, when(p.startTime)),
        h("td", {}, status ? duration(p.startTime, p.endTime) : "–"),
        h("td", {}, (p.contexts || []).map((c) => c.message).filter(Boolean).join("; ")));
      })))));
    paintReports();
    const location = (build.artifacts || {}).location;
    if (!location) replace(artifacts, h("p", { class: "muted" }, "This build has no output artifact."));
    else if (!build.buildComplete) replace(artifacts, h("p", { class: "muted" }, `Uploaded when the build completes: ${location}`));
    else replace(artifacts, h("p", {}, h("a", { href: `/api/builds/${enc(id)}/artifact`, download: "", class: "download" }, "Download the artifact (zip)"),
      " ", h("span", { class: "mono muted" }, location)));
  }
  function paintReports() {
    const found = build.reports || [];
    if (!found.length) {
      replace(reports, h("p", { class: "muted", dataset: { reports: "none" } }, build.buildComplete
        ? "This build produced no reports (its buildspec has no reports section)."
        : "Reports are read when the build's commands have run."));
      return;
    }
    replace(reports, h("div", { class: "table-wrap" }, h("table", { class: "list reports" },
      h("caption", { class: "visually-hidden" }, "Test and coverage reports"),
      h("thead", {}, h("tr", {}, ["Report", "Status", "Totals", "Duration"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, found.map((r) => h("tr", { dataset: { report: r.name, status: r.status } },
        h("th", { scope: "row" }, r.name, h("div", { class: "muted" }, `${r.type} · ${r.fileFormat}`)),
        h("td", {}, badge(r.status), (r.statusMessages || []).map((m) => h("div", { class: "error-text" }, m))),
        h("td", { dataset: { field: "totals" } }, totals(r)),
        h("td", {}, r.testSummary ? `${(r.testSummary.durationInNanoSeconds / 1e9).toFixed(2)} s` : "–")))))));
  }
  return view;
}

function totals(report) {
  if (report.testSummary) {
    const counts = Object.entries(report.testSummary.statusCounts || {}).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`);
    return `${report.testSummary.total} tests` + (counts.length ? `: ${counts.join(", ")}` : "");
  }
  const coverage = report.codeCoverageSummary || {};
  const line = coverage.lineCoveragePercentage;
  const branch = coverage.branchCoveragePercentage;
  return [line !== undefined ? `lines ${line.toFixed(1)} %` : null, branch !== undefined ? `branches ${branch.toFixed(1)} %` : null]
    .filter(Boolean).join(", ") || "no coverage figures";
}
