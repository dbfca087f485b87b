"""Local mode: events travel between log lines and come out in order, split anywhere."""

from __future__ import annotations

import threading
import time

from emulator import contracts
from emulator.services.codebuild.local_build import _relay
from runners import local_mode


def test_event_lines_round_trip_and_plain_lines_are_not_events():
    line = local_mode.event_line("phase", contracts.PhaseReport("BUILD", "SUCCEEDED", 1.0, 2.0))
    kind, data = local_mode.parse_event(line.rstrip("\n"))
    assert kind == "phase" and data["phase"] == "BUILD" and data["end_time"] == 2.0
    assert local_mode.parse_event("just output") is None


def test_relay_keeps_order_across_arbitrary_chunks():
    stream = ("first line\n" + local_mode.event_line("phase", {"phase": "BUILD"}) + "second\nunterminated")
    chunks = [stream[i:i + 7] for i in range(0, len(stream), 7)]
    seen: list = []
    _relay(iter(chunks), lambda text: seen.append(("text", text)), lambda kind, data: seen.append((kind, data["phase"])))
    flat = []
    for kind, value in seen:
        if kind == "text" and flat and flat[-1][0] == "text":
            flat[-1] = ("text", flat[-1][1] + value)
        else:
            flat.append((kind, value))
    assert flat == [("text", "first line\n"), ("phase", "BUILD"), ("text", "second\nunterminated\n")]


def test_pause_waits_for_the_resume_file(tmp_path):
    emitted: list[str] = []
    resume = tmp_path / "resume"
    pause = local_mode.pause_until_resumed(emitted.append, str(resume), poll=0.01)
    worker = threading.Thread(target=pause, args=("false", "/e", "/c"))
    worker.start()
    time.sleep(0.1)
    assert worker.is_alive() and local_mode.parse_event(emitted[0].rstrip())[1]["command"] == "false"
    resume.touch()
    worker.join(2)
    assert not worker.is_alive()
