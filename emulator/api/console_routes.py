"""The web console: its static files on `GET /` and `/console/...`, plus the server-sent-event
streams that keep it live. The console reads everything else from the management API."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import FileResponse, Response, StreamingResponse

from emulator.control_plane import ControlPlane
from emulator.domain.errors import NotFound

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
HEARTBEAT_SECONDS = 15.0
RECONNECT_MILLISECONDS = 2000
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(data: dict, id: int | None = None, event: str | None = None) -> str:
    """One server-sent event; `id` is what the browser sends back as Last-Event-ID on reconnect."""
    lines = []
    if event:
        lines.append(f"event: {event}")
    if id is not None:
        lines.append(f"id: {id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


def resume_point(after: str | int | None, last_event_id: str | None, current: Callable[[], int]) -> int:
    """Last-Event-ID (a reconnect) wins over `after`; with neither, the stream starts from now."""
    for value, name in ((last_event_id, "Last-Event-ID"), (after, "after")):
        if value is None or value == "":
            continue
        try:
            seq = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a whole number (an event sequence number), got {value!r}") from None
        if seq < 0:
            raise ValueError(f"{name} must be 0 or more, got {seq}")
        return seq
    return current()


_closing = False


def end_streams() -> None:
    """Called when the server is asked to stop: open streams end within a second instead of holding
    the shutdown (browsers stay open across a restart and reconnect by themselves)."""
    global _closing
    _closing = True


class ChangeSignal:
    """One thread waits on the orchestrator for every open stream, so an idle stream holds no
    worker thread (the default pool has only a handful, shared with the AWS endpoint)."""

    IDLE_SECONDS = 30.0

    def __init__(self, wait_for_change: Callable[[float], None]):
        self._wait_for_change = wait_for_change
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._thread: threading.Thread | None = None
        self.generation = 0

    async def wait(self, seen: int, timeout: float) -> None:
        """Returns once something changed after generation `seen` was read, or after `timeout`."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            if self.generation != seen:
                return
            self._waiters.append((loop, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="console-change-signal", daemon=True)
                self._thread.start()
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                if (loop, future) in self._waiters:
                    self._waiters.remove((loop, future))

    def _watch(self) -> None:
        idle = 0.0
        while True:
            self._wait_for_change(1.0)
            with self._lock:
                self.generation += 1
                waiters, self._waiters = self._waiters, []
                idle = 0.0 if waiters else idle + 1.0
                if idle >= self.IDLE_SECONDS:
                    self._thread = None
                    return
            for loop, future in waiters:
                loop.call_soon_threadsafe(_settle, future)


def _settle(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


def console_router(cp: ControlPlane, heartbeat: float = HEARTBEAT_SECONDS) -> APIRouter:
    r = APIRouter()
    signal = ChangeSignal(cp.orch.wait_for_change)

    # -------------------------------------------------------- static files

    @r.get("/", include_in_schema=False)
    def index():
        return FileResponse(CONSOLE_DIR / "index.html", media_type="text/html",
                            headers={"Cache-Control": "no-cache"})

    @r.get("/console/{path:path}", include_in_schema=False)
    def asset(path: str):
        target = (CONSOLE_DIR / path).resolve()
        if CONSOLE_DIR.resolve() not in target.parents or not target.is_file():
            raise HTTPException(404, f"no console file {path!r}")
        media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix == ".js":
            media = "text/javascript"
        return FileResponse(target, media_type=media, headers={"Cache-Control": "no-cache"})

    # -------------------------------------------------------- live streams

    @r.get("/api/stream")
    async def stream(after: str | None = Query(default=None),
                     last_event_id: str | None = Header(default=None)):
        """Every status change as it happens (`event: change`, id = feed sequence number)."""
        start = resume_point(after, last_event_id, cp.db.last_event_seq)

        async def events() -> AsyncIterator[str]:
            seq = start
            yield f"retry: {RECONNECT_MILLISECONDS}\n" + sse({"after": seq}, event="hello")
            loop = asyncio.get_running_loop()
            quiet_since = loop.time()
            while not _closing:
                seen = signal.generation
                found = cp.db.events_after(seq)
                for change in found:
                    seq = change["seq"]
                    yield sse(change, id=seq, event="change")
                if found:
                    quiet_since = loop.time()
                    continue
                if loop.time() - quiet_since >= heartbeat:
                    yield ": heartbeat\n\n"
                    quiet_since = loop.time()
                await signal.wait(seen, heartbeat)

        return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)

    @r.get("/api/builds/{build_id}/log/stream")
    async def build_log_stream(build_id: str, after: str | None = Query(default=None),
                               last_event_id: str | None = Header(default=None)):
        """A build's log as it is written (`event: log`), then `event: end` once the build is complete."""
        cp.builds.get(build_id)
        start = resume_point(after, last_event_id, lambda: 0)

        async def chunks() -> AsyncIterator[str]:
            seq = start
            yield f"retry: {RECONNECT_MILLISECONDS}\n\n"
            loop = asyncio.get_running_loop()
            quiet_since = loop.time()
            while not _closing:
                seen = signal.generation
                complete = bool(cp.builds.get(build_id).get("buildComplete"))
                lines = cp.db.read_log("build", build_id, seq)
                for number, text in lines:
                    seq = number
                    yield sse({"seq": number, "text": text}, id=number, event="log")
                if lines:
                    quiet_since = loop.time()
                    continue
                if complete:
                    yield sse({"buildComplete": True}, id=seq, event="end")
                    return
                if loop.time() - quiet_since >= heartbeat:
                    yield ": heartbeat\n\n"
                    quiet_since = loop.time()
                await signal.wait(seen, heartbeat)

        return StreamingResponse(chunks(), media_type="text/event-stream", headers=SSE_HEADERS)

    # -------------------------------------------------------- artifact download

    @r.get("/api/builds/{build_id}/artifact")
    def build_artifact(build_id: str):
        """The build's output artifact zip, read from the store, so the browser never needs store keys."""
        location = (cp.builds.get(build_id).get("artifacts") or {}).get("location", "")
        prefix = "arn:aws:s3:::"
        if not location.startswith(prefix) or "/" not in location[len(prefix):]:
            raise NotFound("BuildArtifact", build_id)
        bucket, key = location[len(prefix):].split("/", 1)
        if not cp.store.exists(bucket, key):
            raise NotFound("BuildArtifact", f"{bucket}/{key}")
        name = key.rsplit("/", 1)[-1] or "artifact"
        if not name.endswith(".zip"):
            name += ".zip"
        return Response(cp.store.get_bytes(bucket, key), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return r
