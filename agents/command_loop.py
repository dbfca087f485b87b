"""The agent's life: register, then poll for one lifecycle event at a time, run it, report it.

The control plane may restart at any moment; the loop waits it out with capped backoff, logging
one line when an outage starts and one when it ends, and re-registers when it has been forgotten.
A result is posted until acknowledged, and a command handed out again after a lost result gets
the recorded result instead of running twice.
"""

from __future__ import annotations

import collections
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass

from emulator import contracts

from agents import command_executor
from agents.control_client import ControlClient, ControlRejected, ControlUnavailable
from agents.deployment_root import DeploymentRoot
from agents.host_sample import host_sample

AGENT_VERSION = "pipelocal-agent/1"


@dataclass
class LoopSettings:
    poll_wait: int = 20
    heartbeat_interval: float = 5.0
    backoff_start: float = 1.0
    backoff_max: float = 10.0


def log(message: str) -> None:
    print(time.strftime("%Y-%m-%dT%H:%M:%S ") + message, file=sys.stderr, flush=True)


class _Outage:
    """Turns a run of failed calls into two log lines and a growing delay."""

    def __init__(self, settings: LoopSettings):
        self.settings = settings
        self.delay = 0.0

    def failed(self, what: str, error: Exception) -> float:
        if self.delay == 0.0:
            log(f"control plane unavailable ({what}: {error}); retrying until it is back")
            self.delay = self.settings.backoff_start
        else:
            self.delay = min(self.delay * 2, self.settings.backoff_max)
        return self.delay

    def recovered(self) -> None:
        if self.delay:
            log("control plane reachable again")
        self.delay = 0.0


class CommandLoop:
    def __init__(
        self,
        client: ControlClient,
        root: DeploymentRoot,
        settings: LoopSettings | None = None,
        stop: threading.Event | None = None,
    ):
        self.client = client
        self.root = root
        self.settings = settings or LoopSettings()
        self.stop = stop or threading.Event()
        self.outage = _Outage(self.settings)
        self.recent: collections.OrderedDict[str, contracts.CommandResult] = collections.OrderedDict()

    def run(self) -> None:
        self._register()
        while not self.stop.is_set():
            try:
                command = self.client.poll(self.settings.poll_wait, host=host_sample())
            except ControlRejected as exc:
                if exc.status in (401, 403, 404):  # the control plane restarted and forgot this instance
                    log(f"poll refused ({exc}); registering again")
                    self.stop.wait(self.settings.backoff_start)
                    self._register()
                else:
                    self.stop.wait(self.outage.failed("poll", exc))
                continue
            except ControlUnavailable as exc:
                self.stop.wait(self.outage.failed("poll", exc))
                continue
            self.outage.recovered()
            if command is not None:
                self._handle(command)

    def _register(self) -> None:
        registration = contracts.InstanceRegistration(
            instance_name=self.client.instance, address=_address(), agent_version=AGENT_VERSION,
            tags=instance_tags(os.environ.get(contracts.ENV_INSTANCE_TAGS, "")),
            app_url=os.environ.get(contracts.ENV_INSTANCE_URL, ""),
        )
        while not self.stop.is_set():
            try:
                self.client.register(registration)
                self.outage.recovered()
                log(f"registered as {self.client.instance}")
                return
            except (ControlUnavailable, ControlRejected) as exc:
                self.stop.wait(self.outage.failed("register", exc))

    def _handle(self, command: contracts.HostCommand) -> None:
        result = self.recent.get(command.command_id)
        if result is None:
            log(f"{command.lifecycle_event} for deployment {command.deployment_id} (command {command.command_id})")
            result = self._execute_with_heartbeat(command)
            log(f"{command.lifecycle_event}: {result.status} ({result.error_code})")
            self.recent[command.command_id] = result
            while len(self.recent) > 16:
                self.recent.popitem(last=False)
        self._report(result)

    def _execute_with_heartbeat(self, command: contracts.HostCommand) -> contracts.CommandResult:
        done = threading.Event()

        def beat() -> None:
            # The first beat, right away, acknowledges the command (AWS's PutHostCommandAcknowledgement).
            while True:
                try:
                    self.client.heartbeat(command.command_id)
                except (ControlUnavailable, ControlRejected):
                    pass  # the result post retries; a missed heartbeat costs nothing here
                if done.wait(self.settings.heartbeat_interval):
                    return

        beater = threading.Thread(target=beat, name="heartbeat", daemon=True)
        beater.start()
        try:
            return command_executor.execute(self.root, command)
        finally:
            done.set()
            beater.join(1.0)

    def _report(self, result: contracts.CommandResult) -> None:
        while not self.stop.is_set():
            try:
                self.client.post_result(result)
                self.outage.recovered()
                return
            except ControlRejected as exc:
                log(f"result for command {result.command_id} refused ({exc}); dropping it")
                return
            except ControlUnavailable as exc:
                self.stop.wait(self.outage.failed("result", exc))


def instance_tags(text: str) -> dict[str, str]:
    """Tags from PIPELOCAL_INSTANCE_TAGS ("Key=Value,Key2=Value2"); a malformed entry is an error
    rather than an instance no deployment group selects."""
    tags = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{contracts.ENV_INSTANCE_TAGS}: {entry!r} is not Key=Value "
                             f"(expected Key=Value,Key2=Value2)")
        tags[key.strip()] = value.strip()
    return tags


def _address() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return ""
