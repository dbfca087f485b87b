// Metrics and alarms arrive with CloudWatch emulation in a later change; this page holds their place.

import { h } from "../dom.js";

export function metricsView() {
  return {
    title: "Metrics and alarms",
    async load() {},
    render() {
      return h("div", { dataset: { page: "metrics" } },
        h("h1", {}, "Metrics and alarms"),
        h("p", { class: "placeholder", role: "note" },
          "Coming in a later change: charts of build and deployment durations and success rates, and the alarms a deployment group watches. ",
          "pipelocal does not emulate CloudWatch yet, so there is nothing to chart here."));
    },
  };
}
