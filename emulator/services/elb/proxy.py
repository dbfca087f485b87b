"""A load balancer's listener: a real HTTP reverse proxy on 127.0.0.1 that forwards each request to
the target the router picks and answers 503 (no target), 502 (the target's connection failed) or
504 (the target did not answer in time) itself, as an Application Load Balancer does.

Connections to targets are never reused: each request opens its own (the demo app closes every
connection anyway, and a pooled connection to a drained or replaced target would fail later).
Responses carry `X-Pipelocal-Target` and `X-Pipelocal-Target-Group`, a pipelocal aid for tests and
demos that AWS does not send.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Callable, Protocol

import aiohttp
from aiohttp import web

from emulator.services.elb.routing import Target

TARGET_HEADER = "X-Pipelocal-Target"
GROUP_HEADER = "X-Pipelocal-Target-Group"
IDLE_TIMEOUT = 60.0  # seconds a target may take to answer (ALB's default idle timeout)
CONNECT_TIMEOUT = 5.0
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "trailers", "transfer-encoding", "upgrade", "content-length", "host"}
log = logging.getLogger(__name__)


class Router(Protocol):
    def route(self, load_balancer: str) -> tuple[str | None, Target | None]: ...
    def release(self, group: str, target: Target) -> None: ...


Recorder = Callable[[str, str | None, int, float | None, bool], None]  # lb, group, status, seconds, from target


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"


def forwarded_headers(request: web.BaseRequest, port: int) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    peer = request.remote or ""
    previous = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{previous}, {peer}" if previous else peer
    headers["X-Forwarded-Proto"] = "http"
    headers["X-Forwarded-Port"] = str(port)
    headers.setdefault("X-Amzn-Trace-Id", _trace_id())
    if request.host:
        headers["Host"] = request.host  # ALB passes the client's Host header through
    return headers


def _answer(status: int, text: str, group: str | None, target: Target | None) -> web.Response:
    headers = {GROUP_HEADER: group or ""}
    if target is not None:
        headers[TARGET_HEADER] = target.instance_id
    return web.Response(status=status, text=text, headers=headers)


class Listener:
    """One load balancer's port. `session()` gives the loop's shared client session."""

    def __init__(self, name: str, port: int, router: Router, record: Recorder,
                 session: Callable[[], aiohttp.ClientSession], host: str = "127.0.0.1"):
        self.name = name
        self.port = port
        self.host = host
        self.router = router
        self.record = record
        self.session = session
        self._runner: web.ServerRunner | None = None

    async def start(self) -> None:
        server = web.Server(self._handle, access_log=None)
        runner = web.ServerRunner(server, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True, backlog=512)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        group, target = self.router.route(self.name)
        if target is None:
            self.record(self.name, group, 503, None, False)
            return _answer(503, "503 Service Temporarily Unavailable: no registered targets\n", group, None)
        started = time.monotonic()
        try:
            body = await request.read()
            async with self.session().request(
                    request.method, target.url.rstrip("/") + request.rel_url.path_qs,
                    headers=forwarded_headers(request, self.port), data=body or None, allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT,
                                                  sock_read=IDLE_TIMEOUT)) as answer:
                payload = await answer.read()
                elapsed = time.monotonic() - started
                headers = [(k, v) for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP]
                response = web.Response(status=answer.status, reason=answer.reason, body=payload)
                for key, value in headers:
                    response.headers.add(key, value)
                response.headers[TARGET_HEADER] = target.instance_id
                response.headers[GROUP_HEADER] = group
            self.record(self.name, group, answer.status, elapsed, True)
            return response
        except TimeoutError:
            self.record(self.name, group, 504, None, False)
            return _answer(504, "504 Gateway Time-out: the target did not answer in time\n", group, target)
        except (aiohttp.ClientError, OSError) as exc:
            self.record(self.name, group, 502, None, False)
            return _answer(502, f"502 Bad Gateway: the target's connection failed ({type(exc).__name__})\n",
                           group, target)
        finally:
            self.router.release(group, target)


def client_session() -> aiohttp.ClientSession:
    """Created on the loop: no connection reuse, no limit on concurrent requests, bodies untouched."""
    connector = aiohttp.TCPConnector(force_close=True, limit=0, enable_cleanup_closed=False)
    return aiohttp.ClientSession(connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                                 skip_auto_headers=("User-Agent",))

