"""Containers for handed-over local builds, created and started before the build that uses them.

Creating and starting a container is most of a short build's time. A build container's first
command reads the runner, plan and source from its standard input, so a container can be started
ahead, wait in that read, and get its input when a build arrives: the build sees a fresh
container made from exactly its own settings. Each is used once; after a build, one is made for
the next build with the same settings.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid

from emulator.runtime.container_runtime import LABEL_OWNER, ContainerRuntime, ContainerSpec

WARM_OWNER = "warm"  # LABEL_OWNER of a container waiting for a build


class WarmContainers:
    """A ContainerRuntime whose `start` uses a waiting container made from the same settings when
    there is one; every other call goes to the runtime it wraps."""

    KEEP = 2  # settings kept ready at once (say the default image, and one with a runtime pack)

    def __init__(self, runtime: ContainerRuntime) -> None:
        self.runtime = runtime
        self._ready: dict[tuple, str] = {}  # settings -> waiting container, oldest first
        self._wanted: list[ContainerSpec] = []
        self._lock = threading.Lock()
        self._closed = False

    def __getattr__(self, name: str):
        return getattr(self.runtime, name)

    def start(self, spec: ContainerSpec):
        key = _settings(spec)
        if key is None:
            return self.runtime.start(spec)
        with self._lock:
            waiting = self._ready.pop(key, None)
            self._wanted.append(spec)
        if waiting is not None:
            try:
                return self.runtime.feed(waiting, spec.name, spec.stdin() if callable(spec.stdin) else spec.stdin)
            except Exception:  # gone meanwhile (an engine restart, someone's docker rm; feed removed it): start one now
                pass
        return self.runtime.start(spec)

    def refill(self) -> None:
        """Makes a waiting container for each build started since the last call (after the build,
        so making it does not slow the build down)."""
        with self._lock:
            wanted, self._wanted = self._wanted, []
        for spec in wanted:
            key = _settings(spec)
            with self._lock:
                if self._closed or key in self._ready:
                    continue
            waiting = dataclasses.replace(spec, name=f"pipelocal-warm-build-{uuid.uuid4().hex[:10]}",
                                          labels={**spec.labels, LABEL_OWNER: WARM_OWNER})
            try:
                self.runtime.start_waiting(waiting)
            except Exception:  # the next build starts its container itself
                continue
            evicted = []
            with self._lock:
                if self._closed or key in self._ready:
                    evicted.append(waiting.name)
                else:
                    self._ready[key] = waiting.name
                    while len(self._ready) > self.KEEP:
                        evicted.append(self._ready.pop(next(iter(self._ready))))
            for name in evicted:
                self._discard(name)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            waiting, self._ready = list(self._ready.values()), {}
        for name in waiting:
            self._discard(name)

    def _discard(self, name: str) -> None:
        """Stopped first: one that removes itself on exit is otherwise only let go of."""
        for call in (lambda: self.runtime.stop(name, timeout=1), lambda: self.runtime.remove(name)):
            try:
                call()
            except Exception:
                pass


def _settings(spec: ContainerSpec) -> tuple | None:
    """Everything fixed when a container is created; None for one that cannot wait (no input to
    wait on, or files put into it before it starts)."""
    if spec.stdin is None or spec.files:
        return None
    return (spec.image, tuple(spec.command or ()), tuple(sorted(spec.env.items())), spec.working_dir, spec.network,
            spec.cpus, spec.memory_mb, spec.privileged, tuple(tuple(m) for m in spec.mounts), spec.auto_remove,
            tuple(sorted(spec.publish.items())), spec.hostname,
            tuple(sorted((k, v) for k, v in spec.labels.items() if k != LABEL_OWNER)))
