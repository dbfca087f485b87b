"""Starting and stopping the control plane process and the default fleet."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from rich.console import Console

from emulator.cli.client import Client
from emulator.config import Settings
from emulator.runtime.container_runtime import LABEL_ROLE
from emulator.runtime.docker_engine import DockerEngine

DEFAULT_FLEET_TAGS = {"Environment": "demo"}


class StartFailed(RuntimeError):
    pass


def server_pid(settings: Settings) -> int | None:
    pid_file = settings.run_dir / "server.pid"
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start_server(settings: Settings, console: Console, timeout: float = 90) -> Client:
    """Starts the control plane in the background unless it already answers."""
    client = Client(settings.control_url)
    if client.healthy():
        return client
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.run_dir / "server.log"
    console.print(f"starting the control plane on {settings.control_url} (log: {log_path})")
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "emulator.server"], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, env=os.environ.copy())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise StartFailed("the control plane did not start:\n  " + "\n  ".join(tail))
        if client.healthy():
            return client
        time.sleep(0.3)
    raise StartFailed(f"the control plane did not answer within {timeout:.0f} s; see {log_path}")


def ensure_fleet(client: Client, settings: Settings, console: Console) -> list[dict]:
    running = [i for i in client.get("/instances")["instances"] if i.get("state") == "running"]
    missing = settings.instance_count - len(running)
    if missing > 0:
        console.print(f"launching {missing} instance(s) of the agent image")
        running += client.post("/instances", {"count": missing, "tags": DEFAULT_FLEET_TAGS})["instances"]
    return running


def stop_everything(settings: Settings, console: Console) -> None:
    pid = server_pid(settings)
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if server_pid(settings) is None:
                break
            time.sleep(0.2)
        console.print("control plane stopped")
    engine = DockerEngine(installation=str(settings.home))
    removed = 0
    for role in ("instance", "build"):
        for info in engine.list({LABEL_ROLE: role}):
            engine.remove(info.id)
            removed += 1
    console.print(f"removed {removed} container(s)")
