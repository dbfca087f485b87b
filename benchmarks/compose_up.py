"""How long docker-compose takes: the control-plane image check (or rebuild), `up -d`, the control
plane answering, both instances registered, one deployment to both, `down -v`.

Usage: .venv/bin/python benchmarks/compose_up.py [--port 5580] [--rounds 1]
Each round brings up its own compose project (private name, host ports --port .. --port+3) and
always takes it down with its volumes.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emulator.cli.client import Client  # noqa: E402
from emulator.config import load_settings  # noqa: E402
from emulator.runtime.control_plane_image import ControlPlaneImageBuilder  # noqa: E402
from emulator.runtime.docker_engine import DockerEngine  # noqa: E402
from emulator.store.object_store import ObjectStore  # noqa: E402
from tests.integration.test_compose import revision_zip, run_compose  # noqa: E402


def until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out after {timeout:.0f} s")


def one_round(port: int) -> dict[str, float]:
    project = "plbench" + secrets.token_hex(4)
    env = {**os.environ, "COMPOSE_PROJECT_NAME": project, "PIPELOCAL_COMPOSE_PORT": str(port),
           "PIPELOCAL_COMPOSE_S3_PORT": str(port + 1), "PIPELOCAL_COMPOSE_WEB1_PORT": str(port + 2),
           "PIPELOCAL_COMPOSE_WEB2_PORT": str(port + 3), "PIPELOCAL_REGISTRATION_TOKEN": secrets.token_hex(16),
           "PIPELOCAL_S3_ACCESS_KEY": "bench", "PIPELOCAL_S3_SECRET_KEY": secrets.token_hex(16)}
    client = Client(f"http://127.0.0.1:{port}")
    times: dict[str, float] = {}
    t0 = time.monotonic()
    try:
        up = run_compose(env, "-p", project, "up", "-d", timeout=300)
        if up.returncode:
            raise SystemExit(up.stderr)
        times["up -d"] = time.monotonic() - t0
        until(client.healthy, 120)
        times["health, from up"] = time.monotonic() - t0
        names = {f"{project}-web-1", f"{project}-web-2"}
        until(lambda: names <= {i["instanceId"] for i in client.get("/instances")["instances"]
                                if i["state"] == "running"}, 120)
        times["registered, from up"] = time.monotonic() - t0
        store = ObjectStore(f"http://127.0.0.1:{port + 1}", "bench", env["PIPELOCAL_S3_SECRET_KEY"], "us-east-1")
        store.ensure_bucket("bench")
        store.put_bytes("bench", "app.zip", revision_zip("bench"))
        client.post("/applications", {"applicationName": "Bench"})
        client.post("/applications/Bench/deployment-groups", {
            "deploymentGroupName": "demo",
            "ec2TagFilters": [{"Key": "Environment", "Value": "demo", "Type": "KEY_AND_VALUE"}]})
        t1 = time.monotonic()
        dep = client.post("/deployments", {"applicationName": "Bench", "deploymentGroupName": "demo", "revision": {
            "revisionType": "S3", "s3Location": {"bucket": "bench", "key": "app.zip", "bundleType": "zip"}}})
        until(lambda: client.get(f"/deployments/{dep['deploymentId']}")["status"] in ("Succeeded", "Failed"), 300)
        times["deployment to both"] = time.monotonic() - t1
    finally:
        t2 = time.monotonic()
        run_compose(env, "-p", project, "down", "-v", "--remove-orphans", timeout=300)
        times["down -v"] = time.monotonic() - t2
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=5580)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    builder = ControlPlaneImageBuilder(load_settings().home / "images", progress=lambda line: None)
    t = time.monotonic()
    builder.ensure()
    image_s = time.monotonic() - t
    DockerEngine().ensure_network()
    rounds = [one_round(args.port) for _ in range(args.rounds)]
    print(f"\ncontrol-plane image: {image_s:.1f} s ({'rebuilt' if builder.built else 'up to date'})")
    print(f"{'seconds':<22}" + "".join(f"{'round ' + str(i + 1):>10}" for i in range(len(rounds))))
    for key in rounds[0]:
        print(f"{key:<22}" + "".join(f"{r.get(key, float('nan')):>10.1f}" for r in rounds))


if __name__ == "__main__":
    main()
