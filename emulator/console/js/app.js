// The console's router: hash routes to views; every view re-reads its data when the live feed
// reports a change it cares about, so a reload and a live page show the same thing.

import { ApiError } from "./api.js";
import { h, replace } from "./dom.js";
import { LiveFeed } from "./live.js";
import { showTimeScale } from "./time_scale.js";
import { buildView } from "./views/build.js";
import { deploymentView } from "./views/deployment.js";
import { executionView } from "./views/execution.js";
import { fleetView } from "./views/fleet.js";
import { loadBalancersView } from "./views/load_balancers.js";
import { metricsView } from "./views/metrics.js";
import { pipelineListView, pipelineView } from "./views/pipelines.js";
import { whyRollbackView } from "./views/why_rollback.js";

const ROUTES = [
  [/^#?\/?$/, () => pipelineListView()],
  [/^#\/pipelines\/?$/, () => pipelineListView()],
  [/^#\/pipelines\/([^/]+)$/, (m) => pipelineView(decodeURIComponent(m[1]))],
  [/^#\/executions\/([^/]+)$/, (m) => executionView(decodeURIComponent(m[1]))],
  [/^#\/builds\/([^/]+)$/, (m) => buildView(decodeURIComponent(m[1]))],
  [/^#\/deployments\/([^/]+)$/, (m) => deploymentView(decodeURIComponent(m[1]))],
  [/^#\/fleet\/?$/, () => fleetView()],
  [/^#\/load-balancers\/?$/, () => loadBalancersView()],
  [/^#\/metrics\/?$/, () => metricsView()],
  [/^#\/why-rollback\/([^/]+)$/, (m) => whyRollbackView(decodeURIComponent(m[1]))],
];

const main = document.getElementById("main");
const feed = new LiveFeed(document.getElementById("live"));
let current = null;
let generation = 0;

export function notFoundPage(what, detail) {
  return h("div", { class: "not-found", dataset: { page: "not-found" } },
    h("h1", {}, "Not found"),
    h("p", { class: "lead" }, what),
    detail ? h("p", { class: "detail" }, detail) : null,
    h("p", {}, h("a", { href: "#/pipelines" }, "Back to the pipelines")));
}

function errorPage(err) {
  if (err instanceof ApiError && err.notFound) return notFoundPage(err.message);
  return h("div", { class: "error-page", role: "alert" },
    h("h1", {}, "Something went wrong"),
    h("p", {}, err.message || String(err)),
    h("p", {}, h("button", { type: "button", onclick: () => route() }, "Try again")));
}

function markSection(hash) {
  const section = (hash.match(/^#\/([\w-]+)/) || [])[1] || "pipelines";
  const owner = { executions: "pipelines", builds: "pipelines", deployments: "pipelines", "why-rollback": "metrics" }[section] || section;
  for (const a of document.querySelectorAll("nav a[data-section]")) {
    if (a.dataset.section === owner) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function route() {
  const mine = ++generation;
  if (current && current.dispose) current.dispose();
  current = null;
  const hash = location.hash || "#/pipelines";
  markSection(hash);
  showTimeScale();
  const match = ROUTES.map(([re, make]) => [hash.match(re), make]).find(([m]) => m);
  if (!match) {
    replace(main, notFoundPage(`There is no console page at ${hash}.`));
    return done(hash);
  }
  const view = match[1](match[0]);
  try {
    await view.load();
    if (mine !== generation) return view.dispose && view.dispose();
    replace(main, view.render());
    current = view;
    document.title = `${view.title} · pipelocal`;
  } catch (err) {
    if (mine !== generation) return;
    replace(main, errorPage(err));
    document.title = `${err instanceof ApiError && err.notFound ? "Not found" : "Error"} · pipelocal`;
  }
  done(hash);
}

// The route now on screen, for anyone (tests included) waiting for a page to finish rendering.
function done(hash) {
  main.dataset.route = hash;
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

// Many changes arrive in bursts; one refresh per burst is enough.
let pending = null;
feed.subscribe((change) => {
  if (!current || !current.wants || !current.wants(change)) return;
  if (pending) return;
  const view = current;
  pending = setTimeout(async () => {
    pending = null;
    if (view !== current) return;
    try {
      await view.refresh();
    } catch (err) {
      console.warn("refresh failed", err);
    }
  }, 150);
});

window.addEventListener("hashchange", route);
window.pipelocalConsole = { feed, route };
route();
feed.start();
