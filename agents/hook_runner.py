"""Runs an event's appspec hook scripts the way the AWS agent does, minus its known hang.

Each script runs directly (it needs a #! line and the executable bit, which is added when
missing, as the AWS agent does), as `runas` via `su`, in its own process group so a timeout can
kill everything it started. Output is logged line by line as `[stdout]`/`[stderr]`. A script that
leaves a daemon behind holding its stdout would block the AWS agent forever; here the event
finishes when the script process exits, and the daemon's output keeps being drained and dropped.
"""

from __future__ import annotations

import os
import pwd
import shlex
import signal
import subprocess
import threading
import time

from emulator import contracts

from agents.deployment_root import DeploymentRoot
from agents.lifecycle_failure import (
    SCRIPT_FAILED,
    SCRIPT_MISSING,
    SCRIPT_NOT_EXECUTABLE,
    SCRIPT_TIMED_OUT,
    UNKNOWN_ERROR,
    LifecycleFailure,
)

EVENT_TIME_LIMIT = 3600  # seconds for all scripts of one lifecycle event together
MESSAGE_TAIL = 2048  # characters of output CodeDeploy shows with a failed event
OUTPUT_GRACE = 0.5  # seconds to collect output still buffered once the script has exited
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL to a timed-out script's process group
_LOG_LIMIT = 1024 * 1024  # the full log keeps at most this many characters (the newest)


class ScriptLog:
    """The event's output, shared by the reader threads; bounded so a chatty script cannot
    grow the agent without limit."""

    def __init__(self, file: str | None = None):
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self._size = 0
        self._file = file

    def append(self, text: str) -> None:
        with self._lock:
            self._parts.append(text)
            self._size += len(text)
            while self._size > _LOG_LIMIT and len(self._parts) > 1:
                self._size -= len(self._parts.pop(0))
            if self._file:
                try:
                    with open(self._file, "a", encoding="utf-8", errors="replace") as f:
                        f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + text)
                except OSError:
                    pass

    def text(self) -> str:
        with self._lock:
            return "".join(self._parts)

    def tail(self, size: int = MESSAGE_TAIL) -> str:
        return self.text()[-size:]


def run_hooks(root: DeploymentRoot, command: contracts.HostCommand) -> str:
    """Runs every script of the event in order; returns the log or raises LifecycleFailure."""
    if not command.scripts:
        return ""
    archive_id = command.archive_deployment_id or command.deployment_id
    archive = root.archive_dir(command.deployment_group_id, archive_id)
    logs_dir = os.path.join(root.deployment_dir(command.deployment_group_id, command.deployment_id), "logs")
    try:
        os.makedirs(logs_dir, exist_ok=True)
        log = ScriptLog(os.path.join(logs_dir, "scripts.log"))
    except OSError:
        log = ScriptLog()
    log.append(f"LifecycleEvent - {command.lifecycle_event}\n")
    env = _script_env(command)
    deadline = time.monotonic() + EVENT_TIME_LIMIT
    for script in command.scripts:
        path = os.path.join(archive, script.location.lstrip("/"))
        if not os.path.isfile(path):
            raise LifecycleFailure(
                SCRIPT_MISSING, f"Script does not exist at specified location: {script.location}", log.text()
            )
        if not os.access(path, os.X_OK):
            log.append(f"Script at specified location: {script.location} is not executable. Trying to make it executable.\n")
            try:
                os.chmod(path, os.stat(path).st_mode | 0o111)
            except OSError:
                raise LifecycleFailure(
                    SCRIPT_NOT_EXECUTABLE,
                    f"Unable to set script at specified location: {script.location} as executable",
                    log.text(),
                ) from None
        timeout = max(0.0, min(float(script.timeout or EVENT_TIME_LIMIT), deadline - time.monotonic()))
        _run_script(script, path, env, timeout, log)
    return log.text()


def _script_env(command: contracts.HostCommand) -> dict[str, str]:
    env = dict(os.environ)
    env.pop(contracts.ENV_TOKEN, None)  # the agent's credential is not the application's business
    env.setdefault("DEPLOYMENT_ID", command.deployment_id)
    env.setdefault("DEPLOYMENT_GROUP_ID", command.deployment_group_id)
    env.update({k: str(v) for k, v in command.env.items()})
    env["LIFECYCLE_EVENT"] = command.lifecycle_event
    return env


def _argv(script: contracts.HookScript, path: str) -> list[str]:
    if script.runas and script.runas != _current_user():
        return ["su", "-s", "/bin/bash", "-c", shlex.quote(path), script.runas]
    return [path]


def _current_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _run_script(script: contracts.HookScript, path: str, env: dict[str, str], timeout: float, log: ScriptLog) -> None:
    log.append(f"Script - {script.location}\n")
    try:
        proc = subprocess.Popen(
            _argv(script, path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd="/",
            start_new_session=True,
        )
    except OSError as exc:
        raise LifecycleFailure(
            UNKNOWN_ERROR, f"Script at specified location: {script.location} could not be started: {exc}", log.text()
        ) from None
    capture = threading.Event()
    capture.set()
    readers = [
        threading.Thread(target=_drain, args=(proc.stdout, "[stdout]", log, capture), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, "[stderr]", log, capture), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        _finish_output(readers, capture)
        raise LifecycleFailure(
            SCRIPT_TIMED_OUT,
            f"Script at specified location: {script.location} failed to complete in {int(timeout)} seconds",
            log.text(),
        ) from None
    _finish_output(readers, capture)
    if returncode != 0:
        code = returncode if returncode > 0 else 128 - returncode  # killed by signal N: 128+N, as shells report
        who = f" run as user {script.runas}" if script.runas else ""
        raise LifecycleFailure(
            SCRIPT_FAILED,
            f"Script at specified location: {script.location}{who} failed with exit code {code}",
            log.text(),
        )


def _drain(stream, prefix: str, log: ScriptLog, capture: threading.Event) -> None:
    """Reads until EOF, which only comes when every holder of the pipe (daemons too) is gone."""
    try:
        for raw in iter(stream.readline, b""):
            if capture.is_set():
                line = raw.decode("utf-8", "replace")
                log.append(prefix + (line if line.endswith("\n") else line + "\n"))
    except (OSError, ValueError):
        pass
    finally:
        try:
            stream.close()
        except OSError:
            pass


def _finish_output(readers: list[threading.Thread], capture: threading.Event) -> None:
    deadline = time.monotonic() + OUTPUT_GRACE
    for reader in readers:
        reader.join(max(0.0, deadline - time.monotonic()))
    capture.clear()


def _kill_group(proc: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=grace or 5)
        except subprocess.TimeoutExpired:
            pass
