"""The one asyncio loop, on its own thread, that runs every listener and every health check, so
the proxy never waits on the control plane's threads and thousands of sockets cost no threads."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import Any, Coroutine

log = logging.getLogger(__name__)


class EventLoopThread:
    def __init__(self, name: str = "elb-loop"):
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.set_exception_handler(lambda _loop, ctx: log.error("load balancer loop: %s", ctx.get("message"),
                                                                      exc_info=ctx.get("exception")))
        self._ready.set()
        self.loop.run_forever()
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, coro: Coroutine) -> Future:
        """Runs `coro` on the loop; the returned future may be waited on from any other thread."""
        if not self.running:
            coro.close()
            raise RuntimeError("the load balancer loop is not running")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine, timeout: float = 10.0) -> Any:
        return self.submit(coro).result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        if self.loop is not None and self.running:
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        self._thread = None
        self._ready.clear()
