// The time scale in the header on every page: times, periods and waits are compressed by one factor
// (set with `pipelocal alarms time-scale`), so the reader must know which clock a page speaks in.

import { get } from "./api.js";

// `known`: the settings' timeScale when the caller has just read it.
export async function showTimeScale(known) {
  const el = document.getElementById("time-scale");
  if (!el) return;
  try {
    const timeScale = known || (await get("/cloudwatch/settings")).timeScale;
    const factor = timeScale.factor;
    el.dataset.factor = String(factor);
    el.textContent = factor === 1 ? "real time" : `time ×${factor}`;
    el.title = factor === 1 ? "Times, periods and waits run at real speed"
      : `Compressed time: ${timeScale.description}. Periods, alarm evaluations and bake times run ${factor} times faster.`;
  } catch {
    el.textContent = "";
  }
}
