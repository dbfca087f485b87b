"""Running a build without a control plane (`pipelocal build`): the plan comes from a file, and
phase reports and the result go to stdout as marked lines between the log text.

A marked line is EVENT_MARK + JSON + newline; it goes through the same ordered stream as the
log, so a phase header never overtakes the output of the phase before it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

from emulator import contracts

ENV_PLAN_FILE = "PIPELOCAL_PLAN_FILE"
ENV_PAUSE_ON_FAILURE = "PIPELOCAL_PAUSE_ON_FAILURE"  # a file path: wait at the first failure until it exists
EVENT_MARK = "\x1fpipelocal-event "


def load_plan(path: str) -> contracts.BuildPlan:
    with open(path, encoding="utf-8") as f:
        return contracts.decode(contracts.BuildPlan, json.load(f))


def write_stdout(chunk: contracts.LogChunk) -> None:
    sys.stdout.write(chunk.text)
    sys.stdout.flush()


def event_line(kind: str, payload) -> str:
    return EVENT_MARK + json.dumps({"kind": kind, "data": contracts.encode(payload)}) + "\n"


def parse_event(line: str) -> tuple[str, dict] | None:
    """(kind, data) of a marked line, or None for a log line."""
    start = line.find(EVENT_MARK)
    if start == -1:
        return None
    try:
        event = json.loads(line[start + len(EVENT_MARK):])
    except ValueError:
        return None
    return event.get("kind", ""), event.get("data") or {}


def plan_file_given() -> str | None:
    return os.environ.get(ENV_PLAN_FILE) or None


def pause_until_resumed(emit: Callable[[str], None], resume_file: str, poll: float = 0.2) -> Callable[[str, str, str], None]:
    """A pause hook: announces the failed command and the shell snapshot, then waits for `resume_file`."""

    def pause(command: str, env_file: str, cwd_file: str) -> None:
        emit(event_line("paused", {"command": command, "env_file": env_file, "cwd_file": cwd_file,
                                   "resume_file": resume_file}))
        while not os.path.exists(resume_file):
            time.sleep(poll)

    return pause
