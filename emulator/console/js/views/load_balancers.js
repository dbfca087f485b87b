// Load balancers: each one's URL, its listener weights per target group as a bar, each target
// group's targets with their TargetHealth state and reason, and the load balancer's request count,
// 5XX count and p99 latency from AWS/ApplicationELB. Weights and health repaint on the live feed
// (kinds "elb-load-balancer" and "elb-target"); the charts and the list itself re-read on a timer.

import { ApiError, get } from "../api.js";
import { badge, enc, h, link, replace, section, when } from "../dom.js";
import { lineChart, niceNumber } from "../chart.js";
import { emulatedMinuteMs, realWindow, showTimeScale } from "../time_scale.js";
import { deploymentMarkers } from "./metrics.js";

const NAMESPACE = "AWS/ApplicationELB";
const MINUTES = 30;
const CHARTS = [
  { metric: "RequestCount", stat: "Sum", title: "Requests", unit: "requests per minute" },
  { metric: "HTTPCode_Target_5XX_Count", stat: "Sum", title: "5XX responses from targets", unit: "per minute" },
  { metric: "TargetResponseTime", stat: "p99", title: "Latency p99", unit: "s", format: (v) => (v === 0 ? "0 ms" : `${(v * 1000).toFixed(v < 0.01 ? 1 : 0)} ms`) },
];
const COMPARE = { GreaterThanThreshold: ">", GreaterThanOrEqualToThreshold: "≥", LessThanThreshold: "<",
  LessThanOrEqualToThreshold: "≤" };

// AWS's TargetHealth states; the badge's tone repeats the word.
const HEALTH_TONE = { healthy: "Succeeded", unhealthy: "Failed", unavailable: "Failed", initial: "InProgress",
  draining: "Stopped", unused: "Skipped" };

export function healthBadge(state) {
  const span = badge(HEALTH_TONE[state] || state, state);
  span.dataset.state = state;
  return span;
}

// The CloudWatch dimension value of a load balancer: app/NAME/ID from its ARN.
export function loadBalancerDimension(arn) {
  const resource = String(arn).split(":").slice(5).join(":");
  return resource.startsWith("loadbalancer/") ? resource.slice("loadbalancer/".length) : resource;
}

// Deployments whose loadBalancerInfo names this load balancer or one of its target groups.
export function deploymentsBehind(deployments, lb) {
  const groups = new Set(Object.keys(lb.weights || {}));
  return deployments.filter((d) => {
    const info = d.loadBalancerInfo || {};
    return (info.elbInfoList || []).some((x) => x.name === lb.loadBalancerName)
      || (info.targetGroupInfoList || []).some((x) => groups.has(x.name))
      || (info.targetGroupPairInfoList || []).some((p) => (p.targetGroups || []).some((x) => groups.has(x.name)));
  });
}

// Each target group's share of the listener's traffic, in whole percent.
export function shares(weights) {
  const entries = Object.entries(weights || {});
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  return entries.map(([name, weight]) => ({ name, weight, percent: total ? Math.round((weight * 100) / total) : 0 }));
}

