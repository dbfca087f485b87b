"""A steady request rate at one URL, in its own process, and a report of what answered.

Open loop: request n is sent at start + n/rate whether or not earlier ones have answered, so a
slow or failing server never lowers the offered rate (a closed loop would hide exactly the
failures a release should not have). Each request opens its own connection. SIGINT or SIGTERM
ends the run early; requests in flight get up to their timeout, then the report is written.

The report counts sent, answered 2xx, failed (5xx answers, connection errors, timeouts), latency
percentiles of answered requests, and answers per X-Pipelocal-Target-Group, per
X-Pipelocal-Target and per body fingerprint (the first line mentioning "version", without markup,
or a short hash of the body) so a caller can see which version answered.

Run as `pipelocal load URL --rate 100 --duration 30 --json report.json`, or
`python -m emulator.services.elb.load_generator` with the same arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

MAX_RATE = 2000.0
_TAG = re.compile(r"<[^>]*>")


def fingerprint(body: bytes) -> str:
    """Which version answered: the first line that mentions "version" (markup removed), else a hash."""
    for line in body.decode("utf-8", errors="replace").splitlines():
        if "version" in line.lower():
            text = " ".join(_TAG.sub(" ", line).split())
            if text:
                return text[:100]
    return "sha1:" + hashlib.sha1(body).hexdigest()[:10]


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of sorted values."""
    if not sorted_values:
        return None
    rank = max(1, int(-(-p * len(sorted_values) // 100)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class LoadReport:
    url: str
    rate: float
    duration: float
    sent: int = 0
    answered_2xx: int = 0
    statuses: Counter = field(default_factory=Counter)
    server_errors: int = 0
    connection_errors: int = 0
    timeouts: int = 0
    latencies: list[float] = field(default_factory=list)
    target_groups: Counter = field(default_factory=Counter)
    targets: Counter = field(default_factory=Counter)
    versions: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    started: float = 0.0
    elapsed: float = 0.0
    stopped_by: str = "duration"

    @property
    def failed(self) -> int:
        return self.server_errors + self.connection_errors + self.timeouts

    def as_dict(self) -> dict:
        ordered = sorted(self.latencies)
        ms = lambda v: None if v is None else round(v * 1000, 2)  # noqa: E731
        return {
            "url": self.url, "rate": self.rate, "duration": self.duration, "elapsed": round(self.elapsed, 3),
            "stoppedBy": self.stopped_by, "sent": self.sent, "answered2xx": self.answered_2xx, "failed": self.failed,
            "failures": {"5xx": self.server_errors, "connection": self.connection_errors, "timeout": self.timeouts},
            "achievedRate": round(self.sent / self.elapsed, 2) if self.elapsed else 0.0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "latencyMs": {"p50": ms(percentile(ordered, 50)), "p99": ms(percentile(ordered, 99)),
                          "max": ms(ordered[-1] if ordered else None)},
            "targetGroups": dict(self.target_groups), "targets": dict(self.targets), "versions": dict(self.versions),
            "errors": dict(self.errors),
        }


async def _one(session: aiohttp.ClientSession, report: LoadReport) -> None:
    started = time.monotonic()
    try:
        async with session.get(report.url, allow_redirects=False) as answer:
            body = await answer.read()
    except TimeoutError:
        report.timeouts += 1
        return
    except (aiohttp.ClientError, OSError) as exc:
        report.connection_errors += 1
        report.errors[type(exc).__name__] += 1
        return
    report.latencies.append(time.monotonic() - started)
    report.statuses[answer.status] += 1
    report.target_groups[answer.headers.get("X-Pipelocal-Target-Group", "-")] += 1
    report.targets[answer.headers.get("X-Pipelocal-Target", "-")] += 1
    if 200 <= answer.status < 300:
        report.answered_2xx += 1
        report.versions[fingerprint(body)] += 1
    elif answer.status >= 500:
        report.server_errors += 1


async def generate(url: str, rate: float, duration: float, timeout: float = 5.0,
                   stop: asyncio.Event | None = None) -> LoadReport:
    """Sends `rate` requests per second for `duration` seconds (0: until `stop` is set)."""
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"rate {rate:g}: expected more than 0 and at most {MAX_RATE:g} requests per second")
    if duration < 0 or timeout <= 0:
        raise ValueError("duration must be 0 (until stopped) or more, and timeout more than 0 seconds")
    stop = stop or asyncio.Event()
    report = LoadReport(url, rate, duration, started=time.time())
    loop = asyncio.get_running_loop()
    in_flight: set[asyncio.Task] = set()
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout),
                                     auto_decompress=True) as session:
        begin = loop.time()
        n = 0
        while not stop.is_set():
            due = begin + n / rate
            if duration and due - begin >= duration:
                break
            delay = due - loop.time()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except TimeoutError:
                    pass
            task = loop.create_task(_one(session, report))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            report.sent += 1
            n += 1
        if stop.is_set():
            report.stopped_by = "signal"
        if in_flight:
            await asyncio.wait(set(in_flight), timeout=timeout + 1)
        report.elapsed = loop.time() - begin
    return report


def render(report: dict) -> str:
    lines = [f"{report['url']}: sent {report['sent']} in {report['elapsed']:g} s ({report['achievedRate']:g}/s, "
             f"asked {report['rate']:g}/s; ended by {report['stoppedBy']})",
             f"answered 2xx {report['answered2xx']}, failed {report['failed']} (5xx {report['failures']['5xx']}, "
             f"connection {report['failures']['connection']}, timeout {report['failures']['timeout']})",
             f"latency p50 {report['latencyMs']['p50']} ms, p99 {report['latencyMs']['p99']} ms, "
             f"max {report['latencyMs']['max']} ms"]
    for title, key in (("target groups", "targetGroups"), ("targets", "targets"), ("versions", "versions"),
                       ("statuses", "statuses"), ("errors", "errors")):
        if report[key]:
            lines.append(f"{title}: " + ", ".join(f"{k} {v}" for k, v in sorted(report[key].items())))
    return "\n".join(lines)


def run(url: str, rate: float, duration: float, timeout: float = 5.0, json_path: Path | None = None) -> dict:
    """Runs in this process until the duration ends or SIGINT/SIGTERM arrives; writes the report."""
    async def main() -> LoadReport:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await generate(url, rate, duration, timeout, stop)

    report = asyncio.run(main()).as_dict()
    if json_path:
        tmp = Path(f"{json_path}.tmp")
        tmp.write_text(json.dumps(report, indent=2))
        tmp.replace(json_path)  # readers never see half a report
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="load_generator", description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second (default 100)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds; 0 runs until SIGINT/SIGTERM")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request (default 5)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    try:
        report = run(args.url, args.rate, args.duration, args.timeout, args.json)
    except ValueError as exc:
        print(f"load_generator: {exc}", file=sys.stderr)
        return 2
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
