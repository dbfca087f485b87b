"""`python3 -m runners`: fetch this build's plan, run it, report every phase, log and the result.

Exit status 0 when the build succeeded, 1 when it failed, 2 when the runner was started wrongly.
"""

from __future__ import annotations

import os
import sys

from emulator import contracts
from runners import local_mode
from runners.log_stream import LogStream
from runners.phase_executor import execute_plan


def run_local(plan_file: str) -> int:
    """No control plane: plan from a file, everything to stdout."""
    plan = local_mode.load_plan(plan_file)
    log = LogStream(local_mode.write_stdout, plan.secret_values)

    def report(phase: contracts.PhaseReport) -> None:
        log.marker(local_mode.event_line("phase", phase))

    resume_file = os.environ.get(local_mode.ENV_PAUSE_ON_FAILURE)
    pause = local_mode.pause_until_resumed(log.marker, resume_file) if resume_file else None
    try:
        result = execute_plan(plan, log, report, pause)
        log.marker(local_mode.event_line("result", result))
    finally:
        log.close()
    return 0 if result.succeeded else 1


def main() -> int:
    if local_mode.plan_file_given():
        code = run_local(local_mode.plan_file_given())
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # everything is reported and the shell is closed: skip the interpreter's teardown
    from runners.control_client import ControlClient, ControlPlaneError  # urllib: slow to import, remote only

    names = (contracts.ENV_CONTROL_URL, contracts.ENV_BUILD_ID, contracts.ENV_TOKEN)
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        print(f"pipelocal runner: missing environment variables {', '.join(missing)}", file=sys.stderr)
        return 2
    client = ControlClient(*(os.environ[n] for n in names))
    try:
        plan = client.get_plan()
    except ControlPlaneError as exc:
        print(f"pipelocal runner: {exc}", file=sys.stderr)
        return 2
    log = LogStream(client.send_logs, plan.secret_values)
    try:
        result = execute_plan(plan, log, client.report_phase)
    finally:
        log.close()
    try:
        client.send_result(result)
    except ControlPlaneError as exc:
        print(f"pipelocal runner: {exc}", file=sys.stderr)
        return 1
    return 0 if result.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
