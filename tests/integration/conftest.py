"""A real control plane for integration tests: its own data directory and ports, the real Docker
engine, the real SeaweedFS store and real git. Containers it starts are removed afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from emulator.cli.client import Client
from emulator.config import Settings, load_settings
from emulator.runtime.docker_engine import DockerEngine
from emulator.store.object_store import ObjectStore

TEST_PORT = int(os.environ.get("PIPELOCAL_TEST_PORT", "4850"))


@dataclass
class RunningControlPlane:
    settings: Settings
    env: dict[str, str]
    client: Client
    store: ObjectStore
    process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        log = open(self.settings.run_dir / "server.log", "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "emulator.server"], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.settings.run_dir / "server.log").read_text()[-3000:])
            if self.client.healthy():
                return
            time.sleep(0.2)
        raise RuntimeError("control plane did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig) if sig == signal.SIGKILL else self.process.send_signal(sig)
            self.process.wait(30)

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()


@pytest.fixture(scope="session")
def images_ready() -> None:
    from emulator.runtime.images import ImageBuilder

    ImageBuilder(load_settings().home / "images", progress=lambda line: print(f"[images] {line}", flush=True)).ensure()


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory, images_ready) -> RunningControlPlane:
    home = tmp_path_factory.mktemp("pipelocal-home")
    env = {**os.environ, "PIPELOCAL_HOME": str(home), "PIPELOCAL_PORT": str(TEST_PORT),
           "PIPELOCAL_S3_PORT": str(TEST_PORT + 1), "PIPELOCAL_INSTANCES": "2"}
    settings = load_settings(env)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    cp = RunningControlPlane(
        settings=settings, env=env, client=Client(settings.control_url),
        store=ObjectStore(settings.store_url, settings.s3_access_key, settings.s3_secret_key, settings.region),
    )
    cp.start()
    cp.client.post("/instances", {"count": 2, "tags": {"Environment": "demo"}})
    yield cp
    cp.stop()
    engine = DockerEngine(installation=str(settings.home))
    for info in engine.list({}):
        engine.remove(info.id)
    log = settings.run_dir / "server.log"
    artifacts = Path(__file__).resolve().parents[2] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    if log.exists():
        (artifacts / "integration-server.log").write_text(log.read_text(errors="replace"))


@pytest.fixture(scope="session")
def cloudwatch(control_plane):
    """A boto3 CloudWatch client on the control plane's AWS endpoint (any key works)."""
    import boto3

    return boto3.client("cloudwatch", endpoint_url=control_plane.settings.control_url, region_name="us-east-1",
                        aws_access_key_id="any", aws_secret_access_key="thing")
