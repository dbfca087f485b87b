"""`pipelocal build` handed to the installation's running control plane, which runs it as this
command would (emulator/services/codebuild/handed_builds.py) with the Docker SDK already loaded.

Only the standard library is used here: the point is to start faster than loading the SDK.
"""

from __future__ import annotations

import http.client
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from emulator import contracts


@dataclass
class Receiver:
    """What the command does with each kind of event of a handed-over build."""

    text: Callable[[str], None]
    phase: Callable[[str], None]  # a phase starts
    # (kind, message) -> exit status, for an end without a result: refused, build-refused,
    # no-engine, or lost (the connection ended first)
    refused: Callable[[str, str], int]
    result: Callable[[SimpleNamespace], int]  # -> exit status
    sent: Callable[[], None] = lambda: None  # the request is on its way: work to do while the build starts


def hand_over(request: contracts.LocalBuildRequest, run_dir: Path, port: int, receiver: Receiver) -> int | None:
    """The build's exit status, or None when no control plane takes it (the caller runs it itself).
    Once the request is sent, the build is never run a second time here: a failure after that is
    reported, not retried."""
    try:
        token = (run_dir / contracts.LOCAL_BUILD_TOKEN_FILE).read_text().strip()
    except OSError:
        return None
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("POST", contracts.LOCAL_BUILDS, body=json.dumps(contracts.encode(request)),
                           headers={contracts.TOKEN_HEADER: token, "Content-Type": "application/json"})
    except OSError:  # no control plane (its token file outlived it)
        connection.close()
        return None
    receiver.sent()
    try:
        if connection.sock is not None:
            connection.sock.settimeout(None)  # a build may be silent for as long as its timeout allows
        response = connection.getresponse()
        if response.status != 200:  # declined (403, 409): it started nothing
            response.read()
            return None
        for line in response:
            event = json.loads(line)
            kind = event.get("kind")
            if kind == "text":
                receiver.text(event.get("text", ""))
            elif kind == "phase":
                receiver.phase(event.get("phase", ""))
            elif kind == "result":
                return receiver.result(_result(event.get("result") or {}))
            elif kind in ("refused", "build-refused", "no-engine"):
                return receiver.refused(kind, event.get("text", ""))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return receiver.refused("lost", f"the control plane stopped answering before the build ended ({exc})")
    finally:
        connection.close()
    return receiver.refused("lost", "the control plane stopped answering before the build ended")


def request_for(opts, env: dict[str, str]) -> contracts.LocalBuildRequest:
    def absolute(path: Path | None) -> str | None:
        return str(path.resolve()) if path else None

    return contracts.LocalBuildRequest(
        source_dir=absolute(opts.source), buildspec=absolute(opts.buildspec), image=opts.image,
        compute_type=opts.compute_type, env=env, artifacts_dir=absolute(opts.artifacts), source_mode=opts.source_mode,
        privileged=opts.privileged, phase=opts.phase, timeout_seconds=opts.timeout, cache_dir=absolute(opts.cache_dir),
        uid=os.getuid(),
    )


def _result(data: dict) -> SimpleNamespace:
    """The result as the printing code reads a local_build.LocalBuildResult."""
    phases = [SimpleNamespace(**p) for p in data.get("phases") or []]
    return SimpleNamespace(**{**data, "phases": phases})
