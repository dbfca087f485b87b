"""`pipelocal build`s handed over by the command line: run in the control plane, which has the
Docker SDK loaded already (loading it costs a new process about as long as a trivial build
itself), and told back as LocalBuildEvents. Without a running control plane, or when this one
cannot run the build, the command runs it itself, in the same way (local_build).
"""

from __future__ import annotations

import dataclasses
import os
import queue
import secrets
import threading
from pathlib import Path

from emulator import contracts
from emulator.domain.errors import SpecError
from emulator.runtime.container_runtime import ContainerRuntime, ImageMissing, RuntimeUnavailable
from emulator.services.codebuild import local_build
from emulator.services.codebuild.build_environment import ReferenceError_
from emulator.services.codebuild.runtime_packs import RuntimePackError
from emulator.services.codebuild.warm_containers import WarmContainers


PENDING = object()  # next_event: no event yet


class NotHere(Exception):
    """This control plane cannot run the build (another user's, a directory it cannot see)."""


class HandedBuild:
    """One build, run on a thread once whoever asked for it reads its events (`begin`); they come
    in order, ending with None."""

    def __init__(self, runtime: ContainerRuntime, launch=None) -> None:
        self._events: queue.Queue[dict | None] = queue.Queue()
        self._runtime = runtime
        self._launch = launch
        self.stopping = threading.Event()
        self.container: str | None = None
        self._ended = threading.Event()

    def begin(self) -> None:
        launch, self._launch = self._launch, None
        if launch is not None:
            threading.Thread(target=launch, daemon=True, name="handed-build").start()

    def put(self, event: contracts.LocalBuildEvent | None) -> None:
        if event is None:
            self._ended.set()
        self._events.put(None if event is None else contracts.encode(event))

    def next_event(self, wait: float) -> dict | None | object:
        """The next event, None at the end, or PENDING after `wait` seconds without one (so
        whoever waits can notice that its caller went away)."""
        try:
            return self._events.get(timeout=wait)
        except queue.Empty:
            return PENDING

    def stop(self) -> None:
        """The caller went away (Ctrl-C): its build stops like a stopped CodeBuild build."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        if self.container is not None and not self.ended:
            self._runtime.stop(self.container, timeout=1)

    @property
    def ended(self) -> bool:
        return self._ended.is_set()


class HandedBuilds:
    """The local builds this control plane takes: who may hand one over, and running them."""

    def __init__(self, runtime: ContainerRuntime, params, runtimes_dir: Path, region: str, account: str,
                 service_env: dict[str, str] | None = None, network: str | None = None) -> None:
        self.runtime = runtime
        self.service_env = dict(service_env or {})
        self.network = network
        self.containers = WarmContainers(runtime)
        self.params = params
        self.runtimes_dir = runtimes_dir
        self.region = region
        self.account = account
        self.token = secrets.token_urlsafe(24)
        self._running: set[HandedBuild] = set()
        self._lock = threading.Lock()

    def publish_token(self, run_dir: Path) -> Path:
        """Only who can read the installation's run directory may hand over builds (a handed build
        mounts host directories, so the containers that reach this API must not)."""
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / contracts.LOCAL_BUILD_TOKEN_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a file left by an earlier start keeps its mode through os.open
        with os.fdopen(fd, "w") as handle:
            handle.write(self.token)
        return path

    def check_token(self, token: str | None) -> bool:
        return bool(token) and secrets.compare_digest(token.encode(errors="replace"), self.token.encode())

    def start(self, request: contracts.LocalBuildRequest) -> HandedBuild:
        """Starts the build; bad input comes back as its one `refused` event, as the command would say it."""
        if request.uid != os.getuid():
            raise NotHere("the build belongs to another user than the control plane's")
        source = Path(request.source_dir)
        if not source.is_absolute() or not source.is_dir():
            raise NotHere(f"{request.source_dir} is not a directory the control plane sees")
        options = local_build.LocalBuildOptions(
            source_dir=source, buildspec=_path(request.buildspec), image=request.image,
            compute_type=request.compute_type, env=dict(request.env), artifacts_dir=_path(request.artifacts_dir),
            source_mode=request.source_mode, privileged=request.privileged, phase=request.phase,
            timeout_seconds=request.timeout_seconds, region=self.region, account=self.account,
            params=self.params, cache_dir=_path(request.cache_dir), runtimes_dir=self.runtimes_dir,
            network=self.network, service_env=self.service_env,
        )
        try:
            spec, _ = local_build.prepare(options)
        except (SpecError, local_build.LocalBuildError) as exc:
            build = HandedBuild(self.runtime)
            build.put(contracts.LocalBuildEvent("refused", str(exc)))
            build.put(None)
            return build
        build = HandedBuild(self.runtime, launch=lambda: self._run(build, options, spec))
        return build

    def _run(self, build: HandedBuild, options: local_build.LocalBuildOptions, spec) -> None:
        def on_phase(report: contracts.PhaseReport) -> None:
            if report.status == "IN_PROGRESS":
                build.put(contracts.LocalBuildEvent("phase", phase=report.phase))

        with self._lock:
            self._running.add(build)
        try:
            result = local_build.run(options, spec, lambda text: build.put(contracts.LocalBuildEvent("text", text)),
                                     on_phase, self.containers, stop=build.stopping,
                                     on_starting=lambda name: setattr(build, "container", name))
            build.put(contracts.LocalBuildEvent("result", result=dataclasses.asdict(result)))
        except (SpecError, local_build.LocalBuildError) as exc:  # found while copying the source
            build.put(contracts.LocalBuildEvent("refused", str(exc)))
        except (ReferenceError_, RuntimePackError) as exc:
            build.put(contracts.LocalBuildEvent("build-refused", str(exc)))
        except (ImageMissing, RuntimeUnavailable) as exc:
            build.put(contracts.LocalBuildEvent("no-engine", str(exc)))
        except Exception as exc:  # the control plane outlives whatever a build does
            fault = local_build.LocalBuildResult("FAULT", [], [], [], [], {}, f"{type(exc).__name__}: {exc}")
            build.put(contracts.LocalBuildEvent("result", result=dataclasses.asdict(fault)))
        finally:
            build.put(None)
            with self._lock:
                self._running.discard(build)
        self.containers.refill()

    def stop_all(self) -> None:
        """The control plane is stopping: no build it took outlives it."""
        with self._lock:
            running = list(self._running)
        for build in running:
            try:
                build.stop()
            except Exception:  # the engine may be gone as well; the others still get stopped
                pass
        self.containers.close()


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
