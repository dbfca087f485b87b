"""How fast a status change reaches the console's event stream, with 1 to many streams open, and
whether open streams slow the rest of the API down.

Usage: .venv/bin/python benchmarks/console_stream.py [--port 5450] [--rounds 20] [--streams 1,10,50]
Starts its own control plane (temporary PIPELOCAL_HOME, no instances) and stops it afterwards. Each
round starts an execution of a Source + manual approval pipeline and times, on every open stream, the
arrival of that execution's first event, from the moment the start request was sent.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PIPELINE = {
    "name": "bench-console", "roleArn": "arn:aws:iam::000000000000:role/cp",
    "artifactStore": {"type": "S3", "location": "codepipeline-artifacts-pipelocal"},
    "stages": [{"name": "Source", "actions": [{
        "name": "Source", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
        "configuration": {"RepositoryName": "bench-console", "BranchName": "main"},
        "outputArtifacts": [{"name": "Code"}]}]},
        # a second stage is required; executions wait here (newer ones supersede older waiting ones)
        {"name": "Approve", "actions": [{
            "name": "Hold", "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]}],
}


def connect(port: int, timeout: float = 30) -> http.client.HTTPConnection:
    """No Nagle delay, so small requests are timed, not the client's TCP stack."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def request(port: int, method: str, path: str, body: dict | None = None) -> dict:
    conn = connect(port)
    conn.request(method, path, json.dumps(body) if body is not None else None,
                 {"Content-Type": "application/json"} if body is not None else {})
    response = conn.getresponse()
    data = response.read()
    if response.status >= 400:
        raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
    return json.loads(data or b"{}")


def start_server(port: int) -> tuple[subprocess.Popen, str]:
    home = tempfile.mkdtemp(prefix="pipelocal-bench-console-")
    env = {**os.environ, "PIPELOCAL_HOME": home, "PIPELOCAL_PORT": str(port), "PIPELOCAL_S3_PORT": str(port + 1),
           "PIPELOCAL_INSTANCES": "0", "PIPELOCAL_LOG_LEVEL": "warning"}
    log = open(os.path.join(home, "server.log"), "wb")
    process = subprocess.Popen([sys.executable, "-m", "emulator.server"], env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(open(os.path.join(home, "server.log")).read()[-3000:])
        try:
            request(port, "GET", "/api/health")
            return process, home
        except OSError:
            time.sleep(0.3)
    raise SystemExit("control plane did not start")


def provision(port: int, home: str) -> None:
    request(port, "POST", "/api/repositories", {"repositoryName": "bench-console"})
    work = Path(home) / "work"
    subprocess.run(["git", "clone", "-q", f"http://127.0.0.1:{port}/v1/repos/bench-console", str(work)], check=True,
                   capture_output=True)
    (work / "README").write_text("bench\n")
    for args in (["add", "-A"], ["-c", "user.email=b@b", "-c", "user.name=b", "commit", "-q", "-m", "bench"],
                 ["push", "-q", "origin", "HEAD:main"]):
        subprocess.run(["git", *args], cwd=work, check=True, capture_output=True)
    request(port, "POST", "/api/pipelines", {"pipeline": PIPELINE})


class Stream(threading.Thread):
    """One open /api/stream, recording when each execution's first event arrived."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.first_seen: dict[str, float] = {}
        self.delivery: dict[str, float] = {}  # event written (server clock) -> received, same machine
        self.ready = threading.Event()
        self.conn: http.client.HTTPConnection | None = None

    def run(self) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        self.conn.request("GET", "/api/stream", headers={"Accept": "text/event-stream"})
        response = self.conn.getresponse()
        data = None
        try:
            for raw in response:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: hello"):
                    self.ready.set()
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line == "" and data is not None:
                    execution = data.get("detail", {}).get("pipelineExecutionId") if isinstance(data, dict) else None
                    if data.get("kind") == "pipeline-execution":
                        execution = data["id"]
                    if execution and execution not in self.first_seen:
                        self.first_seen[execution] = time.monotonic()
                        self.delivery[execution] = time.time() - data["ts"]
                    data = None
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        if self.conn and self.conn.sock:
            self.conn.sock.close()


def health_latency(port: int, samples: int = 20) -> float:
    times = []
    conn = connect(port)
    for _ in range(samples):
        started = time.perf_counter()
        conn.request("GET", "/api/health")
        conn.getresponse().read()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(port: int, streams: int, rounds: int) -> dict:
    opened = [Stream(port) for _ in range(streams)]
    for s in opened:
        s.start()
    for s in opened:
        if not s.ready.wait(30):
            raise SystemExit(f"stream did not open with {streams} streams")
    latencies, deliveries = [], []
    for _ in range(rounds):
        sent = time.monotonic()
        execution = request(port, "POST", "/api/pipelines/bench-console/executions", {})["pipelineExecutionId"]
        deadline = time.monotonic() + 30
        while not all(execution in s.first_seen for s in opened):
            if time.monotonic() > deadline:
                raise SystemExit(f"execution {execution} never reached every stream")
            time.sleep(0.002)
        latencies += [(s.first_seen[execution] - sent) * 1000 for s in opened]
        deliveries += [s.delivery[execution] * 1000 for s in opened]
        time.sleep(0.3)  # let the Source action finish so rounds do not pile up
    health = health_latency(port)
    for s in opened:
        s.close()
    for run in request(port, "GET", "/api/pipelines/bench-console/executions")["pipelineExecutionSummaries"]:
        if run["status"] == "InProgress":  # the approval would otherwise wait for days
            request(port, "POST", f"/api/executions/{run['pipelineExecutionId']}/stop", {"abandon": True})
    latencies.sort()
    deliveries.sort()
    return {"streams": streams, "events": len(latencies), "p50": statistics.median(latencies),
            "d50": statistics.median(deliveries), "d99": deliveries[min(len(deliveries) - 1, int(len(deliveries) * 0.99))],
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], "max": latencies[-1],
            "health": health}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5450)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--streams", default="1,10,50")
    args = parser.parse_args()
    process, home = start_server(args.port)
    try:
        provision(args.port, home)
        idle_health = health_latency(args.port)
        rows = [measure(args.port, int(n), args.rounds) for n in args.streams.split(",")]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        shutil.rmtree(home, ignore_errors=True)
    print(f"console event stream: start request -> first event on every open stream ({args.rounds} rounds)")
    print(f"GET /api/health median with no stream open: {idle_health:.2f} ms")
    print("request->event: from sending the start request; written->received: from the event's own timestamp")
    print(f"{'streams':>8} {'events':>7} {'req p50':>8} {'req p99':>8} {'req max':>8} {'wr p50':>7} {'wr p99':>7}"
          f" {'health ms':>10}")
    for r in rows:
        print(f"{r['streams']:>8} {r['events']:>7} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['max']:>8.1f} {r['d50']:>7.1f}"
              f" {r['d99']:>7.1f} {r['health']:>10.2f}")


if __name__ == "__main__":
    main()
