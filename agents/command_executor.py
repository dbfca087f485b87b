"""Turns one HostCommand into one CommandResult: the agent-run events (DownloadBundle, Install)
have built-in steps, every other event name runs its appspec scripts."""

from __future__ import annotations

import time
import traceback

from emulator import contracts

from agents import bundle_fetcher, file_installer, hook_runner
from agents.deployment_root import DeploymentRoot
from agents.lifecycle_failure import (
    FAILED,
    SCRIPT_FAILED,
    SCRIPT_TIMED_OUT,
    SUCCEEDED,
    SUCCESS,
    UNKNOWN_ERROR,
    LifecycleFailure,
)

# Traffic is the load balancer's business; the instance has nothing to do for these.
_NO_OP_EVENTS = ("BlockTraffic", "AllowTraffic")


def execute(root: DeploymentRoot, command: contracts.HostCommand) -> contracts.CommandResult:
    start = time.time()
    try:
        log = _run(root, command)
    except LifecycleFailure as failure:
        log = failure.log
        message = failure.message
        tail = log[-hook_runner.MESSAGE_TAIL:] if log else ""
        if tail and failure.error_code in (SCRIPT_FAILED, SCRIPT_TIMED_OUT):
            message = f"{message}\n{tail}"
        return contracts.CommandResult(
            command_id=command.command_id,
            status=FAILED,
            error_code=failure.error_code,
            message=message,
            log=log,
            start_time=start,
            end_time=time.time(),
        )
    except Exception as exc:  # noqa: BLE001 - any other fault must still reach the control plane
        return contracts.CommandResult(
            command_id=command.command_id,
            status=FAILED,
            error_code=UNKNOWN_ERROR,
            message=f"{command.lifecycle_event} failed: {type(exc).__name__}: {exc}",
            log=traceback.format_exc(),
            start_time=start,
            end_time=time.time(),
        )
    return contracts.CommandResult(
        command_id=command.command_id,
        status=SUCCEEDED,
        error_code=SUCCESS,
        log=log,
        start_time=start,
        end_time=time.time(),
    )


def _run(root: DeploymentRoot, command: contracts.HostCommand) -> str:
    event = command.lifecycle_event
    if event == "DownloadBundle":
        if not command.bundle_url:
            raise LifecycleFailure(UNKNOWN_ERROR, "DownloadBundle needs a bundle_url")
        archive = bundle_fetcher.fetch_bundle(
            root, command.deployment_group_id, command.deployment_id, command.bundle_url, command.bundle_type or "zip"
        )
        return f"Extracted the bundle to {archive}\n"
    if event == "Install":
        return file_installer.install(root, command)
    if event in _NO_OP_EVENTS:
        return ""
    return hook_runner.run_hooks(root, command)
