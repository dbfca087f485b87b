"""CodeBuild's phase transitions for one build (reference 1.2 and 1.3).

Within a phase, commands run one at a time; the first failing command skips the rest, then
`finally` runs; the phase fails if any command or finally command failed.

Between phases, without on-failure:
  INSTALL or PRE_BUILD fails -> no further phases.
  BUILD fails -> POST_BUILD still runs, with CODEBUILD_BUILD_SUCCEEDING=0.
  POST_BUILD fails -> the build fails.
With on-failure:
  ABORT -> no further phases.
  CONTINUE -> the next phase runs, but the build is failing: CODEBUILD_BUILD_SUCCEEDING=0 and
    the build ends FAILED. AWS's text only says "continue to the next phase"; buildspecs in the
    wild (e.g. aws-ia/terraform-aws-control_tower_account_factory#581) rely on
    CODEBUILD_BUILD_SUCCEEDING being 0 after a CONTINUE, i.e. the failure is kept.
  RETRY[-count][-regex] -> when the phase's error message or output matches the regex, the
    whole phase sequence starts again from the first phase in a fresh shell (files written to
    the source directory stay), at most `count` times for that phase (default 3). When the
    retries are used up or the regex does not match, the normal transitions above apply.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from emulator.contracts import BuildPlan, PhaseReport, PhaseSpec, RunnerResult
from runners.log_stream import LogStream
from runners.on_failure import ABORT, CONTINUE, RETRY, OnFailure, parse_on_failure
from runners.shell_session import ShellSession

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
IN_PROGRESS = "IN_PROGRESS"
COMMAND_EXECUTION_ERROR = "COMMAND_EXECUTION_ERROR"
SUCCEEDING_VAR = "CODEBUILD_BUILD_SUCCEEDING"
_STOP_AFTER_FAILURE = ("INSTALL", "PRE_BUILD", "POST_BUILD")
_OUTPUT_KEPT_FOR_RETRY = 64 * 1024
_PATH_PREFIX = "PIPELOCAL_PATH_PREFIX"
_HIDDEN_ENV_PREFIX = "PIPELOCAL_"  # the runner's own credentials never reach user commands


@dataclass
class _PhaseOutcome:
    succeeded: bool
    message: str | None
    output: str


class PhaseExecutor:
    def __init__(self, plan: BuildPlan, log: LogStream, report: Callable[[PhaseReport], None],
                 pause: Callable[[str, str, str], None] | None = None):
        self.plan = plan
        self.log = log
        self.report = report
        self.pause = pause  # called once at the first failed command: (command, env file, cwd file)
        self._output: list[str] = []
        self._output_size = 0

    def run(self) -> RunnerResult:
        retries_used: dict[str, int] = {}
        while True:
            session = self._new_session()
            try:
                succeeded, message, retry_phase = self._run_phases(session, retries_used)
                if retry_phase is not None:
                    retries_used[retry_phase] = retries_used.get(retry_phase, 0) + 1
                    self.log.container(f"Retrying build after {retry_phase} failed (retry {retries_used[retry_phase]})")
                    continue
                exported = session.read_variables(list(self.plan.exported_variables))
                return RunnerResult(succeeded=succeeded, exported_variables=exported, message=message)
            finally:
                session.close()

    def _new_session(self) -> ShellSession:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_HIDDEN_ENV_PREFIX)}
        env.update(self.plan.env)
        prefix = env.pop(_PATH_PREFIX, None)  # runtime packs mounted for runtime-versions
        if prefix:
            env["PATH"] = f"{prefix}:{env.get('PATH', '/usr/local/bin:/usr/bin:/bin')}"
        return ShellSession(self.plan.shell or "bash", self.plan.src_dir, env, self._on_output)

    def _run_phases(self, session: ShellSession, retries_used: dict[str, int]) -> tuple[bool, str | None, str | None]:
        """(build succeeded, first failure message, phase to retry from the start or None)."""
        succeeding, first_message = True, None
        for phase in self.plan.phases:
            session.set_env(SUCCEEDING_VAR, "1" if succeeding else "0")
            outcome = self._run_phase(session, phase)
            if outcome.succeeded:
                continue
            succeeding = False
            first_message = first_message or outcome.message
            policy = self._policy(phase)
            if policy is not None and policy.action == RETRY:
                if retries_used.get(phase.name, 0) < policy.retry_count and (
                    policy.retries_on(outcome.message or "") or policy.retries_on(outcome.output)
                ):
                    return False, first_message, phase.name
                policy = None
            if policy is not None and policy.action == CONTINUE:
                continue
            if policy is not None and policy.action == ABORT or phase.name in _STOP_AFTER_FAILURE:
                break
        return succeeding, first_message, None

    def _policy(self, phase: PhaseSpec) -> OnFailure | None:
        if not phase.on_failure:
            return None
        try:
            return parse_on_failure(phase.on_failure)
        except ValueError as exc:
            self.log.container(f"Ignoring on-failure {phase.on_failure!r} of {phase.name}: expected {exc}")
            return None

    def _run_phase(self, session: ShellSession, phase: PhaseSpec) -> _PhaseOutcome:
        start = time.time()
        self.report(PhaseReport(phase=phase.name, status=IN_PROGRESS, start_time=start))
        self.log.container(f"Entering phase {phase.name}")
        self._output, self._output_size = [], 0
        run_as = phase.run_as or self.plan.run_as
        message = None
        for command in phase.commands:
            message = self._run_command(session, command.text, run_as)
            if message:
                break
        for command in phase.finally_commands:
            failure = self._run_command(session, command.text, run_as)
            message = message or failure
        status = FAILED if message else SUCCEEDED
        self.log.container(f"Phase complete: {phase.name} State: {status}")
        code = COMMAND_EXECUTION_ERROR if message else ""
        self.log.container(f"Phase context status code: {code} Message: {message or ''}")
        self.report(PhaseReport(phase=phase.name, status=status, start_time=start, end_time=time.time(), message=message))
        return _PhaseOutcome(message is None, message, "".join(self._output))

    def _run_command(self, session: ShellSession, text: str, run_as: str | None) -> str | None:
        """Runs one command; returns CodeBuild's error message if it failed."""
        self.log.container(f"Running command {text}")
        rc = session.run(text, run_as)
        self.log.end_of_output()
        if rc == 0:
            return None
        if self.pause is not None:
            pause, self.pause = self.pause, None
            pause(text, *session.snapshot_paths())
        return f"Error while executing command: {text}. Reason: exit status {rc}"

    def _on_output(self, text: str) -> None:
        self.log.write(text)
        self._output.append(text)
        self._output_size += len(text)
        while self._output_size > _OUTPUT_KEPT_FOR_RETRY and len(self._output) > 1:
            self._output_size -= len(self._output.pop(0))


def execute_plan(plan: BuildPlan, log: LogStream, report: Callable[[PhaseReport], None],
                 pause: Callable[[str, str, str], None] | None = None) -> RunnerResult:
    try:
        return PhaseExecutor(plan, log, report, pause).run()
    except Exception as exc:  # noqa: BLE001 - the control plane must hear why the build stopped
        log.container(f"Runner error: {exc}")
        print(f"pipelocal runner: {exc!r}", file=sys.stderr)
        return RunnerResult(succeeded=False, message=f"runner error: {exc}")
