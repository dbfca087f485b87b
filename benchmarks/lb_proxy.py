"""The load balancer's added latency: the same steady, open-loop load straight to an instance's app
and through the load balancer, alternated round by round, so drift of the machine hits both.

Usage: .venv/bin/python benchmarks/lb_proxy.py [--port 5250] [--rates 100,200] [--seconds 10] [--rounds 3]
Starts its own control plane (temporary PIPELOCAL_HOME) with one instance serving a threading
http.server on port 80, a target group and a load balancer in front of it; removes them after.
Each run is a `load_generator` process (each request on a new connection, as the proxy also does
towards targets). Prints one row per run and a summary per rate: median p50/p99 direct and through
the load balancer, the added p99, and failed requests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from deploy_fleet import start_control_plane  # noqa: E402
from tests.integration.test_codedeploy_conformance import bundle, script  # noqa: E402

BUCKET = "bench-lb-proxy"
# http.server's listen backlog is 5: at 200 new connections a second SYNs get dropped and retried
# after 1 s, direct or not. The app gets a backlog of 256 so the numbers show the proxy, not that.
SERVER = ("import functools, http.server\n"
          "class Server(http.server.ThreadingHTTPServer):\n"
          "    request_queue_size = 256\n"
          "Server(('', 80), functools.partial(http.server.SimpleHTTPRequestHandler, directory='/srv/elb'))"
          ".serve_forever()\n")
START = script(
    "mkdir -p /srv/elb",
    'echo "<p>version $(hostname)</p>" > /srv/elb/index.html',
    "nohup python3 /opt/bench/server.py >/dev/null 2>&1 &",
    "for _ in $(seq 50); do python3 -c \"import urllib.request as u; u.urlopen('http://127.0.0.1/')\" 2>/dev/null"
    " && exit 0; sleep 0.1; done",
    "exit 1",
)


class ControlPlane:
    def __init__(self, port: int):
        self.home = tempfile.mkdtemp(prefix="pipelocal-bench-")
        self.process, self.client, self.store = start_control_plane(port, Path(self.home),
                                                                    {"PIPELOCAL_TRAFFIC_RATE": "0"})

    def call(self, method: str, path: str, payload: dict | None = None) -> dict:
        return self.client.request(method, path, json=payload)

    def put_revision(self) -> dict:
        self.store.ensure_bucket(BUCKET)
        key = f"rev/{uuid.uuid4().hex}.tgz"
        self.store.put_bytes(BUCKET, key, bundle({
            "appspec.yml": "version: 0.0\nos: linux\nfiles:\n  - source: server.py\n    destination: /opt/bench\n"
                           "hooks:\n  ApplicationStart:\n    - location: start.sh\n",
            "server.py": SERVER, "start.sh": START}))
        return {"revisionType": "S3", "s3Location": {"bucket": BUCKET, "key": key, "bundleType": "tgz"}}

    def stop(self) -> None:
        for inst in self.call("GET", "/instances")["instances"]:
            self.call("DELETE", f"/instances/{inst['instanceId']}")
        self.process.terminate()
        self.process.wait(60)
        shutil.rmtree(self.home, ignore_errors=True)


def until(probe, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.3)
    raise SystemExit(f"{what}: not within {timeout} s")


def setup(cp: ControlPlane) -> tuple[str, str]:
    """(the instance's app URL, the load balancer's URL)."""
    instance = cp.call("POST", "/instances", {"count": 1, "tags": {"Bench": "lb"}})["instances"][0]
    until(lambda: cp.call("GET", f"/instances/{instance['instanceId']}").get("agentRegistered"), "agent")
    cp.call("POST", "/applications", {"applicationName": "bench"})
    cp.call("POST", "/applications/bench/deployment-groups", {
        "deploymentGroupName": "web", "ec2TagFilters": [{"Key": "Bench", "Type": "KEY_ONLY"}]})
    deployment = cp.call("POST", "/deployments", {"applicationName": "bench", "deploymentGroupName": "web",
                                                  "revision": cp.put_revision()})["deploymentId"]
    done = until(lambda: (d := cp.call("GET", f"/deployments/{deployment}"))["status"] in
                 ("Succeeded", "Failed", "Stopped") and d, "deployment")
    if done["status"] != "Succeeded":
        raise SystemExit(f"deployment {done['status']}: {done.get('errorInformation')}")
    cp.call("POST", "/elb/target-groups", {"name": "bench", "healthCheck": {"intervalSeconds": 5, "timeoutSeconds": 2}})
    lb = cp.call("POST", "/elb/load-balancers", {"name": "bench", "targetGroups": ["bench"]})
    cp.call("POST", "/elb/target-groups/bench/register", {"instanceIds": [instance["instanceId"]]})
    until(lambda: cp.call("GET", "/elb/target-groups/bench/health")["targets"][0]["state"] == "healthy", "healthy")
    app = cp.call("GET", f"/instances/{instance['instanceId']}")["appUrl"]
    return app, lb["url"]


def run_load(url: str, rate: float, seconds: float, home: str) -> dict:
    out = Path(home) / f"load-{uuid.uuid4().hex[:6]}.json"
    subprocess.run([sys.executable, "-m", "emulator.services.elb.load_generator", url, "--rate", str(rate),
                    "--duration", str(seconds), "--json", str(out)], check=True, capture_output=True)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=5250)
    parser.add_argument("--rates", default="100,200")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cp = ControlPlane(args.port)
    try:
        app_url, lb_url = setup(cp)
        print(f"instance app {app_url}; load balancer {lb_url}; {os.cpu_count()} cores\n")
        print(f"{'rate':>5} {'round':>5} {'path':<13} {'sent':>6} {'achieved/s':>10} {'failed':>6} "
              f"{'p50 ms':>8} {'p99 ms':>8}")
        results: dict[tuple[float, str], list[dict]] = {}
        for rate in [float(r) for r in args.rates.split(",")]:
            for round_number in range(1, args.rounds + 1):
                for path, url in (("direct", app_url), ("load balancer", lb_url)):
                    report = run_load(url, rate, args.seconds, cp.home)
                    results.setdefault((rate, path), []).append(report)
                    print(f"{rate:>5g} {round_number:>5} {path:<13} {report['sent']:>6} {report['achievedRate']:>10g} "
                          f"{report['failed']:>6} {report['latencyMs']['p50']:>8} {report['latencyMs']['p99']:>8}")
        print(f"\n{'rate':>5} {'p50 direct':>10} {'p99 direct':>10} {'p50 LB':>8} {'p99 LB':>8} "
              f"{'added p99':>9} {'failed direct':>13} {'failed LB':>9}   (medians of rounds, ms)")
        for rate in sorted({r for r, _ in results}):
            direct, through = results[(rate, "direct")], results[(rate, "load balancer")]
            med = lambda runs, key: statistics.median(r["latencyMs"][key] for r in runs)  # noqa: E731
            print(f"{rate:>5g} {med(direct, 'p50'):>10.2f} {med(direct, 'p99'):>10.2f} {med(through, 'p50'):>8.2f} "
                  f"{med(through, 'p99'):>8.2f} {med(through, 'p99') - med(direct, 'p99'):>9.2f} "
                  f"{sum(r['failed'] for r in direct):>13} {sum(r['failed'] for r in through):>9}")
    finally:
        cp.stop()


if __name__ == "__main__":
    main()
