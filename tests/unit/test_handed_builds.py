"""Handing `pipelocal build` to the control plane: who may, what it refuses, when the command runs the build itself."""

from __future__ import annotations

import json
import os
import socket
import stat

import pytest

from emulator import contracts
from emulator.cli.build_handoff import Receiver, hand_over
from emulator.services.codebuild.handed_builds import HandedBuilds, NotHere


class _NoRuntime:
    def __getattr__(self, name):
        raise AssertionError(f"no container may start: {name} was called")


def _handed(tmp_path) -> HandedBuilds:
    return HandedBuilds(_NoRuntime(), None, tmp_path / "runtimes", "us-east-1", "000000000000")


def test_the_token_file_is_readable_by_its_owner_only(tmp_path):
    handed = _handed(tmp_path)
    path = handed.publish_token(tmp_path / "run")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert handed.check_token(path.read_text())
    assert not handed.check_token("guess") and not handed.check_token(None)


def test_another_users_build_or_an_unseen_directory_is_left_to_the_command(tmp_path):
    handed = _handed(tmp_path)
    with pytest.raises(NotHere, match="another user"):
        handed.start(contracts.LocalBuildRequest(source_dir=str(tmp_path), uid=os.getuid() + 1))
    with pytest.raises(NotHere, match="not a directory the control plane sees"):
        handed.start(contracts.LocalBuildRequest(source_dir=str(tmp_path / "elsewhere"), uid=os.getuid()))


def test_a_bad_buildspec_is_refused_with_file_line_and_key_before_any_container(tmp_path):
    (tmp_path / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    on-failure: SOMETIMES\n    commands:\n      - x\n")
    build = _handed(tmp_path).start(contracts.LocalBuildRequest(source_dir=str(tmp_path), uid=os.getuid()))
    event = build.next_event(1)
    assert event["kind"] == "refused"
    assert "buildspec.yml:4: phases.build.on-failure" in event["text"].replace("\n", "")
    assert build.next_event(1) is None


def test_the_command_runs_the_build_itself_without_a_control_plane(tmp_path):
    request = contracts.LocalBuildRequest(source_dir=str(tmp_path), uid=os.getuid())
    calls = []

    receiver = Receiver(text=calls.append, phase=calls.append, refused=lambda k, m: calls.append(m),
                        result=calls.append, sent=lambda: calls.append("sent"))
    assert hand_over(request, tmp_path, 1, receiver) is None  # no token file: no control plane ever ran
    (tmp_path / contracts.LOCAL_BUILD_TOKEN_FILE).write_text("left by one that stopped")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    assert hand_over(request, tmp_path, port, receiver) is None  # nothing listens
    assert calls == []


def test_the_route_takes_builds_from_this_machine_with_the_token_only(tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from emulator.api.internal_routes import internal_router

    class _Plane:
        handed_builds = _handed(tmp_path)

    app = FastAPI()
    app.include_router(internal_router(_Plane()))
    body = contracts.encode(contracts.LocalBuildRequest(source_dir=str(tmp_path), uid=os.getuid()))
    client = TestClient(app)  # its requests come from "testclient", not loopback
    token = _Plane.handed_builds.token
    assert client.post(contracts.LOCAL_BUILDS, json=body, headers={contracts.TOKEN_HEADER: token}).status_code == 403
    local = TestClient(app, client=("127.0.0.1", 50000))
    assert local.post(contracts.LOCAL_BUILDS, json=body, headers={contracts.TOKEN_HEADER: "guess"}).status_code == 403
    other = {**body, "uid": os.getuid() + 1}
    assert local.post(contracts.LOCAL_BUILDS, json=other, headers={contracts.TOKEN_HEADER: token}).status_code == 409
    (tmp_path / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    commands: []\n")
    answer = local.post(contracts.LOCAL_BUILDS, json=body, headers={contracts.TOKEN_HEADER: token})
    assert answer.status_code == 200
    events = [json.loads(line) for line in answer.text.splitlines()]
    assert [e["kind"] for e in events] == ["refused"] and "buildspec.yml" in events[0]["text"]


def test_an_answer_that_breaks_off_is_reported_not_run_again(tmp_path):
    """Once the control plane has the build, the command never runs it a second time itself."""
    import http.server
    import threading

    class Cut(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps({"kind": "text", "text": "first line\n"}).encode() + b"\n")
            self.wfile.write(b'{"kind": "te')  # and the connection ends

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Cut)
    threading.Thread(target=server.handle_request, daemon=True).start()
    (tmp_path / contracts.LOCAL_BUILD_TOKEN_FILE).write_text("token")
    seen = []
    receiver = Receiver(text=seen.append, phase=seen.append, refused=lambda kind, message: (seen.append(kind), 1)[1],
                        result=lambda result: 0)
    code = hand_over(contracts.LocalBuildRequest(source_dir=str(tmp_path), uid=os.getuid()), tmp_path,
                     server.server_address[1], receiver)
    server.server_close()
    assert code == 1 and seen == ["first line\n", "lost"]
