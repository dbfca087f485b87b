"""What docker-compose relies on: self-registration of instances, settings for running inside a
container, tag parsing in the agent, and the control-plane image's rebuild trigger."""

from __future__ import annotations

import time

import pytest

from agents.command_loop import instance_tags
from emulator.config import load_settings
from emulator.runtime.control_plane_image import recipe_hash, source_files
from emulator.services.codedeploy.fleet import EXTERNAL_SILENCE, Fleet
from emulator.state.database import Database


class NoRuntime:
    """External instances must never touch the container engine."""

    def __getattr__(self, name):
        raise AssertionError(f"runtime.{name} called for an external instance")


@pytest.fixture
def fleet(tmp_path):
    seen: dict[str, float] = {}
    f = Fleet(Database(tmp_path / "state.db", "000000000000", "us-east-1"), NoRuntime(), "http://cp:4750", {},
              last_seen=seen.get)
    f.seen = seen
    return f


def test_register_external_creates_a_running_instance_selectable_by_tags(fleet):
    doc = fleet.register_external("web-a", {"Environment": "demo"}, "172.18.0.5", "tok", "http://127.0.0.1:8081/")
    assert doc["state"] == "running" and doc["external"] is True
    assert doc["tags"] == {"Name": "web-a", "Environment": "demo"}
    assert doc["appUrl"] == "http://127.0.0.1:8081/"
    assert "_token" not in doc
    assert fleet.check_token("web-a", "tok") and not fleet.check_token("web-a", "other")
    assert [d["instanceId"] for d in fleet.matching([{"Key": "Environment", "Value": "demo",
                                                        "Type": "KEY_AND_VALUE"}])] == ["web-a"]


def test_registering_again_refreshes_tags_and_never_takes_over_a_launched_instance(fleet):
    fleet.register_external("web-a", {"Environment": "demo"}, "", "tok")
    again = fleet.register_external("web-a", {"Environment": "prod"}, "172.18.0.9", "tok")
    assert again["tags"]["Environment"] == "prod" and again["privateIpAddress"] == "172.18.0.9"
    assert len(fleet.list()) == 1
    fleet.db.put("instance", "i-launched", {"instanceId": "i-launched", "name": "web-1", "_token": "secret",
                                            "state": "running", "tags": {}})
    assert fleet.register_external("i-launched", {}, "", "tok") is None
    assert fleet.check_token("i-launched", "secret")


def test_external_instances_are_alive_while_they_poll_and_terminate_without_the_runtime(fleet):
    fleet.register_external("web-a", {}, "", "tok")
    fleet.db.update("instance", "web-a", lastSeen=time.time() - EXTERNAL_SILENCE - 1)
    assert not fleet.alive("web-a")
    fleet.seen["web-a"] = time.time()
    assert fleet.alive("web-a")
    fleet.adopt()  # must not inspect a container
    assert fleet.get("web-a")["state"] == "running"
    assert fleet.terminate("web-a")["state"] == "terminated"
    assert not fleet.alive("web-a")


def test_instance_tags_parse_and_reject_malformed_entries():
    assert instance_tags("") == {}
    assert instance_tags("Environment=demo, Role = web ,Empty=") == {"Environment": "demo", "Role": "web", "Empty": ""}
    with pytest.raises(ValueError, match="'Environment' is not Key=Value"):
        instance_tags("Environment")
    with pytest.raises(ValueError, match="not Key=Value"):
        instance_tags("=demo")


def test_container_settings_default_off_and_read_from_environment(monkeypatch):
    for name in ("PIPELOCAL_BIND", "PIPELOCAL_ADVERTISE_URL", "PIPELOCAL_S3_ADVERTISE_URL", "PIPELOCAL_REGISTRATION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    plain = load_settings()
    assert (plain.bind, plain.advertise_url, plain.s3_advertise_url, plain.registration_token) == (None,) * 4
    monkeypatch.setenv("PIPELOCAL_BIND", "0.0.0.0")
    monkeypatch.setenv("PIPELOCAL_ADVERTISE_URL", "http://control-plane:4750/")
    monkeypatch.setenv("PIPELOCAL_S3_ADVERTISE_URL", "http://store:4751")
    monkeypatch.setenv("PIPELOCAL_REGISTRATION_TOKEN", "t")
    s = load_settings()
    assert (s.bind, s.advertise_url, s.s3_advertise_url, s.registration_token) == \
        ("0.0.0.0", "http://control-plane:4750", "http://store:4751", "t")


def test_control_plane_image_recipe_changes_with_code_and_base(tmp_path):
    (tmp_path / "emulator").mkdir()
    (tmp_path / "emulator" / "server.py").write_text("print(1)\n")
    (tmp_path / "emulator" / "__pycache__").mkdir()
    (tmp_path / "emulator" / "__pycache__" / "server.cpython-311.pyc").write_bytes(b"x")
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    files = source_files(tmp_path)
    assert [p.name for p in files] == ["server.py", "pyproject.toml"]
    first = recipe_hash("sha256:a", files, tmp_path)
    assert recipe_hash("sha256:a", files, tmp_path) == first
    assert recipe_hash("sha256:b", files, tmp_path) != first
    (tmp_path / "emulator" / "server.py").write_text("print(2)\n")
    assert recipe_hash("sha256:a", source_files(tmp_path), tmp_path) != first
