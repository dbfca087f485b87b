// Metrics and alarms: per deployment group, the fleet's request count, 5XX count, error rate and
// p99 latency over the last 30 emulated minutes, each alarm's threshold on its metric, and alarm
// changes and deployments marked on the time axis; then every alarm with its state and reason.

import { get } from "../api.js";
import { badge, enc, h, replace, section, when } from "../dom.js";
import { lineChart, niceNumber } from "../chart.js";
import { emulatedMinuteMs, realWindow, showTimeScale } from "../time_scale.js";

const NAMESPACE = "Pipelocal/App";
const MINUTES = 30;
const CHARTS = [
  { metric: "RequestCount", stat: "Sum", title: "Requests", unit: "requests per minute" },
  { metric: "HTTPCode_Target_5XX_Count", stat: "Sum", title: "5XX responses", unit: "per minute" },
  { metric: "ErrorRate", stat: "Average", title: "Error rate", unit: "%" },
  { metric: "TargetResponseTime", stat: "p99", title: "Latency p99", unit: "s", format: (v) => (v === 0 ? "0 ms" : `${(v * 1000).toFixed(v < 0.01 ? 1 : 0)} ms`) },
];
const COMPARE = { GreaterThanThreshold: ">", GreaterThanOrEqualToThreshold: "≥", LessThanThreshold: "<",
  LessThanOrEqualToThreshold: "≤" };

function alarmTone(state) {
  return { OK: "Succeeded", ALARM: "Failed", INSUFFICIENT_DATA: "Pending" }[state] || state;
}

function stateBadge(state) {
  const span = badge(alarmTone(state), state);
  span.dataset.state = state;
  return span;
}

// Deployment start and end as markers; a rollback deployment says so (the load balancers page too).
export function deploymentMarkers(deployments, group) {
  const out = [];
  for (const d of deployments) {
    if (d.deploymentGroupName !== group) continue;
    const rollback = d.creator === "codeDeployRollback";
    const what = rollback ? `Rollback ${d.deploymentId}` : `Deployment ${d.deploymentId}`;
    const start = d.startTime || d.createTime;
    if (start) out.push({ t: start, kind: rollback ? "rollback" : "deployment", label: `${what} started` });
    const end = d.completeTime || d.endTime;
    if (end && ["Succeeded", "Failed", "Stopped"].includes(d.status)) {
      out.push({ t: end, kind: rollback ? "rollback" : "deployment", label: `${what} ${d.status}` });
    }
  }
  return out;
}

