"""The standard-library Docker client: HTTP framing, the multiplexed output stream, error mapping.

A tiny fake engine on a unix socket answers with canned bytes; the real engine is exercised by
tests/integration/test_codebuild_conformance.py."""

from __future__ import annotations

import json
import socket
import struct
import threading

import pytest

from emulator.runtime.container_runtime import ContainerSpec, ImageMissing, RuntimeUnavailable
from emulator.runtime.docker_socket import DockerSocketEngine, _demultiplex, _Response, socket_path


def _frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + struct.pack(">I", len(data)) + data


def _response(raw: bytes) -> _Response:
    ours, theirs = socket.socketpair()
    theirs.sendall(raw)
    theirs.close()
    return _Response(ours)


def test_content_length_body():
    r = _response(b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: application/json\r\n\r\n{"Id":"ab"}extra')
    assert r.status == 200 and r.headers["content-type"] == "application/json"
    assert r.read() == b'{"Id":"ab"}'


def test_chunked_body_across_chunks():
    r = _response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\n\r\n")
    assert r.read() == b"abcdefg"


def test_body_until_the_engine_closes_and_no_body_for_204():
    assert _response(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nraw bytes").read() == b"raw bytes"
    assert _response(b"HTTP/1.1 204 No Content\r\n\r\n").read() == b""


def test_an_upgraded_attach_is_raw_until_the_engine_closes_it():
    r = _response(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                  b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + _frame(1, b"hi\n"))
    assert r.status == 101 and "".join(_demultiplex(r)) == "hi\n"


def test_not_http_is_reported_as_an_unreachable_engine():
    with pytest.raises(RuntimeUnavailable, match="other than HTTP"):
        _response(b"SSH-2.0-OpenSSH\r\n")


def test_demultiplexed_output_keeps_order_and_joins_split_characters():
    snowman = "☃".encode()
    body = _frame(1, b"out " + snowman[:1]) + _frame(1, snowman[1:] + b"\n") + _frame(2, b"err\n") + _frame(1, b"end\n")
    text = "".join(_demultiplex(_response(b"HTTP/1.1 200 OK\r\n\r\n" + body)))
    assert text == "out ☃\nerr\nend\n"


def test_socket_path_from_docker_host():
    assert socket_path({}) == "/var/run/docker.sock"
    assert socket_path({"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}) == "/run/user/1000/docker.sock"
    assert socket_path({"DOCKER_HOST": "tcp://10.0.0.1:2375"}) is None


class _FakeEngine:
    """Answers each request on a unix socket with the next canned response; records what it got."""

    def __init__(self, path: str, answers: list[bytes]):
        self.requests: list[bytes] = []
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(path)
        self.server.listen()
        self.answers = answers
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        for answer in self.answers:
            conn, _ = self.server.accept()
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next((line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), b"0"))
            while len(body) < length:
                body += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + body)
            conn.sendall(answer)
            conn.close()


def _json_answer(status: int, doc: dict) -> bytes:
    body = json.dumps(doc).encode()
    return f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def test_missing_image_is_image_missing_and_the_request_carries_the_spec(tmp_path):
    path = str(tmp_path / "engine.sock")
    engine = _FakeEngine(path, [_json_answer(404, {"message": "No such image: nope:1"})])
    spec = ContainerSpec(image="nope:1", name="b-1", command=["true"], env={"A": "1"}, network=None, cpus=1.0,
                         memory_mb=3072, auto_remove=True, stdin=b"tar")
    with pytest.raises(ImageMissing, match="pipelocal images"):
        DockerSocketEngine(path, installation="/home/x").start(spec)
    head, _, body = engine.requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /containers/create?name=b-1 HTTP/1.1")
    config = json.loads(body)
    assert config["Env"] == ["A=1"] and config["OpenStdin"] and config["StdinOnce"]
    assert config["HostConfig"]["AutoRemove"] and config["HostConfig"]["NanoCpus"] == 10**9
    assert config["HostConfig"]["Memory"] == 3072 * 1024 * 1024 and "NetworkMode" not in config["HostConfig"]
    assert config["Labels"]["pipelocal.installation"] == "/home/x"


def test_an_engine_that_is_not_there(tmp_path):
    with pytest.raises(RuntimeUnavailable, match="not reachable"):
        DockerSocketEngine(str(tmp_path / "none.sock")).ping()
