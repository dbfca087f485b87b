"""The agent's side of the internal API: register, long-poll, heartbeat, report results.

Each call makes one attempt and raises ControlUnavailable on any transport or server fault;
retrying is the command loop's decision.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request

from emulator import contracts


class ControlUnavailable(Exception):
    """The control plane could not be reached or answered with a server error."""


class ControlRejected(Exception):
    """The control plane answered with a client error: repeating the request will not help."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


class ControlClient:
    def __init__(self, base_url: str, instance_name: str, token: str):
        self.base_url = base_url.rstrip("/")
        self.instance = instance_name
        self.token = token

    def register(self, registration: contracts.InstanceRegistration) -> None:
        self._post(contracts.AGENT_REGISTER, contracts.encode(registration), timeout=10)

    def poll(self, wait: int = 20, host: contracts.HostSample | None = None) -> contracts.HostCommand | None:
        path = contracts.AGENT_POLL.format(instance=self._quoted(self.instance)) + f"?wait={int(wait)}"
        data = self._post(path, contracts.encode(contracts.PollRequest(host=host)), timeout=wait + 15)
        return contracts.decode(contracts.PollResponse, data or {}).command

    def heartbeat(self, command_id: str) -> None:
        self._post(
            contracts.AGENT_HEARTBEAT.format(instance=self._quoted(self.instance), command_id=self._quoted(command_id)),
            {},
            timeout=10,
        )

    def post_result(self, result: contracts.CommandResult) -> None:
        self._post(
            contracts.AGENT_RESULT.format(
                instance=self._quoted(self.instance), command_id=self._quoted(result.command_id)
            ),
            contracts.encode(result),
            timeout=30,
        )

    @staticmethod
    def _quoted(value: str) -> str:
        return urllib.parse.quote(value, safe="")

    def _post(self, path: str, body: object, timeout: float) -> object:
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", contracts.TOKEN_HEADER: self.token},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode("utf-8", "replace") if exc.fp else ""
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                raise ControlRejected(exc.code, detail) from None
            raise ControlUnavailable(f"HTTP {exc.code}: {detail}") from None
        except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, http.client errors
            raise ControlUnavailable(str(getattr(exc, "reason", exc))) from None
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ControlUnavailable(f"unreadable response: {exc}") from None
