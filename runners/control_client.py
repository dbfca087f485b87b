"""The runner's side of the internal API: urllib only, retried so a busy control plane loses nothing."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from emulator import contracts

RETRY_DELAYS_SECONDS = (0.2, 0.5, 1, 2, 4, 8)


class ControlPlaneError(RuntimeError):
    pass


class ControlClient:
    def __init__(self, base_url: str, build_id: str, token: str, timeout: float = 30):
        self.base_url = base_url.rstrip("/")
        self.build_id = build_id
        self.token = token
        self.timeout = timeout

    def get_plan(self) -> contracts.BuildPlan:
        return contracts.decode(contracts.BuildPlan, self._request("GET", contracts.BUILD_PLAN))

    def report_phase(self, report: contracts.PhaseReport) -> None:
        self._request("POST", contracts.BUILD_PHASES, report)

    def send_logs(self, chunk: contracts.LogChunk) -> None:
        self._request("POST", contracts.BUILD_LOGS, chunk)

    def send_result(self, result: contracts.RunnerResult) -> None:
        self._request("POST", contracts.BUILD_RESULT, result)

    def _request(self, method: str, route: str, body: Any = None) -> Any:
        url = self.base_url + route.format(build_id=self.build_id)
        data = json.dumps(contracts.encode(body)).encode() if body is not None else None
        headers = {contracts.TOKEN_HEADER: self.token, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        last: Exception | None = None
        for delay in (*RETRY_DELAYS_SECONDS, None):
            try:
                request = urllib.request.Request(url, data=data, method=method, headers=headers)
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = response.read()
                return json.loads(payload) if payload.strip() else None
            except urllib.error.HTTPError as exc:
                if exc.code < 500:  # the request itself is wrong; repeating it cannot help
                    raise ControlPlaneError(f"{method} {route}: HTTP {exc.code} {exc.read()[:500]!r}") from None
                last = exc
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last = exc
            if delay is not None:
                time.sleep(delay)
        raise ControlPlaneError(f"{method} {route}: control plane unreachable ({last})")
