"""Requests per second and latency percentiles of the AWS endpoint, from a load generator in a
second process on loopback.

Usage: .venv/bin/python benchmarks/api_load.py [--port 5370] [--seconds 5] [--concurrency 1,4,16]
       .venv/bin/python benchmarks/api_load.py --url http://127.0.0.1:4750   (an already running one)
Without --url it starts its own control plane (temporary PIPELOCAL_HOME, no instances) and stops it
afterwards. Each request is a plain json-1.1 POST over keep-alive connections, so the numbers are the
server's, not an SDK's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

PIPELINE = {
    "name": "bench-pipeline", "roleArn": "arn:aws:iam::000000000000:role/cp",
    "artifactStore": {"type": "S3", "location": "codepipeline-artifacts-pipelocal"},
    "stages": [
        {"name": "Source", "actions": [{
            "name": "Source", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit",
                                               "version": "1"},
            "configuration": {"RepositoryName": "bench", "BranchName": "main"},
            "outputArtifacts": [{"name": "Code"}]}]},
        {"name": "Build", "actions": [{
            "name": "Build", "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild",
                                              "version": "1"},
            "configuration": {"ProjectName": "bench"}, "inputArtifacts": [{"name": "Code"}]}]},
    ],
}
CASES = [
    ("GetPipelineState", "CodePipeline_20150709.GetPipelineState", {"name": "bench-pipeline"}),
    ("GetPipeline", "CodePipeline_20150709.GetPipeline", {"name": "bench-pipeline"}),
    ("PutMetricData", "GraniteServiceVersion20100801.PutMetricData",
     {"Namespace": "bench", "MetricData": [{"MetricName": "m", "Value": 1.0}]}),
]


def call(url: str, target: str, body: dict) -> tuple[int, dict]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("POST", "/", json.dumps(body), {"X-Amz-Target": target,
                                                 "Content-Type": "application/x-amz-json-1.1"})
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def worker(url: str, target: str, body: str, seconds: float, concurrency: int) -> None:
    """The load generator (run as its own process): prints one JSON line with every latency."""
    parts = urllib.parse.urlsplit(url)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def loop() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine, codes = [], {}
        headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"}
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            conn.request("POST", "/", body, headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - t0)
            codes[response.status] = codes.get(response.status, 0) + 1
        with lock:
            latencies.extend(mine)
            for k, v in codes.items():
                statuses[k] = statuses.get(k, 0) + v

    threads = [threading.Thread(target=loop) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"latencies": latencies, "elapsed": time.perf_counter() - started, "statuses": statuses}))


def measure(url: str, target: str, body: dict, seconds: float, concurrency: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", url, target, json.dumps(body), str(seconds),
                          str(concurrency)], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    lat = sorted(data["latencies"])
    return {"requests": len(lat), "rps": len(lat) / data["elapsed"],
            "p50": statistics.median(lat) * 1000, "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
            "statuses": data["statuses"]}


def start_server(port: int) -> tuple[subprocess.Popen, str]:
    home = tempfile.mkdtemp(prefix="pipelocal-bench-")
    env = {**os.environ, "PIPELOCAL_HOME": home, "PIPELOCAL_PORT": str(port), "PIPELOCAL_S3_PORT": str(port + 1),
           "PIPELOCAL_INSTANCES": "0", "PIPELOCAL_LOG_LEVEL": "warning"}
    log = open(os.path.join(home, "server.log"), "wb")
    process = subprocess.Popen([sys.executable, "-m", "emulator.server"], env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(open(os.path.join(home, "server.log")).read()[-3000:])
        try:
            call(url, "CodePipeline_20150709.ListPipelines", {})
            return process, url
        except OSError:
            time.sleep(0.3)
    raise SystemExit("control plane did not start")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, target, body, seconds, concurrency = sys.argv[2:7]
        return worker(url, target, body, float(seconds), int(concurrency))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--port", type=int, default=5370)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,4,16")
    args = parser.parse_args()
    process = None
    url = args.url
    if url is None:
        process, url = start_server(args.port)
    try:
        status, doc = call(url, "CodePipeline_20150709.CreatePipeline", {"pipeline": PIPELINE})
        if status != 200 and doc.get("__type") != "PipelineNameInUseException":
            raise SystemExit(f"could not create the benchmark pipeline: {doc}")
        print(f"AWS endpoint {url}, {args.seconds:g} s per row, load generator in a second process, "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
        print(f"{'operation':34} {'clients':>7} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  statuses")
        for name, target, body in CASES:
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                r = measure(url, target, body, args.seconds, concurrency)
                print(f"{name:34} {concurrency:>7} {r['requests']:>9} {r['rps']:>8.0f} {r['p50']:>8.1f} "
                      f"{r['p99']:>8.1f}  {r['statuses']}")
    finally:
        if process is not None:
            process.terminate()
            process.wait(30)


if __name__ == "__main__":
    main()
