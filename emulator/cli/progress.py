"""Live progress of a pipeline execution, printed as lines so it reads the same in a terminal and in CI logs."""

from __future__ import annotations

import time

from rich.console import Console

from emulator.cli.client import Client

_STYLE = {
    "Succeeded": "green", "SUCCEEDED": "green", "Failed": "red", "FAILED": "red", "FAULT": "red",
    "TIMED_OUT": "red", "Stopped": "yellow", "STOPPED": "yellow", "Superseded": "yellow", "Skipped": "dim",
    "InProgress": "cyan", "IN_PROGRESS": "cyan",
}


class ExecutionWatcher:
    """Follows the event feed and prints each stage, build phase and lifecycle event of one execution."""

    def __init__(self, client: Client, console: Console, show_logs: bool = False):
        self.client = client
        self.console = console
        self.show_logs = show_logs
        self._printed: set[tuple] = set()
        self._log_seq: dict[str, int] = {}

    def follow(self, execution_id: str, after: int = 0, timeout: float = 1800) -> dict:
        start = time.monotonic()
        cursor = after
        mine: set[str] = {execution_id}
        while time.monotonic() - start < timeout:
            feed = self.client.get("/events", after=cursor, wait=5)
            cursor = feed["last"]
            for event in feed["events"]:
                self._render(event, mine, start)
            execution = self.client.get(f"/executions/{execution_id}")
            for action in execution["actions"]:
                ext = action.get("externalExecutionId")
                if ext:
                    mine.add(ext)
                if self.show_logs and ext and ":" in ext:
                    self._stream_build_log(ext)
            if execution["status"] not in ("InProgress", "Stopping"):
                return execution
        raise TimeoutError(f"execution {execution_id} did not finish within {timeout:.0f} s")

    def _stream_build_log(self, build_id: str) -> None:
        after = self._log_seq.get(build_id, 0)
        chunks = self.client.get(f"/builds/{build_id}/log", after=after)["chunks"]
        for chunk in chunks:
            for line in chunk["text"].splitlines():
                self.console.print(f"      [dim]│ {line}[/dim]", highlight=False, markup=True)
            self._log_seq[build_id] = chunk["seq"]

    def _line(self, key: tuple, elapsed: float, where: str, what: str, status: str) -> None:
        if key in self._printed:
            return
        self._printed.add(key)
        style = _STYLE.get(status, "white")
        self.console.print(f"[dim]{elapsed:7.1f}s[/dim]  {where:<24} {what:<34} [{style}]{status}[/{style}]",
                           highlight=False)

    def _render(self, event: dict, mine: set[str], start: float) -> None:
        d = event["detail"]
        kind, status = event["kind"], event["status"]
        elapsed = time.monotonic() - start
        if kind == "stage-execution" and d.get("pipelineExecutionId") in mine:
            self._line((kind, event["id"], status), elapsed, f"stage {d.get('stageName')}", "", status)
            return
        if kind == "action-execution" and d.get("pipelineExecutionId") in mine:
            self._line((kind, event["id"], status), elapsed, f"  {d.get('stageName')}/{d.get('actionName')}",
                       "action", status)
            return
        if kind == "build" and event["id"] in mine:
            label = f"    build {d.get('projectName', '')}"
            message = d.get("message", "")
            if " " in message:
                phase, phase_status = message.rsplit(" ", 1)
                self._line((kind, event["id"], message), elapsed, label[:24], f"phase {phase}", phase_status)
            elif status != "IN_PROGRESS":
                self._line((kind, event["id"], status), elapsed, label[:24], "build", status)
            return
        if kind == "deployment" and event["id"] in mine:
            self._line((kind, event["id"], status), elapsed, f"    deployment {event['id']}", "", status)
            if d.get("message"):  # a blue/green release's steps: replacement, traffic shifted, terminated
                self.console.print(f"[dim]{elapsed:7.1f}s[/dim]      [cyan]{d['message']}[/cyan]", highlight=False) \
                    if (kind, event["id"], d["message"]) not in self._printed else None
                self._printed.add((kind, event["id"], d["message"]))
            return
        if kind == "deployment-target" and d.get("deploymentId") in mine:
            message = d.get("message", "")
            name = d.get("name") or event["id"].split(":")[-1]
            if d.get("instanceLabel"):  # blue/green: which side the instance is on
                name = f"{name} ({d['instanceLabel'].lower()})"
            if " " in message:
                lifecycle, ev_status = message.rsplit(" ", 1)
                self._line((kind, event["id"], message), elapsed, f"      {name}", lifecycle, ev_status)
            else:
                self._line((kind, event["id"], status, "t"), elapsed, f"      {name}", "instance", status)
