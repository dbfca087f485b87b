"""Start-up problems a user can fix are one sentence each, with the fix."""

from __future__ import annotations

import socket

import pytest

from emulator.runtime.container_runtime import ContainerSpec, ImageMissing, RuntimeUnavailable
from emulator.runtime.docker_engine import DockerEngine
from emulator.server import StartError, bind
from emulator.store.seaweed_server import SeaweedServer, StoreStartError


def _taken_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def test_taken_control_plane_port_names_the_port_and_the_fix():
    holder = _taken_port()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(StartError) as caught:
            bind("127.0.0.1", port)
    finally:
        holder.close()
    message = str(caught.value)
    assert f"Port {port}" in message and "PIPELOCAL_PORT" in message and "pipelocal down" in message


def test_taken_store_port_names_the_port_and_the_setting(tmp_path):
    holder = socket.socket()
    holder.bind(("0.0.0.0", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    store = SeaweedServer(tmp_path / "store", port, "key", "secret", tmp_path / "store.log")
    try:
        with pytest.raises(StoreStartError) as caught:
            store.start(timeout=5)
    finally:
        holder.close()
    assert f"Port {port}" in str(caught.value) and "PIPELOCAL_S3_PORT" in str(caught.value)
    assert store.process is None  # nothing was started


def test_docker_not_running_is_one_sentence_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(RuntimeUnavailable) as caught:
        DockerEngine().ping()
    message = str(caught.value)
    assert message.startswith("Docker is not reachable")
    assert "Start the Docker engine" in message and "\n" not in message


def test_missing_image_tells_how_to_build_it():
    engine = DockerEngine()
    with pytest.raises(ImageMissing) as caught:
        engine.start(ContainerSpec(image="pipelocal/no-such-image:0", name="never-started", network=None))
    assert "pipelocal/no-such-image:0" in str(caught.value) and "pipelocal images" in str(caught.value)
