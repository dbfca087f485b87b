"""docker-compose.yml for real: the file validates, and one `up` under a private project name and
private host ports brings a control plane, a store and two self-registering instances that take a
real deployment; `down -v` always runs."""

from __future__ import annotations

import io
import os
import secrets
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import httpx
import pytest
import yaml

from emulator.cli.client import Client
from emulator.config import load_settings
from emulator.store.object_store import ObjectStore

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
# four host ports clear of the ones the session control plane uses (port, +1, +11..+14)
BASE_PORT = int(os.environ.get("PIPELOCAL_TEST_PORT", "4850")) + 30
START_SERVER = (ROOT / "emulator" / "demo_app" / "app" / "scripts" / "start_server.sh").read_bytes()


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    pytest.skip("neither docker-compose nor the docker compose plugin is installed")


def run_compose(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*compose_command(), "-f", str(COMPOSE_FILE), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_compose_file_validates_with_the_services_and_network_pipelocal_needs():
    result = run_compose(os.environ.copy(), "config")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert set(config["services"]) == {"store", "control-plane", "web-1", "web-2"}
    assert config["networks"]["default"]["name"] == "pipelocal"
    cp_env = config["services"]["control-plane"]["environment"]
    assert cp_env["PIPELOCAL_S3_ENDPOINT"] == "http://store:4751"
    assert cp_env["PIPELOCAL_BIND"] == "0.0.0.0"
    for web in ("web-1", "web-2"):
        service = config["services"][web]
        assert service["image"] == "pipelocal/agent:1"
        assert service["environment"]["PIPELOCAL_TOKEN"] == cp_env["PIPELOCAL_REGISTRATION_TOKEN"]
        assert service["environment"]["PIPELOCAL_INSTANCE_TAGS"] == "Environment=demo"


@pytest.fixture(scope="module")
def compose_project(images_ready):
    from emulator.runtime.control_plane_image import ControlPlaneImageBuilder
    from emulator.runtime.docker_engine import DockerEngine

    ControlPlaneImageBuilder(load_settings().home / "images",
                             progress=lambda line: print(f"[images] {line}", flush=True)).ensure()
    DockerEngine().ensure_network()
    project = "pltest" + secrets.token_hex(4)
    env = {**os.environ, "COMPOSE_PROJECT_NAME": project,
           "PIPELOCAL_COMPOSE_PORT": str(BASE_PORT), "PIPELOCAL_COMPOSE_S3_PORT": str(BASE_PORT + 1),
           "PIPELOCAL_COMPOSE_WEB1_PORT": str(BASE_PORT + 2), "PIPELOCAL_COMPOSE_WEB2_PORT": str(BASE_PORT + 3),
           "PIPELOCAL_REGISTRATION_TOKEN": secrets.token_hex(16),
           "PIPELOCAL_S3_ACCESS_KEY": "compose-test", "PIPELOCAL_S3_SECRET_KEY": secrets.token_hex(16)}
    try:
        up = run_compose(env, "-p", project, "up", "-d", timeout=180)
        assert up.returncode == 0, up.stderr
        yield project, env
    finally:
        logs = run_compose(env, "-p", project, "logs", "--no-color", timeout=60)
        artifacts = ROOT / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        (artifacts / "compose.log").write_text(logs.stdout + logs.stderr)
        down = run_compose(env, "-p", project, "down", "-v", "--remove-orphans", timeout=120)
        assert down.returncode == 0, down.stderr


def revision_zip(marker: str) -> bytes:
    appspec = ("version: 0.0\nos: linux\nfiles:\n  - source: /index.html\n    destination: /var/www/html/\n"
               "hooks:\n  AfterInstall:\n    - location: scripts/start_server.sh\n      timeout: 60\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appspec.yml", appspec)
        archive.writestr("index.html", f"<h1>{marker}</h1>\n")
        info = zipfile.ZipInfo("scripts/start_server.sh")
        info.external_attr = 0o755 << 16
        archive.writestr(info, START_SERVER)
    return buffer.getvalue()


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_compose_up_registers_both_instances_and_deploys_to_them(compose_project):
    project, env = compose_project
    client = Client(f"http://127.0.0.1:{BASE_PORT}")
    def healthy():
        try:  # until the server listens, Docker's port proxy accepts and then drops the connection
            return client.healthy()
        except httpx.HTTPError:
            return False

    wait_for(healthy, 90, "the control plane's /api/health")

    names = {f"{project}-web-1": BASE_PORT + 2, f"{project}-web-2": BASE_PORT + 3}

    def registered():
        found = {i["instanceId"]: i for i in client.get("/instances")["instances"]
                 if i["instanceId"] in names and i.get("state") == "running"}
        return found if len(found) == len(names) else None

    instances = wait_for(registered, 60, "both compose instances to register")
    for name, port in names.items():
        assert instances[name]["tags"]["Environment"] == "demo"
        assert instances[name]["external"] is True
        assert instances[name]["appUrl"] == f"http://127.0.0.1:{port}/"

    store = ObjectStore(f"http://127.0.0.1:{BASE_PORT + 1}", env["PIPELOCAL_S3_ACCESS_KEY"],
                        env["PIPELOCAL_S3_SECRET_KEY"], "us-east-1")
    marker = "compose-" + secrets.token_hex(6)
    store.ensure_bucket("compose-revisions")
    store.put_bytes("compose-revisions", "app.zip", revision_zip(marker))
    client.post("/applications", {"applicationName": "ComposeApp"})
    client.post("/applications/ComposeApp/deployment-groups", {
        "deploymentGroupName": "demo",
        "ec2TagFilters": [{"Key": "Environment", "Value": "demo", "Type": "KEY_AND_VALUE"}]})
    deployment = client.post("/deployments", {
        "applicationName": "ComposeApp", "deploymentGroupName": "demo",
        "revision": {"revisionType": "S3", "s3Location": {"bucket": "compose-revisions", "key": "app.zip",
                                                           "bundleType": "zip"}}})
    deployment_id = deployment["deploymentId"]

    def finished():
        doc = client.get(f"/deployments/{deployment_id}")
        return doc if doc["status"] in ("Succeeded", "Failed", "Stopped") else None

    doc = wait_for(finished, 120, f"deployment {deployment_id} to finish")
    assert doc["status"] == "Succeeded", doc
    assert {t["instanceId"] for t in doc["targets"]} == set(names)
    for name in names:
        page = httpx.get(instances[name]["appUrl"], timeout=10)
        assert page.status_code == 200 and marker in page.text, (name, page.status_code, page.text[:200])
