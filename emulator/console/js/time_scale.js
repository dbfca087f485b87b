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

// Real milliseconds of one emulated minute, kept between 2 and 15 s: how often a page whose data
// arrives without events (datapoints) reads it again.
export function emulatedMinuteMs(factor) {
  return Math.min(15000, Math.max(2000, 60000 / (factor || 1)));
}

// " (40 s real at time ×45)" for a window of `minutes` emulated minutes; nothing at real time.
export function realWindow(minutes, factor) {
  if (factor === 1) return "";
  const real = (minutes * 60) / factor;
  return ` (${real < 120 ? `${real.toFixed(0)} s` : `${(real / 60).toFixed(1)} min`} real at time ×${factor})`;
}
