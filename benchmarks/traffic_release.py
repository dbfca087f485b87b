"""Failed requests under a steady load through the load balancer during three kinds of release.

Usage: .venv/bin/python benchmarks/traffic_release.py [--port 5350] [--rate 100] [--instances 2]
Starts its own control plane (a temporary PIPELOCAL_HOME; the store uses port+1 and +11..+14; load
balancer listeners port+20..+69) at time scale 60, and for each release kind launches its own fleet,
puts version 1 on it behind a load balancer, starts the load generator in a second process at
--rate requests per second through the load balancer, deploys version 2, and prints one row:
the deployment's wall time, requests sent, failed (5xx, connection errors, timeouts), the rate
achieved and the latency percentiles the client saw. Goal: 0 failed for blue/green and canary.
The proxy's own added latency is `benchmarks/lb_proxy.py`'s table.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from deploy_fleet import start_control_plane  # noqa: E402
from tests.integration.test_traffic_deployments import Load, Traffic, app_files  # noqa: E402

console = Console(width=160)


def release(t: Traffic, kind: str, instances: int, rate: int) -> dict:
    tag = f"bench-{kind}"
    fleet = t.launch(instances, tag)
    t.serve_first_version(fleet, "1")
    blue, green = t.target_group(), t.target_group()
    weights = {blue: 100, green: 0} if kind == "canary" else {blue: 1}
    lb = t.load_balancer(weights)
    t.client.post(f"/elb/target-groups/{blue}/register", {"instanceIds": [i["instanceId"] for i in fleet]})
    t.wait_healthy(blue, instances)
    options = {
        "in-place": {"deploymentConfigName": "CodeDeployDefault.OneAtATime",
                     "deploymentStyle": {"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
                     "loadBalancerInfo": {"targetGroupInfoList": [{"name": blue}]}},
        "blue/green": {"deploymentConfigName": "CodeDeployDefault.AllAtOnce",
                       "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
                       "loadBalancerInfo": {"targetGroupInfoList": [{"name": blue}]},
                       "blueGreenDeploymentConfiguration": {
                           "greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"}}},
        "canary": {"deploymentConfigName": "CodeDeployDefault.ECSCanary10Percent5Minutes",
                   "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
                   "loadBalancerInfo": {"targetGroupPairInfoList": [{"targetGroups": [{"name": blue},
                                                                                       {"name": green}]}]},
                   "blueGreenDeploymentConfiguration": {
                       "greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"}}},
    }[kind]
    group = t.group(tag, **options)
    load = Load(lb["url"], rate, t.tmp)
    started = time.monotonic()
    doc = t.deploy(group, app_files("2"))
    seconds = time.monotonic() - started
    time.sleep(1.0)
    report = load.report()
    return {"kind": kind, "status": doc["status"], "seconds": seconds, **report}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=5350)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--kinds", default="in-place,blue/green,canary")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="pipelocal-bench-traffic-"))
    process, client, store = start_control_plane(args.port, home)
    try:
        client.post("/cloudwatch/settings", {"timeScale": 60})
        t = Traffic(SimpleNamespace(client=client, store=store), home)
        rows = []
        for kind in args.kinds.split(","):
            console.print(f"[dim]{kind}: {args.instances} instances, {args.rate} requests/s through the load "
                          f"balancer[/dim]")
            rows.append(release(t, kind, args.instances, args.rate))
        table = Table(title=f"Releases under {args.rate} requests/s through the load balancer "
                            f"({args.instances} instances, time scale 60)")
        for column in ("release", "deployment", "wall time", "sent", "failed", "achieved rate",
                       "p50 ms", "p99 ms", "versions seen"):
            table.add_column(column)
        for r in rows:
            table.add_row(r["kind"], r["status"], f"{r['seconds']:.1f} s", str(r["sent"]), str(r["failed"]),
                          f"{r['achievedRate']:.0f}/s", str(r["latencyMs"]["p50"]), str(r["latencyMs"]["p99"]),
                          ", ".join(f"{k}: {v}" for k, v in sorted(r["versions"].items())))
        console.print(table)
    finally:
        Load.stop_all()
        try:
            for inst in client.get("/instances")["instances"]:
                client.delete(f"/instances/{inst['instanceId']}")
        finally:
            process.terminate()
            process.wait(30)
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
