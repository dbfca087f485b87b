"""The console's static files and event streams, against a stand-in control plane."""

from __future__ import annotations

import json
from unittest.mock import MagicMock

import pytest
from fastapi.testclient import TestClient

from emulator.api.app import create_app
from emulator.api.console_routes import resume_point, sse
from emulator.domain.errors import NotFound


def parse(stream: str) -> list[dict]:
    events = []
    for block in stream.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line.startswith(":") or ": " not in line:
                continue
            key, value = line.split(": ", 1)
            fields[key] = value
        if "data" in fields:
            events.append({**fields, "data": json.loads(fields["data"])})
    return events


@pytest.fixture
def cp():
    fake = MagicMock()
    fake.db.last_event_seq.return_value = 41
    return fake


@pytest.fixture
def client(cp):
    return TestClient(create_app(cp))


def test_sse_frames_carry_id_event_and_json():
    frame = sse({"a": 1}, id=7, event="change")
    assert frame == 'event: change\nid: 7\ndata: {"a":1}\n\n'


def test_last_event_id_wins_over_after_and_neither_means_now():
    assert resume_point(3, "9", lambda: 100) == 9
    assert resume_point(3, None, lambda: 100) == 3
    assert resume_point(None, None, lambda: 100) == 100
    assert resume_point("", "", lambda: 5) == 5


@pytest.mark.parametrize("after,header,needle", [("x", None, "after"), (None, "-2", "Last-Event-ID")])
def test_bad_resume_points_are_refused_with_the_name(after, header, needle):
    with pytest.raises(ValueError, match=needle):
        resume_point(after, header, lambda: 0)


def test_index_is_served_on_get_root_and_post_root_is_left_alone(client):
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/console/js/app.js">' in page.text
    other = client.post("/", content=b"{}")  # the AWS json-1.1 endpoint, not the console
    assert other.status_code != 200 and "<html" not in other.text


def test_assets_have_module_mime_types_and_traversal_is_refused(client):
    js = client.get("/console/js/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert client.get("/console/console.css").headers["content-type"].startswith("text/css")
    assert client.get("/console/js/missing.js").status_code == 404
    assert client.get("/console/..%2f..%2fconfig.py").status_code == 404
    assert client.get("/console/%2e%2e/api/app.py").status_code == 404


def test_the_load_balancers_page_is_in_the_nav_and_its_view_is_served(client):
    assert '<a href="#/load-balancers" data-section="load-balancers">Load balancers</a>' in client.get("/").text
    view = client.get("/console/js/views/load_balancers.js")
    assert view.status_code == 200 and view.headers["content-type"].startswith("text/javascript")
    assert "export function loadBalancersView" in view.text
    assert "loadBalancersView()" in client.get("/console/js/app.js").text


def test_stream_with_bad_after_is_a_clear_400(client):
    answer = client.get("/api/stream", params={"after": "soon"})
    assert answer.status_code == 400
    assert "after must be a whole number" in answer.json()["message"]


def test_build_log_stream_replays_after_the_cursor_then_ends(client, cp):
    cp.builds.get.return_value = {"id": "p:1", "buildComplete": True}
    lines = [(1, "one\n"), (2, "two\n"), (3, "three\n")]
    cp.db.read_log.side_effect = lambda kind, id, after: [l for l in lines if l[0] > after]
    events = parse(client.get("/api/builds/p:1/log/stream", headers={"Last-Event-ID": "1"}).text)
    assert [(e["event"], e.get("id")) for e in events] == [("log", "2"), ("log", "3"), ("end", "3")]
    assert events[0]["data"]["text"] == "two\n"


def test_build_log_stream_of_unknown_build_is_404(client, cp):
    cp.builds.get.side_effect = NotFound("Build", "nope")
    answer = client.get("/api/builds/nope/log/stream")
    assert answer.status_code == 404 and "nope" in answer.json()["message"]


def test_artifact_download_reads_the_store(client, cp):
    cp.builds.get.return_value = {"artifacts": {"location": "arn:aws:s3:::bucket/pipe/Out/abc"}}
    cp.store.exists.return_value = True
    cp.store.get_bytes.return_value = b"PK zip"
    answer = client.get("/api/builds/p:1/artifact")
    assert answer.status_code == 200 and answer.content == b"PK zip"
    assert 'filename="abc.zip"' in answer.headers["content-disposition"]
    cp.store.get_bytes.assert_called_with("bucket", "pipe/Out/abc")


def test_artifact_download_without_artifact_is_404(client, cp):
    cp.builds.get.return_value = {}
    assert client.get("/api/builds/p:1/artifact").status_code == 404


class FakeOrchestrator:
    """wait_for_change that returns when `change()` is called, like the orchestrator's condition."""

    def __init__(self):
        import threading

        self.cond = threading.Condition()

    def wait_for_change(self, timeout: float) -> None:
        with self.cond:
            self.cond.wait(timeout)

    def change(self) -> None:
        with self.cond:
            self.cond.notify_all()


def test_change_signal_wakes_every_stream_from_one_thread():
    import asyncio
    import threading
    import time

    from emulator.api.console_routes import ChangeSignal

    orch = FakeOrchestrator()
    signal = ChangeSignal(orch.wait_for_change)

    async def scenario():
        seen = signal.generation
        waiters = [asyncio.create_task(signal.wait(seen, 10)) for _ in range(20)]
        await asyncio.sleep(0.2)
        threads = [t for t in threading.enumerate() if t.name == "console-change-signal"]
        started = time.monotonic()
        orch.change()
        await asyncio.gather(*waiters)
        return len(threads), time.monotonic() - started

    threads, elapsed = asyncio.run(scenario())
    assert threads == 1
    assert elapsed < 0.9  # woken by the change, not by the watcher's 1 s timeout


def test_change_signal_returns_at_once_when_something_changed_since_it_was_read():
    import asyncio
    import time

    from emulator.api.console_routes import ChangeSignal

    signal = ChangeSignal(lambda timeout: time.sleep(timeout))
    signal.generation = 5
    started = time.monotonic()
    asyncio.run(signal.wait(4, 10))
    assert time.monotonic() - started < 0.1


def test_streams_end_once_the_server_is_stopping(client, cp, monkeypatch):
    from emulator.api import console_routes

    cp.db.events_after.return_value = []
    monkeypatch.setattr(console_routes, "_closing", True)
    events = parse(client.get("/api/stream", params={"after": 3}).text)  # returns instead of streaming forever
    assert [e["event"] for e in events] == ["hello"]
    assert events[0]["data"] == {"after": 3}
