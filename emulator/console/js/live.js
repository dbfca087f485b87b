// The live feed: one EventSource on /api/stream. The browser resumes on its own after a network
// error (sending Last-Event-ID); a watchdog reopens the stream when it ends up closed, resuming
// after the last sequence number seen, so no change is lost either way.

const WATCHDOG_MS = 1000;

export class LiveFeed {
  constructor(indicator) {
    this.indicator = indicator;
    this.listeners = new Set();
    this.lastSeq = null;
    this.connections = 0;
    this.source = null;
    this.timer = null;
  }

  async start() {
    if (this.lastSeq === null) {
      try {
        const cursor = await (await fetch("/api/events/cursor")).json();
        this.lastSeq = cursor.last;
      } catch {
        this.lastSeq = null;
      }
    }
    this.open();
    this.timer = setInterval(() => this.watch(), WATCHDOG_MS);
  }

  open() {
    const after = this.lastSeq === null ? "" : `?after=${this.lastSeq}`;
    const source = new EventSource(`/api/stream${after}`);
    this.source = source;
    this.show("connecting", "Connecting…");
    source.addEventListener("open", () => {
      if (this.source !== source) return;
      this.connections += 1;
      this.indicator.dataset.connections = String(this.connections);
      this.show("open", "Live");
    });
    source.addEventListener("hello", (e) => {
      const { after: start } = JSON.parse(e.data);
      if (this.lastSeq === null) this.lastSeq = start;
    });
    source.addEventListener("change", (e) => {
      const change = JSON.parse(e.data);
      this.lastSeq = Math.max(this.lastSeq || 0, change.seq);
      for (const listener of this.listeners) listener(change);
    });
    source.addEventListener("error", () => {
      if (this.source !== source) return;
      this.show("reconnecting", "Reconnecting…");
    });
  }

  watch() {
    if (!this.source || this.source.readyState === EventSource.CLOSED) {
      this.show("reconnecting", "Reconnecting…");
      this.open();
    }
  }

  show(state, text) {
    this.indicator.dataset.state = state;
    const label = this.indicator.querySelector(".live-text");
    if (label.textContent !== text) label.textContent = text;
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

// A build log as it is written; ends itself when the build is complete.
export function followLog(buildId, onChunk, onEnd) {
  let lastSeq = 0;
  let done = false;
  let source = null;
  let timer = null;
  const open = () => {
    source = new EventSource(`/api/builds/${encodeURIComponent(buildId)}/log/stream?after=${lastSeq}`);
    source.addEventListener("log", (e) => {
      const chunk = JSON.parse(e.data);
      if (chunk.seq <= lastSeq) return;
      lastSeq = chunk.seq;
      onChunk(chunk.text);
    });
    source.addEventListener("end", () => {
      done = true;
      source.close();
      clearInterval(timer);
      onEnd();
    });
  };
  open();
  timer = setInterval(() => {
    if (!done && source.readyState === EventSource.CLOSED) open();
  }, WATCHDOG_MS);
  return () => {
    done = true;
    clearInterval(timer);
    source.close();
  };
}
