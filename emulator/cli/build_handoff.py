"""`pipelocal build` handed to the installation's running control plane, which runs it as this
command would (emulator/services/codebuild/handed_builds.py) with the Docker SDK already loaded.

Only the standard library is used here: the point is to start faster than loading the SDK.
"""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from emulator import contracts


def hand_over(request: contracts.LocalBuildRequest, run_dir: Path, port: int, on_text: Callable[[str], None],
              on_phase: Callable[[str], None], on_refused: Callable[[str, str], int],
              on_result: Callable[[SimpleNamespace], int], on_sent: Callable[[], None]) -> int | None:
    """The build's exit status, or None when no control plane takes it (the caller runs it itself).
    on_refused(kind, message) answers the exit status for an event that ends the build without a
    result: refused, build-refused, no-engine, or lost (the connection ended first)."""
    try:
        token = (run_dir / contracts.LOCAL_BUILD_TOKEN_FILE).read_text().strip()
    except OSError:
        return None
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("POST", contracts.LOCAL_BUILDS, body=json.dumps(contracts.encode(request)),
                           headers={contracts.TOKEN_HEADER: token, "Content-Type": "application/json"})
        on_sent()
        response = connection.getresponse()
    except OSError:  # no control plane (its token file outlived it) or it did not answer
        connection.close()
        return None
    if response.status != 200:
        response.read()
        connection.close()
        return None
    if connection.sock is not None:
        connection.sock.settimeout(None)  # a build may be silent for as long as its timeout allows
    try:
        for line in response:
            event = json.loads(line)
            kind = event.get("kind")
            if kind == "text":
                on_text(event.get("text", ""))
            elif kind == "phase":
                on_phase(event.get("phase", ""))
            elif kind in ("refused", "build-refused", "no-engine"):
                return on_refused(kind, event.get("text", ""))
            elif kind == "result":
                return on_result(_result(event.get("result") or {}))
    finally:
        connection.close()
    return on_refused("lost", "the control plane stopped answering before the build ended")


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