export function metricsView() {
  let settings;
  let groups = [];
  let alarms = [];
  let charts = {}; // group -> [series answers]
  let deployments = [];
  let timer = null;
  const body = h("div");
  const alarmList = h("div");
  const scaleNote = h("p", { class: "muted", dataset: { field: "window" } });

  const view = {
    title: "Metrics and alarms",
    async load() {
      const [s, metrics, a, d] = await Promise.all([get("/cloudwatch/settings"),
        get(`/cloudwatch/metrics?namespace=${enc(NAMESPACE)}`), get("/cloudwatch/alarms"), get("/deployments")]);
      settings = s;
      alarms = a.alarms;
      deployments = d.deployments;
      const names = new Set();
      for (const m of metrics.metrics) {
        if (m.Dimensions.length === 1 && m.Dimensions[0].Name === "DeploymentGroupName") names.add(m.Dimensions[0].Value);
      }
      for (const al of alarms) {
        const dim = (al.Dimensions || []).find((x) => x.Name === "DeploymentGroupName");
        if (al.Namespace === NAMESPACE && dim && al.Dimensions.length === 1) names.add(dim.Value);
      }
      groups = [...names].sort();
      const answers = await Promise.all(groups.flatMap((g) => CHARTS.map((c) => get(`/cloudwatch/series?${new URLSearchParams({
        namespace: NAMESPACE, name: c.metric, dimensions: `DeploymentGroupName=${g}`, stat: c.stat, period: "60", minutes: String(MINUTES) })}`))));
      charts = Object.fromEntries(groups.map((g, i) => [g, answers.slice(i * CHARTS.length, (i + 1) * CHARTS.length)]));
    },
    render() {
      paint();
      schedule();
      return h("div", { dataset: { page: "metrics" } },
        h("h1", {}, "Metrics and alarms"),
        scaleNote,
        section("Deployment groups", body),
        section("Alarms", alarmList));
    },
    wants: (change) => change.kind === "metric-alarm" || change.kind === "deployment",
    async refresh() {
      await view.load();
      paint();
      showTimeScale(settings.timeScale);
    },
    dispose() {
      clearTimeout(timer);
      timer = null;
    },
  };

  // Datapoints arrive without events on the feed: re-read once per emulated minute (2 to 15 s real).
  function schedule() {
    clearTimeout(timer);
    const factor = (settings && settings.timeScale.factor) || 1;
    timer = setTimeout(async () => {
      try {
        await view.refresh();
      } catch (err) {
        console.warn("metrics refresh failed", err);
      }
      if (timer !== null) schedule();
    }, emulatedMinuteMs(factor));
  }

  function paint() {
    const factor = settings.timeScale.factor;
    replace(scaleNote, `The last ${MINUTES} minutes of emulated time`,
      realWindow(MINUTES, factor),
      `, one point per 60 emulated seconds. The fleet's traffic generator publishes these metrics to `,
      h("code", {}, NAMESPACE), `; alarms are evaluated on the same clock.`);
    if (!groups.length) {
      replace(body, h("p", {}, "No deployment group has metrics or alarms yet. Metrics appear once a deployment group serves traffic ",
        "(the fleet's traffic generator is on) or something publishes to ", h("code", {}, NAMESPACE), " with a ",
        h("code", {}, "DeploymentGroupName"), " dimension."));
    } else {
      replace(body, groups.map((g) => groupBlock(g)));
    }
    paintAlarms();
  }

  function groupBlock(group) {
    const markers = deploymentMarkers(deployments, group);
    const answers = charts[group] || [];
    for (const a of answers) {
      for (const c of a.alarmChanges) markers.push({ t: c.t, kind: "alarm", label: `${c.alarm} → ${c.to}` });
    }
    return h("article", { class: "metric-group", dataset: { group } },
      h("h3", {}, group),
      h("div", { class: "charts" }, CHARTS.map((c, i) => {
        const a = answers[i];
        const thresholds = a.alarms.map((al) => ({ value: al.threshold,
          label: `${al.name} (${al.state}): ${al.statistic} ${COMPARE[al.comparison] || al.comparison} ${niceNumber(al.threshold)}` }));
        return h("figure", { class: "chart-box", dataset: { metric: c.metric } },
          h("figcaption", {}, h("strong", {}, c.title), " ", h("span", { class: "muted" }, `${c.metric} ${c.stat}, ${c.unit}`)),
          lineChart({ title: `${c.title} for ${group}`, unit: c.unit, start: a.start, end: a.end, points: a.points,
            thresholds, markers, format: c.format }));
      })),
      markers.length ? h("details", { class: "marker-list" }, h("summary", {}, `${markers.length} events on the time axis`),
        h("ol", {}, markers.sort((x, y) => x.t - y.t).map((m) => h("li", {}, when(m.t), ` ${m.label}`)))) : null);
  }

  function paintAlarms() {
    if (!alarms.length) {
      replace(alarmList, h("p", {}, "No alarms. Create one with ", h("code", {}, "aws cloudwatch put-metric-alarm"), "."));
      return;
    }
    replace(alarmList, h("div", { class: "table-wrap" }, h("table", { class: "list alarms" },
      h("caption", { class: "visually-hidden" }, "Alarms with their state and the reason for it"),
      h("thead", {}, h("tr", {}, ["Alarm", "State", "Metric", "Condition", "Reason", "Since"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, alarms.map((a) => h("tr", { dataset: { alarm: a.AlarmName, state: a.StateValue } },
        h("th", { scope: "row" }, a.AlarmName),
        h("td", {}, stateBadge(a.StateValue)),
        h("td", {}, h("code", {}, `${a.Namespace} ${a.MetricName}`),
          (a.Dimensions || []).map((d) => h("div", { class: "mono muted" }, `${d.Name}=${d.Value}`))),
        h("td", {}, `${a.Statistic || a.ExtendedStatistic} ${COMPARE[a.ComparisonOperator] || a.ComparisonOperator} ${a.Threshold} `,
          `for ${a.DatapointsToAlarm} of ${a.EvaluationPeriods} periods of ${a.periodShown}`),
        h("td", { class: "reason" }, a.StateReason || "–"),
        h("td", {}, when(a.StateTransitionedTimestamp))))))));
  }
  return view;
}
