"""Build output to the control plane: batched (every ~0.3 s or 64 KB) with secrets masked.

Only whole lines are masked and sent, so a secret split across two reads is still caught; a
command's unterminated last line is released when the command ends.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from emulator.contracts import LogChunk

MASK = "***"
SEND_INTERVAL_SECONDS = 0.3
SEND_BYTES = 64 * 1024


def container_line(message: str, now: float | None = None) -> str:
    """A line in CodeBuild's own voice, e.g. `[Container] 2026/11/26 06:50:24.544957 Running command npm test`."""
    now = time.time() if now is None else now
    stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1_000_000):06d}"
    return f"[Container] {stamp} {message}\n"


class LogStream:
    def __init__(self, send: Callable[[LogChunk], None], secrets: list[str]):
        self._send = send
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._partial = ""
        self._ready: list[str] = []
        self._ready_bytes = 0
        self._seq = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._thread = threading.Thread(target=self._pump, name="log-stream", daemon=True)
        self._thread.start()

    def write(self, text: str) -> None:
        """Raw command output, in any pieces."""
        with self._lock:
            text = self._partial + text
            end = text.rfind("\n") + 1
            self._partial = text[end:]
            if end:
                self._queue(text[:end])

    def end_of_output(self) -> None:
        """The command finished: release its unterminated last line."""
        with self._lock:
            if self._partial:
                self._queue(self._partial + "\n")
                self._partial = ""

    def container(self, message: str) -> None:
        self.end_of_output()
        with self._lock:
            self._queue(container_line(message))

    def marker(self, line: str) -> None:
        """A machine-read line (local mode), in order with the log, never masked."""
        self.end_of_output()
        with self._lock:
            self._ready.append(line)
            self._wake.notify()

    def close(self) -> None:
        self.end_of_output()
        with self._lock:
            self._closed = True
            self._wake.notify()
        self._thread.join()

    def _queue(self, text: str) -> None:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        self._ready.append(text)
        self._ready_bytes += len(text)
        if self._ready_bytes >= SEND_BYTES:
            self._wake.notify()

    def _pump(self) -> None:
        while True:
            with self._lock:
                if not self._closed and self._ready_bytes < SEND_BYTES:
                    self._wake.wait(SEND_INTERVAL_SECONDS)
                text, closed = "".join(self._ready), self._closed
                self._ready, self._ready_bytes = [], 0
            if text:
                self._seq += 1
                try:
                    self._send(LogChunk(seq=self._seq, text=text))
                except Exception as exc:  # noqa: BLE001 - losing log lines must not stop the build
                    print(f"pipelocal runner: could not send logs: {exc}", file=sys.stderr)
            if closed:
                return
