"""Host commands waiting for agents, and their results.

Agents long-poll for the next command of their instance. A result is stored once; a repeated
report of the same command changes nothing, so agents may retry freely. An agent acknowledges a
command with a first heartbeat as soon as it has it; a command handed out but never acknowledged
(the poll's response was lost) can be handed out again. The HTTP server waits with
`poll_async`, which holds no thread, so a fleet of any size can poll at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque

from emulator import contracts


class CommandQueue:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._pending: dict[str, deque[contracts.HostCommand]] = {}
        self._results: dict[str, contracts.CommandResult] = {}
        self._heartbeats: dict[str, float] = {}
        self.last_seen: dict[str, float] = {}
        self._handed_out: dict[str, float] = {}
        self._async_waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def put(self, instance: str, command: contracts.HostCommand) -> None:
        with self._lock:
            self._pending.setdefault(instance, deque()).append(command)
            self._lock.notify_all()
            for loop, event in self._async_waiters.get(instance, []):
                loop.call_soon_threadsafe(event.set)

    def poll(self, instance: str, wait: float) -> contracts.HostCommand | None:
        deadline = time.monotonic() + wait
        with self._lock:
            self.last_seen[instance] = time.time()
            while True:
                queue = self._pending.get(instance)
                if queue:
                    return self._hand_out(queue.popleft())
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._lock.wait(remaining)
                self.last_seen[instance] = time.time()

    async def poll_async(self, instance: str, wait: float) -> contracts.HostCommand | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            event = asyncio.Event()
            waiter = (loop, event)
            with self._lock:
                self.last_seen[instance] = time.time()
                queue = self._pending.get(instance)
                if queue:
                    return self._hand_out(queue.popleft())
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                self._async_waiters.setdefault(instance, []).append(waiter)
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except asyncio.TimeoutError:
                pass
            finally:
                with self._lock:
                    waiters = self._async_waiters.get(instance, [])
                    if waiter in waiters:
                        waiters.remove(waiter)

    def _hand_out(self, command: contracts.HostCommand) -> contracts.HostCommand:
        self._handed_out[command.command_id] = time.time()
        return command

    def unacknowledged_since(self, command_id: str) -> float | None:
        """When the command was handed out, if the agent has neither acknowledged nor answered it."""
        with self._lock:
            if command_id in self._heartbeats or command_id in self._results:
                return None
            return self._handed_out.get(command_id)

    def redeliver(self, instance: str, command: contracts.HostCommand) -> None:
        """Hands an unacknowledged command out again, first in line; the agent's record of recent
        results makes a repeat harmless."""
        with self._lock:
            self._handed_out.pop(command.command_id, None)
            self._pending.setdefault(instance, deque()).appendleft(command)
            self._lock.notify_all()
            for loop, event in self._async_waiters.get(instance, []):
                loop.call_soon_threadsafe(event.set)

    def heartbeat(self, instance: str, command_id: str) -> None:
        with self._lock:
            self.last_seen[instance] = time.time()
            self._heartbeats[command_id] = time.time()

    def report(self, instance: str, result: contracts.CommandResult) -> bool:
        """Stores a result; False if this command already had one (the repeat is ignored)."""
        with self._lock:
            self.last_seen[instance] = time.time()
            if result.command_id in self._results:
                return False
            self._results[result.command_id] = result
            self._lock.notify_all()
            return True

    def wait_result(self, command_id: str, timeout: float) -> contracts.CommandResult | None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while command_id not in self._results:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._lock.wait(min(remaining, 1.0))
            return self._results[command_id]

    def last_heartbeat(self, command_id: str) -> float | None:
        with self._lock:
            return self._heartbeats.get(command_id)

    def cancel(self, instance: str) -> None:
        with self._lock:
            self._pending.pop(instance, None)
