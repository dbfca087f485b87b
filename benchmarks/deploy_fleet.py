"""Deploy a small revision to 1, 10 and 30 instances with AllAtOnce and OneAtATime.

Usage: .venv/bin/python benchmarks/deploy_fleet.py [--port 5150] [--sizes 1,10,30]
Starts its own control plane (a temporary PIPELOCAL_HOME, the given port; the store uses port+1 and
+11..+14), launches the largest fleet once, and prints one row per (size, configuration):
wall time from CreateDeployment to the final status, per-instance overhead (an instance's time from
its first lifecycle event to its last, minus the time inside its hook scripts), and the agents'
resident memory (VmRSS now and VmHWM, the peak) read from /proc inside the containers.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from emulator.cli.client import Client
from emulator.config import load_settings
from emulator.store.object_store import ObjectStore

console = Console(width=170)
BUCKET = "bench-bundles"
APP = "bench"
SCRIPTED = ("BeforeInstall", "ApplicationStart")
APPSPEC = """version: 0.0
os: linux
files:
  - source: site
    destination: /srv/bench
file_exists_behavior: OVERWRITE
hooks:
  BeforeInstall:
    - location: hooks/before.sh
  ApplicationStart:
    - location: hooks/start.sh
"""


def bundle() -> bytes:
    files = {"appspec.yml": APPSPEC, "site/index.html": "<h1>bench</h1>\n",
             "hooks/before.sh": "#!/bin/sh\nmkdir -p /srv/bench\n", "hooks/start.sh": "#!/bin/sh\necho started\n"}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text)
            info.mode = 0o755
            archive.addfile(info, io.BytesIO(text.encode()))
    return buffer.getvalue()


def start_control_plane(port: int, home: Path, extra_env: dict[str, str] | None = None):
    env = {**os.environ, "PIPELOCAL_HOME": str(home), "PIPELOCAL_PORT": str(port),
           "PIPELOCAL_S3_PORT": str(port + 1), "PIPELOCAL_INSTANCES": "0", **(extra_env or {})}
    settings = load_settings(env)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    log = open(settings.run_dir / "server.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "emulator.server"], env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    client = Client(settings.control_url)
    deadline = time.monotonic() + 90
    while not client.healthy():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit((settings.run_dir / "server.log").read_text()[-3000:])
        time.sleep(0.2)
    store = ObjectStore(settings.store_url, settings.s3_access_key, settings.s3_secret_key, settings.region)
    return process, client, store


def wait(client: Client, deployment_id: str) -> dict:
    while True:
        doc = client.get(f"/deployments/{deployment_id}")
        if doc["status"] in ("Succeeded", "Failed", "Stopped"):
            return doc
        time.sleep(0.1)


def overhead(target: dict) -> float:
    events = [e for e in target["lifecycleEvents"] if e.get("startTime") and e.get("endTime")]
    span = max(e["endTime"] for e in events) - min(e["startTime"] for e in events)
    hooks = sum(e["endTime"] - e["startTime"] for e in events if e["lifecycleEventName"] in SCRIPTED)
    return span - hooks


def agent_memory(containers: list[str]) -> tuple[float, float]:
    """Mean VmRSS and max VmHWM (peak) in MB of the agent process, found by `docker top` (host pids)."""
    rss, hwm = [], []
    for name in containers:
        out = subprocess.run(["docker", "top", name, "-eo", "pid,args"], capture_output=True, text=True).stdout
        pids = [line.split()[0] for line in out.splitlines()[1:] if "-m agents" in line]
        for pid in pids:
            status = Path(f"/proc/{pid}/status").read_text()
            values = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in status.splitlines()
                      if line.startswith(("VmRSS", "VmHWM"))}
            rss.append(values["VmRSS"])
            hwm.append(values["VmHWM"])
    return (statistics.mean(rss) if rss else 0.0), (max(hwm) if hwm else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=5150)
    parser.add_argument("--sizes", default="1,10,30")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    home = Path(tempfile.mkdtemp(prefix="pipelocal-bench-"))
    process, client, store = start_control_plane(args.port, home)
    instances: list[dict] = []
    try:
        t0 = time.monotonic()
        instances = client.post("/instances", {"count": max(sizes), "tags": {"Bench": "yes"}})["instances"]
        while not all(client.get(f"/instances/{i['instanceId']}").get("agentRegistered") for i in instances):
            time.sleep(0.2)
        launch = time.monotonic() - t0
        store.ensure_bucket(BUCKET)
        store.put_bytes(BUCKET, "bench.tgz", bundle())
        revision = {"revisionType": "S3", "s3Location": {"bucket": BUCKET, "key": "bench.tgz", "bundleType": "tgz"}}
        client.post("/applications", {"applicationName": APP})
        client.post(f"/applications/{APP}/deployment-groups",
                    {"deploymentGroupName": "fleet", "ec2TagFilters": [{"Key": "Bench", "Type": "KEY_ONLY"}]})
        table = Table(title=f"deploy a small revision ({max(sizes)} instances launched and registered in "
                            f"{launch:.1f} s; 2 cores)")
        for column in ("instances", "configuration", "status", "wall s", "overhead/instance s (mean)",
                       "overhead max s", "agent RSS MB (mean)", "agent peak RSS MB (max)"):
            table.add_column(column, justify="right")
        for size in sizes:
            for config in ("CodeDeployDefault.AllAtOnce", "CodeDeployDefault.OneAtATime"):
                names = [i["name"] for i in instances[:size]]
                started = time.monotonic()
                created = client.post("/deployments", {"applicationName": APP, "deploymentGroupName": "fleet",
                                                       "revision": revision, "deploymentConfigName": config,
                                                       "instanceNames": names})
                doc = wait(client, created["deploymentId"])
                wall = time.monotonic() - started
                per = [overhead(t) for t in doc["targets"]]
                rss, hwm = agent_memory([i["containerName"] for i in instances[:size]])
                table.add_row(str(size), config.split(".")[-1], doc["status"], f"{wall:.1f}",
                              f"{statistics.mean(per):.2f}", f"{max(per):.2f}", f"{rss:.1f}", f"{hwm:.1f}")
                console.print(f"{size} {config}: {doc['status']} in {wall:.1f} s")
        console.print(table)
    finally:
        for inst in instances:
            try:
                client.delete(f"/instances/{inst['instanceId']}")
            except Exception:  # noqa: BLE001 - best effort; the control plane may already be gone
                pass
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(10)


if __name__ == "__main__":
    main()