export function loadBalancersView() {
  let balancers = []; // described: weights, url, targetGroups [{name, weight, targets}]
  let groups = {}; // target group name -> its document (health check, delay)
  let loose = []; // target groups no load balancer forwards to, with their targets
  let instances = {}; // instance id -> fleet document
  let settings = null;
  let chartNodes = {}; // load balancer name -> its chart figures and marker list, kept across live repaints
  let unavailable = null;
  let chartsStale = false; // an alarm changed or a deployment ended: markers to redraw
  let timer = null;
  const body = h("div");
  const scaleNote = h("p", { class: "muted", dataset: { field: "window" } });

  async function loadState() {
    let list;
    let tgs;
    try {
      [{ loadBalancers: list }, { targetGroups: tgs }] = await Promise.all([get("/elb/load-balancers"), get("/elb/target-groups")]);
    } catch (err) {
      if (err instanceof ApiError && (err.notFound || err.status >= 500)) {
        unavailable = err.message;
        balancers = [];
        loose = [];
        return;
      }
      throw err;
    }
    unavailable = null;
    const [described, fleet, looseHealth] = await Promise.all([
      Promise.all(list.map((lb) => get(`/elb/load-balancers/${enc(lb.loadBalancerName)}`).catch(() => null))),
      get("/instances?all=true"),
      Promise.all(tgs.filter((tg) => !(tg.loadBalancerNames || []).length)
        .map((tg) => get(`/elb/target-groups/${enc(tg.targetGroupName)}/health`).catch(() => null))),
    ]);
    balancers = described.filter(Boolean).sort((a, b) => a.loadBalancerName.localeCompare(b.loadBalancerName));
    groups = Object.fromEntries(tgs.map((tg) => [tg.targetGroupName, tg]));
    loose = looseHealth.filter(Boolean).map((x) => ({ name: x.targetGroupName, targets: x.targets }));
    instances = Object.fromEntries(fleet.instances.map((i) => [i.instanceId, i]));
  }

  async function loadCharts() {
    let deployments;
    [settings, { deployments }] = await Promise.all([get("/cloudwatch/settings"), get("/deployments")]);
    const answers = await Promise.all(balancers.flatMap((lb) => CHARTS.map((c) => get(`/cloudwatch/series?${new URLSearchParams({
      namespace: NAMESPACE, name: c.metric, dimensions: `LoadBalancer=${loadBalancerDimension(lb.loadBalancerArn)}`,
      stat: c.stat, period: "60", minutes: String(MINUTES) })}`).catch(() => null))));
    chartNodes = Object.fromEntries(balancers.map((lb, i) => [lb.loadBalancerName,
      chartFigures(lb, answers.slice(i * CHARTS.length, (i + 1) * CHARTS.length), deploymentsBehind(deployments, lb))]));
  }

  const view = {
    title: "Load balancers",
    async load() {
      await loadState();
      await loadCharts();
    },
    render() {
      paint();
      schedule();
      return h("div", { dataset: { page: "load-balancers" } },
        h("h1", {}, "Load balancers"),
        h("p", { class: "muted" }, "The Elastic Load Balancing stand-in: each listener proxies real HTTP to its target groups by weight. ",
          "Create them with ", h("code", {}, "pipelocal lb create-target-group"), " and ", h("code", {}, "pipelocal lb create"), "."),
        body,
        scaleNote);
    },
    // Weights and target health are on the feed (a deployment moving traffic changes them too);
    // an alarm change or a deployment's end redraws the charts' markers.
    wants: (change) => {
      if (change.kind === "metric-alarm" || (change.kind === "deployment" && ["Succeeded", "Failed", "Stopped"].includes(change.status))) {
        chartsStale = true;
        return true;
      }
      return change.kind === "elb-target" || change.kind === "elb-load-balancer";
    },
    async refresh() {
      await loadState();
      if (chartsStale) {
        chartsStale = false;
        await loadCharts();
      }
      paint();
    },
    dispose() {
      clearTimeout(timer);
      timer = null;
    },
  };

  // Datapoints, new or deleted load balancers and target groups are not on the feed: re-read
  // everything once per emulated minute (2 to 15 s real).
  function schedule() {
    clearTimeout(timer);
    const factor = (settings && settings.timeScale.factor) || 1;
    timer = setTimeout(async () => {
      try {
        await view.load();
        if (timer === null) return;
        paint();
        showTimeScale(settings.timeScale);
      } catch (err) {
        console.warn("load balancers refresh failed", err);
      }
      if (timer !== null) schedule();
    }, emulatedMinuteMs(factor));
  }

  function paint() {
    const factor = settings ? settings.timeScale.factor : 1;
    replace(scaleNote, `Charts: the last ${MINUTES} minutes of emulated time`,
      realWindow(MINUTES, factor),
      ", one point per 60 emulated seconds, from ", h("code", {}, NAMESPACE), " with the dimension ",
      h("code", {}, "LoadBalancer"), ". An alarm on the same metric and dimension is drawn as a dashed line.");
    if (unavailable) {
      replace(body, h("p", { role: "status" }, `The load balancer service is not available: ${unavailable}`));
      return;
    }
    if (!balancers.length && !loose.length) {
      replace(body, h("p", {}, "No load balancers or target groups yet. ",
        h("code", {}, "pipelocal lb create-target-group web-tg"), ", ", h("code", {}, "pipelocal lb create web-lb --target-group web-tg"),
        " and ", h("code", {}, "pipelocal lb register web-tg INSTANCE"), " make one; ", h("code", {}, "pipelocal demo"), " makes two."));
      return;
    }
    replace(body,
      balancers.map((lb) => balancerBlock(lb)),
      loose.length ? section("Target groups without a load balancer", loose.map((tg) => targetGroupBlock(tg.name, tg.targets, null))) : null);
  }

  function balancerBlock(lb) {
    const name = lb.loadBalancerName;
    const parts = shares(lb.weights);
    const text = parts.map((p) => `${p.name} ${p.percent}%`).join(" | ");
    return h("section", { class: "load-balancer", "aria-labelledby": `lb-${name}`, dataset: { loadBalancer: name } },
      h("h2", { id: `lb-${name}` }, name, " ", h("span", { class: "muted lb-type" }, lb.type === "classic" ? "classic" : "application")),
      h("dl", { class: "facts" },
        h("dt", {}, "URL"), h("dd", { dataset: { field: "url" } }, lb.url
          ? h("a", { href: lb.url, target: "_blank", rel: "noopener", class: "mono" }, lb.url)
          : h("span", { class: "muted" }, "no listener port yet (bound when the control plane starts)"),
          lb.url && !lb.listening ? h("span", { class: "error-text" }, " (not listening)") : null),
        h("dt", {}, "ARN"), h("dd", { class: "mono muted" }, lb.loadBalancerArn),
        h("dt", {}, "Listener weights"), h("dd", {},
          h("div", { class: "weights", dataset: { field: "weights", text } },
            h("div", { class: "weight-bar", role: "img", "aria-label": `Traffic split: ${text}` },
              parts.map((p, i) => h("span", { class: `weight weight-${i % 4}`, style: `flex-grow: ${p.weight}`,
                dataset: { targetGroup: p.name, percent: String(p.percent), weight: String(p.weight) }, title: `${p.name}: weight ${p.weight}` },
              p.percent >= 20 ? `${p.name} ${p.percent}%` : p.percent >= 5 ? `${p.percent}%` : ""))),
            h("p", { class: "weight-text" }, text, h("span", { class: "muted" },
              ` (weights ${parts.map((p) => `${p.name}=${p.weight}`).join(", ")})`))))),
      (lb.targetGroups || []).map((tg) => targetGroupBlock(tg.name, tg.targets, parts.find((p) => p.name === tg.name))),
      h("div", { class: "charts" }, chartNodes[name] ? chartNodes[name].figures : h("p", { class: "muted" }, "Charts load with the next refresh.")),
      chartNodes[name] ? chartNodes[name].list : null);
  }

  function targetGroupBlock(name, targets, share) {
    const doc = groups[name] || {};
    const check = doc.healthCheck || {};
    const healthy = targets.filter((t) => t.state === "healthy").length;
    return h("article", { class: "target-group", dataset: { targetGroup: name } },
      h("h3", {}, `Target group ${name}`, share ? h("span", { class: "muted" }, ` · ${share.percent}% of traffic`) : null),
      h("p", { class: "muted check" }, `${healthy} of ${targets.length} healthy. Health check `, h("code", {}, `GET ${check.path || "/"}`),
        check.intervalSeconds ? ` every ${check.intervalSeconds} s (timeout ${check.timeoutSeconds} s), healthy after ${check.healthyThresholdCount}, `
          + `unhealthy after ${check.unhealthyThresholdCount}, codes ${check.matcher}` : "",
        doc.deregistrationDelaySeconds !== undefined ? `; deregistration delay ${doc.deregistrationDelaySeconds} s` : "", "."),
      targets.length ? h("div", { class: "table-wrap" }, h("table", { class: "list targets" },
        h("caption", { class: "visually-hidden" }, `Targets of ${name} with their health`),
        h("thead", {}, h("tr", {}, ["Instance", "Health", "Reason", "Serving"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, targets.map((t) => {
          const inst = instances[t.instanceId] || {};
          const revision = inst.revision || {};
          return h("tr", { dataset: { instance: t.instanceId, state: t.state } },
            h("th", { scope: "row" }, inst.name || t.instanceId, h("br"), h("span", { class: "mono muted" }, t.instanceId),
              inst.state && inst.state !== "running" ? h("div", { class: "error-text" }, inst.state) : null),
            h("td", { dataset: { field: "health" } }, healthBadge(t.state)),
            h("td", { class: "reason", dataset: { field: "reason" } }, t.reason ? [h("code", {}, t.reason), t.description ? ` ${t.description}` : ""] : "–"),
            h("td", {}, revision.deploymentId
              ? [link(`#/deployments/${enc(revision.deploymentId)}`, revision.deploymentId), revision.description ? h("div", { class: "muted" }, revision.description) : null]
              : h("span", { class: "muted" }, "–")));
        }))))
        : h("p", {}, "No targets registered. ", h("code", {}, `pipelocal lb register ${name} INSTANCE`), " adds one."));
  }

  function chartFigures(lb, answers, deployments) {
    const releases = [...new Set(deployments.map((d) => d.deploymentGroupName))].flatMap((g) => deploymentMarkers(deployments, g));
    // Markers close together overlap in the drawing; the list under the charts has them all, once.
    const all = new Map();
    for (const m of [...releases, ...answers.filter(Boolean).flatMap((a) => a.alarmChanges.map((x) => ({ t: x.t, label: `${x.alarm} → ${x.to}` })))]) {
      if (m.t >= ((answers.find(Boolean) || {}).start || 0)) all.set(`${m.t} ${m.label}`, m);
    }
    const list = all.size ? h("details", { class: "marker-list" }, h("summary", {}, `${all.size} events on the time axis`),
      h("ol", {}, [...all.values()].sort((x, y) => x.t - y.t).map((m) => h("li", {}, when(m.t), ` ${m.label}`)))) : null;
    const figures = CHARTS.map((c, i) => {
      const a = answers[i];
      if (!a) return h("figure", { class: "chart-box", dataset: { metric: c.metric } }, h("figcaption", {}, c.title), h("p", { class: "muted" }, "No answer from CloudWatch."));
      const markers = [...releases, ...a.alarmChanges.map((x) => ({ t: x.t, kind: "alarm", label: `${x.alarm} → ${x.to}` }))];
      const thresholds = a.alarms.map((al) => ({ value: al.threshold,
        label: `${al.name} (${al.state}): ${al.statistic} ${COMPARE[al.comparison] || al.comparison} ${niceNumber(al.threshold)}` }));
      return h("figure", { class: "chart-box", dataset: { metric: c.metric } },
        h("figcaption", {}, h("strong", {}, c.title), " ", h("span", { class: "muted" }, `${c.metric} ${c.stat}, ${c.unit}`)),
        lineChart({ title: `${c.title} for ${lb.loadBalancerName}`, unit: c.unit, start: a.start, end: a.end, points: a.points,
          thresholds, markers, format: c.format }));
    });
    return { figures, list };
  }
  return view;
}
