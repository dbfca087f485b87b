"""One factor that compresses time for alarms, metric periods and waits, so a 5-minute scenario
runs in seconds (60 means one minute passes in one real second)."""

from __future__ import annotations

import threading


class TimeScale:
    def __init__(self, factor: float = 1.0):
        self._lock = threading.Lock()
        self._factor = 1.0
        self.set(factor)

    @property
    def factor(self) -> float:
        return self._factor

    def set(self, factor: float) -> float:
        if not isinstance(factor, (int, float)) or isinstance(factor, bool) or not 0.01 <= factor <= 3600:
            raise ValueError(f"time scale {factor!r}: expected a number from 0.01 to 3600 "
                             "(60 = one minute passes in one second)")
        with self._lock:
            self._factor = float(factor)
        return self._factor

    def real(self, seconds: float) -> float:
        """Real seconds that `seconds` of emulated time take."""
        return seconds / self._factor

    def describe(self, seconds: float) -> str:
        if self._factor == 1:
            return f"{seconds:g} s"
        return f"{seconds:g} s ({self.real(seconds):.3g} s real at time scale {self._factor:g}x)"

    def as_dict(self) -> dict:
        return {"factor": self._factor, "description": f"1 s real = {self._factor:g} s emulated"}
