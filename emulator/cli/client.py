"""The CLI's HTTP client for the control plane's management API."""

from __future__ import annotations

from typing import Any

import httpx


class ControlPlaneError(RuntimeError):
    pass


class ControlPlaneDown(ControlPlaneError):
    pass


class Client:
    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url + "/api", timeout=httpx.Timeout(60.0, connect=3.0))

    def request(self, method: str, path: str, **kwargs) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise ControlPlaneDown(
                f"The control plane is not running at {self.base_url}. Start it with `pipelocal up`."
            ) from None
        if response.status_code >= 400:
            try:
                body = response.json()
                message = f"{body.get('error', response.status_code)}: {body.get('message', body)}"
            except ValueError:
                message = f"HTTP {response.status_code}: {response.text[:500]}"
            raise ControlPlaneError(message)
        return response.json()

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, payload: dict | None = None) -> Any:
        return self.request("POST", path, json=payload or {})

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def healthy(self) -> bool:
        try:
            self.get("/health")
            return True
        except ControlPlaneError:
            return False
