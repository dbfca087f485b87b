"""`pipelocal build`: one buildspec against a local directory, no control plane, no pipeline.

The job of AWS's `codebuild_build.sh`. The same runner and the same buildspec checks as a
pipeline build, but the plan is handed to the runner as a file and its phase reports come back
on stdout; the buildspec is refused before any container starts. Reports and artifacts are
read from the container when it exits.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emulator import contracts
from emulator.domain.buildspec import BuildSpec, parse_buildspec, plan_phases
from emulator.runtime.container_payload import add_code
from emulator.runtime.container_runtime import LABEL_OWNER, LABEL_ROLE, ContainerRuntime, ContainerSpec
from emulator.services.codebuild.build_environment import (
    build_variables,
    check_runtime_versions,
    check_variable_list,
    resolve_variables,
)
from runners import local_mode

# Reports, the cache, runtime packs and artifact selection are imported when a buildspec uses
# them: a trivial build's whole overhead budget is a few tens of milliseconds.

SOURCE_MODES = ("copy", "git", "bind")
PHASE_NAMES = {"install": "INSTALL", "pre_build": "PRE_BUILD", "build": "BUILD", "post_build": "POST_BUILD"}
_PLAN_PATH = "/opt/pipelocal/plan.json"
# The runner, its plan and the source arrive as one tar on standard input (no extra round trip
# to the engine, no second mount of the container's filesystem). The image's tar unpacks it (in
# a few milliseconds; Python's tarfile, the fallback, takes about 30); then the runner starts
# with -I -S: no site-packages and no PYTHON* variables of the image, which it does not need.
_UNPACK = ("import sys, tarfile; tarfile.open(fileobj=sys.stdin.buffer, mode='r|').extractall('/', "
           "**({'filter': 'fully_trusted'} if hasattr(tarfile, 'fully_trusted_filter') else {}))")
_START = ("import sys; sys.path.insert(0, '/opt/pipelocal'); from runners.__main__ import main; "
          "sys.exit(main())")
RUNNER_COMMAND = ["sh", "-c", 'if command -v tar >/dev/null; then tar -xf - -C /; else python3 -I -S -c "$1"; fi '
                              '&& exec python3 -I -S -c "$2"', "pipelocal-runner", _UNPACK, _START]
_RESUME_PATH = "/opt/pipelocal/resume"


@dataclass
class LocalBuildOptions:
    source_dir: Path
    buildspec: Path | None = None  # default: buildspec.yml in source_dir
    image: str = "pipelocal/build:1"
    compute_type: str = "BUILD_GENERAL1_SMALL"
    env: dict[str, str] = field(default_factory=dict)
    artifacts_dir: Path | None = None
    source_mode: str = "copy"
    privileged: bool = False
    phase: str | None = None  # run only this phase (install, pre_build, build, post_build)
    timeout_seconds: float = 3600
    region: str = "us-east-1"
    account: str = "000000000000"
    params: object | None = None  # a ParameterStore, for parameter-store and secrets-manager
    cache_dir: Path | None = None  # a LOCAL cache for the buildspec's `cache`; None: no cache
    runtimes_dir: Path | None = None  # where runtime packs are kept; None: the user's ~/.pipelocal
    shell_on_failure: bool = False  # pause at the first failed command for on_pause (an interactive shell)
    # a build the control plane runs: its network and the variables that point the aws CLI at the
    # installation's store and AWS endpoint, as its pipeline builds have them
    network: str | None = None
    service_env: dict[str, str] = field(default_factory=dict)


@dataclass
class PhaseResult:
    phase: str
    status: str
    seconds: float
    message: str | None = None


@dataclass
class LocalBuildResult:
    status: str  # SUCCEEDED | FAILED | TIMED_OUT | FAULT
    phases: list[PhaseResult]
    excluded: list[str]
    reports: list[dict]
    artifacts: list[str]
    exported: dict[str, str]
    message: str | None = None


class LocalBuildError(ValueError):
    """Bad input for a local build, found before any container started."""


def prepare(options: LocalBuildOptions) -> tuple[BuildSpec, str]:
    """Parses and checks the buildspec; raises SpecError (file, line, key) or LocalBuildError."""
    if not options.source_dir.is_dir():
        raise LocalBuildError(f"source directory {options.source_dir}: not a directory")
    path = options.buildspec or options.source_dir / "buildspec.yml"
    if not path.is_file():
        raise LocalBuildError(f"buildspec {path}: no such file (give one with --buildspec)")
    if options.source_mode not in SOURCE_MODES:
        raise LocalBuildError(f"--source-mode {options.source_mode!r}: expected one of {', '.join(SOURCE_MODES)}")
    if options.compute_type not in _compute_types():
        raise LocalBuildError(f"compute type {options.compute_type!r}: expected one of {', '.join(_compute_types())}")
    if options.phase and options.phase not in PHASE_NAMES:
        raise LocalBuildError(f"--phase {options.phase!r}: expected one of {', '.join(PHASE_NAMES)}")
    for name in options.env:
        if name.startswith("CODEBUILD_"):
            raise LocalBuildError(f"environment variable {name}: names starting with CODEBUILD_ are reserved")
    text = path.read_text(encoding="utf-8")
    spec = parse_buildspec(text, str(path))
    if spec.runtime_versions:
        check_runtime_versions(spec, str(path))
    if options.phase and options.phase not in spec.phases:
        raise LocalBuildError(f"--phase {options.phase}: the buildspec has no phases.{options.phase}")
    return spec, text


def source_files(options: LocalBuildOptions) -> tuple[dict[str, tuple[bytes, int]], list[str]]:
    """(relative path -> (content, mode)), and what was left out."""
    root = options.source_dir.resolve()
    if options.source_mode == "bind":  # the directory itself is mounted: nothing to copy
        return {}, []
    every = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    if options.source_mode == "git":
        try:
            out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True).stdout
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            raise LocalBuildError(f"--source-mode git: {root} is not a git work tree ({exc})") from None
        tracked = {p for p in out.decode().split("\0") if p}
        chosen = [p for p in every if p in tracked]
    else:
        chosen = every
    kept = set(chosen)
    excluded = sorted({".git/" if p.startswith(".git/") else p for p in every if p not in kept})
    files = {}
    for rel in chosen:
        full = root / rel
        files[rel] = (full.read_bytes(), full.stat().st_mode & 0o7777)
    return files, excluded


def run(options: LocalBuildOptions, spec: BuildSpec, on_text: Callable[[str], None],
        on_phase: Callable[[contracts.PhaseReport], None], runtime: ContainerRuntime,
        on_pause: Callable[[dict, str], None] | None = None,
        on_starting: Callable[[str], None] = lambda container: None,
        stop: threading.Event | None = None) -> LocalBuildResult:
    """on_pause(event, container) runs while the build waits at its first failed command
    (with shell_on_failure); the event names the command and the shell's snapshot files.
    on_starting(container) runs just before the engine is asked to start the container (work to
    do while it does). A build whose container is stopped after `stop` was set ends STOPPED."""
    files, excluded = source_files(options)
    build_id = f"local:{uuid.uuid4()}"
    src_dir = "/codebuild/output/src1/src"
    now = time.time()
    doc = {"id": build_id, "arn": f"arn:aws:codebuild:{options.region}:{options.account}:build/{build_id}",
           "buildNumber": 1, "startTime": now, "logs": {"streamName": build_id.split(":", 1)[1]}}
    project = {"name": "local", "arn": f"arn:aws:codebuild:{options.region}:{options.account}:project/local",
               "environment": {"image": options.image, "environmentVariables": [
                   {"name": k, "value": v, "type": "PLAINTEXT"} for k, v in options.env.items()]}}
    check_variable_list(project["environment"]["environmentVariables"], "--env")
    user_env, secret_values = resolve_variables(spec, project, None, options.params)

    class _Request:
        env_overrides = None
        initiator = "pipelocal-build"
        source_version = ""
        resolved_source_version = _git_head(options.source_dir)
        source_repo_url = ""

    env = build_variables(doc=doc, project=project, spec=spec, src_dir=src_dir, request=_Request, region=options.region,
                          account=options.account, user_env=user_env)
    for name, value in options.service_env.items():  # the build's own variables (--env-file, the buildspec) win
        env.setdefault(name, value)
    runtime_mounts: list[tuple[str, ...]] = []
    if spec.runtime_versions:
        from emulator.services.codebuild.runtime_packs import RuntimeStore

        runtimes = RuntimeStore(options.runtimes_dir or Path.home() / ".pipelocal" / "data" / "runtimes",
                                log=lambda line: on_text(f"[Container] {line}\n")).mounts_for(spec, spec.file)
        env.update(runtimes.env)
        runtime_mounts = list(runtimes.mounts)
        if runtimes.path_prefix:
            env["PIPELOCAL_PATH_PREFIX"] = ":".join(runtimes.path_prefix)
    phases = plan_phases(spec)
    if options.phase:
        phases = [p for p in phases if p.name == PHASE_NAMES[options.phase]]
    plan = contracts.BuildPlan(build_id=build_id, src_dir=src_dir, shell=spec.env.shell or "bash", env=env,
                               secret_values=secret_values, run_as=spec.run_as, phases=phases,
                               exported_variables=list(spec.env.exported_variables))
    cache_store = cache_key = restored = None
    if spec.cache is not None and options.cache_dir is not None:
        from emulator.services.codebuild import build_cache

        cache_store = build_cache.LocalCacheStore(options.cache_dir)
        cache_key = build_cache.evaluate_key(spec.cache.key, env, {k: v[0] for k, v in files.items()})
        restored, found = build_cache.restore(spec.cache, cache_store, cache_key, list(spec.cache.fallback_keys))
        on_text(f"[Container] Cache (LOCAL): {f'restored from key {found}' if restored else f'no entry for key {cache_key}'}\n")
    plan_bytes = json.dumps(contracts.encode(plan)).encode()
    cpus, memory = _compute_types()[options.compute_type]
    name = f"pipelocal-local-build-{uuid.uuid4().hex[:10]}"
    needs_tree = bool(spec.reports or (options.artifacts_dir and spec.artifacts) or cache_store is not None)
    container_spec = ContainerSpec(
        image=options.image, name=name, command=RUNNER_COMMAND,
        env={local_mode.ENV_PLAN_FILE: _PLAN_PATH,
             **({local_mode.ENV_PAUSE_ON_FAILURE: _RESUME_PATH} if options.shell_on_failure else {})},
        labels={LABEL_ROLE: "local-build", LABEL_OWNER: build_id}, working_dir=src_dir, network=options.network,
        cpus=cpus, memory_mb=memory, privileged=options.privileged,
        mounts=runtime_mounts + ([(str(options.source_dir.resolve()), src_dir, "rw")] if options.source_mode == "bind" else []),
        stdin=lambda: _payload(plan_bytes, files, src_dir, build_cache.placed(restored, src_dir) if restored else None),
        auto_remove=not needs_tree,  # nothing to read back: the engine removes it, nobody waits
    )
    results: list[PhaseResult] = []
    outcome: dict = {}

    started: list[str] = []
    started_at: dict[str, float] = {}

    def on_event(kind: str, data: dict) -> None:
        if kind == "phase":
            report = contracts.decode(contracts.PhaseReport, data)
            if report.status == "IN_PROGRESS":
                started.append(report.phase)
                started_at[report.phase] = report.start_time
            on_phase(report)
            if report.status != "IN_PROGRESS":
                results.append(PhaseResult(report.phase, report.status,
                                           (report.end_time or report.start_time) - report.start_time, report.message))
        elif kind == "result":
            outcome.update(data)
        elif kind == "paused":
            timer.cancel()  # the person at the shell, not the build, decides how long this takes
            try:
                if on_pause is not None:
                    on_pause(data, name)
            finally:
                runtime.exec(name, ["touch", data.get("resume_file", _RESUME_PATH)])

    timed_out = threading.Event()
    timer = threading.Timer(options.timeout_seconds, lambda: (timed_out.set(), runtime.stop(name, timeout=1)))
    timer.daemon = True
    if stop is not None and stop.is_set():
        return LocalBuildResult("STOPPED", [], excluded, [], [], {}, "stopped before it started")
    on_starting(name)
    runtime.start(container_spec)
    if stop is not None and stop.is_set():  # stopped while the engine was starting it
        runtime.stop(name, timeout=1)
    try:
        timer.start()
        try:
            _relay(runtime.logs(name, follow=True), on_text, on_event)  # ends when the runner has exited
        except BaseException:  # Ctrl-C, a lost engine: a container that removes itself would go on running
            if not outcome:
                _quietly(lambda: runtime.stop(name, timeout=1))
            raise
        finally:
            timer.cancel()
        ended = {r.phase for r in results}
        current = next((p for p in reversed(started) if p not in ended), None)  # the phase it was in
        if timed_out.is_set():
            if current is not None:
                results.append(PhaseResult(current, "TIMED_OUT", options.timeout_seconds,
                                           f"Build timed out after {options.timeout_seconds:g} seconds"))
            return LocalBuildResult("TIMED_OUT", results, excluded, [], [], {}, "build timed out")
        if stop is not None and stop.is_set() and not outcome:
            if current is not None:
                results.append(PhaseResult(current, "STOPPED", time.time() - started_at[current], "stopped"))
            return LocalBuildResult("STOPPED", results, excluded, [], [], {}, "stopped")
        # the runner's result line says how the build went (its exit status says the same)
        status = "SUCCEEDED" if outcome.get("succeeded") else "FAILED" if outcome else "FAULT"
        reports, artifacts = [], []
        tree = _read_tree(runtime.copy_from(name, src_dir)) if spec.reports or (options.artifacts_dir and spec.artifacts) else {}
        if spec.reports:
            from emulator.services.codebuild.reports import collect_reports

            reports = collect_reports(spec, {k: v[0] for k, v in tree.items()}, "local", options.region,
                                      options.account, build_id)
        if cache_store is not None and outcome:
            from emulator.services.codebuild import build_cache

            saved = build_cache.save(spec.cache, cache_store, cache_key, src_dir, lambda p: runtime.copy_from(name, p))
            if saved:
                on_text(f"[Container] Saved {saved} files to the cache (key {cache_key})\n")
        upload_due = not any(r.phase in ("INSTALL", "PRE_BUILD") and r.status == "FAILED" for r in results)
        if options.artifacts_dir and spec.artifacts and upload_due:
            from emulator.domain.artifact_selection import NoArtifactsMatched

            start = time.time()
            on_phase(contracts.PhaseReport("UPLOAD_ARTIFACTS", "IN_PROGRESS", start))
            try:
                artifacts = write_artifacts(spec, tree, options.artifacts_dir)
                results.append(PhaseResult("UPLOAD_ARTIFACTS", "SUCCEEDED", time.time() - start))
            except NoArtifactsMatched as exc:
                message = f"CLIENT_ERROR: no matching artifact paths found ({exc})"
                results.append(PhaseResult("UPLOAD_ARTIFACTS", "FAILED", time.time() - start, message))
                on_text(f"[Container] {message}\n")
                status = "FAILED"
        return LocalBuildResult(status, results, excluded, reports, artifacts,
                                outcome.get("exported_variables") or {}, outcome.get("message"))
    finally:
        runtime.remove(name)


def _quietly(call: Callable[[], object]) -> None:
    """Clean-up on the way out of an error: its own failure must not hide the error."""
    try:
        call()
    except Exception:
        pass


def write_artifacts(spec: BuildSpec, tree: dict[str, tuple[bytes, int]], out: Path) -> list[str]:
    """The primary artifact into `out`, each secondary artifact into `out/<identifier>`."""
    from emulator.domain.artifact_selection import select_artifacts

    written = []
    sets = [(out, spec.artifacts)] + [(out / ident, art) for ident, art in spec.artifacts.secondary_artifacts.items()]
    for target, art in sets:
        pairs = select_artifacts(sorted(tree), files=list(art.files), base_directory=art.base_directory,
                                 discard_paths=art.discard_paths, exclude_paths=list(art.exclude_paths))
        for source, rel in pairs:
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            data, mode = tree[source]
            path.write_bytes(data)
            os.chmod(path, mode & 0o777 or 0o644)
            written.append(str(path))
    return written


def _relay(stream, on_text: Callable[[str], None], on_event: Callable[[str, dict], None]) -> None:
    pending = ""
    for chunk in stream:
        pending += chunk
        lines = pending.split("\n")
        pending = lines.pop()
        text = []
        for line in lines:
            event = local_mode.parse_event(line)
            if event is None:
                text.append(line + "\n")
                continue
            if text:
                on_text("".join(text))
                text = []
            on_event(*event)
        if text:
            on_text("".join(text))
    if pending:
        event = local_mode.parse_event(pending)
        on_event(*event) if event else on_text(pending + "\n")


def _payload(plan: bytes, files: dict[str, tuple[bytes, int]], src_dir: str, cache: bytes | None = None) -> bytes:
    """One tar for the container's standard input: the runner (with bytecode), its plan, the
    restored cache and the source, unpacked by RUNNER_COMMAND."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        if cache:
            with tarfile.open(fileobj=io.BytesIO(cache)) as part:
                for member in part.getmembers():
                    tar.addfile(member, part.extractfile(member) if member.isfile() else None)
        add_code(tar, "runners", compiled=True)
        now = int(time.time())
        info = tarfile.TarInfo(_PLAN_PATH.lstrip("/"))
        info.size, info.mtime = len(plan), now
        tar.addfile(info, io.BytesIO(plan))
        for rel, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(f"{src_dir.strip('/')}/{rel}")
            info.size, info.mode, info.mtime = len(data), mode, now
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _read_tree(stream) -> dict[str, tuple[bytes, int]]:
    files: dict[str, tuple[bytes, int]] = {}
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            name = member.name.split("/", 1)[1] if "/" in member.name else member.name
            extracted = tar.extractfile(member)
            files[name] = (extracted.read() if extracted else b"", member.mode)
    return files


def _compute_types() -> dict[str, tuple[float, int]]:
    from emulator.services.codebuild.projects import COMPUTE_TYPES

    return COMPUTE_TYPES


def _git_head(path: Path) -> str:
    """The commit checked out in `path`, "" outside a git work tree (then without running git)."""
    if not any((p / ".git").exists() for p in (path.resolve(), *path.resolve().parents)):
        return ""
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


@dataclass
class BatchTaskResult:
    identifier: str
    status: str  # a build status, or STOPPED for a build that never ran
    result: LocalBuildResult | None
    ignore_failure: bool = False
    message: str | None = None


def prepare_batch(options: LocalBuildOptions, spec: BuildSpec) -> list[tuple[object, LocalBuildOptions, BuildSpec]]:
    """Every build of the batch, each buildspec parsed and checked before any container starts."""
    from dataclasses import replace

    from emulator.services.codebuild.batch_plan import expand_batch

    prepared = []
    for task in expand_batch(spec):
        task_options = replace(
            options,
            buildspec=(options.source_dir / task.buildspec) if task.buildspec else options.buildspec,
            image=task.image or options.image,
            compute_type=task.compute_type or options.compute_type,
            privileged=options.privileged if task.privileged_mode is None else task.privileged_mode,
            env={**options.env, **task.variables},
            artifacts_dir=(options.artifacts_dir / task.identifier) if options.artifacts_dir else None,
        )
        task_spec, _ = prepare(task_options)
        prepared.append((task, task_options, task_spec))
    return prepared


def run_batch(options: LocalBuildOptions, spec: BuildSpec, on_text: Callable[[str], None],
              on_phase: Callable[[contracts.PhaseReport], None], runtime: ContainerRuntime,
              on_task: Callable[[str], None] = lambda identifier: None,
              max_parallel: int | None = None) -> list[BatchTaskResult]:
    """Runs the builds of the batch, up to `max_parallel` (default LOCAL_PARALLEL) at once, each as
    soon as the builds it depends on have ended (BatchSchedule). Several builds at once write their
    output line by line, each line prefixed with the build's identifier."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from emulator.services.codebuild.batch_plan import LOCAL_PARALLEL, BatchSchedule

    prepared = {task.identifier: (task, task_options, task_spec)
                for task, task_options, task_spec in prepare_batch(options, spec)}
    schedule = BatchSchedule([p[0] for p in prepared.values()], spec.batch.fast_fail)
    limit = max(1, max_parallel or LOCAL_PARALLEL)
    output = threading.Lock()
    results: dict[str, BatchTaskResult] = {}
    running: dict = {}
    containers: dict[str, str] = {}  # identifier -> its container, for fast-fail
    stops: dict[str, threading.Event] = {}
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="batch") as pool:
        while True:
            for task in schedule.ready()[: limit - len(running)]:
                schedule.start(task.identifier)
                on_task(task.identifier)
                _, task_options, task_spec = prepared[task.identifier]
                text = _prefixed(task.identifier, on_text, output) if limit > 1 else on_text
                stops[task.identifier] = threading.Event()
                running[pool.submit(run, task_options, task_spec, text, on_phase, runtime,
                                    on_starting=lambda name, i=task.identifier: containers.__setitem__(i, name),
                                    stop=stops[task.identifier])] = task
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001 - one build's fault is that build's, not the batch's
                    result = LocalBuildResult("FAULT", [], [], [], [], {}, f"pipelocal error: {exc}")
                schedule.finish(task.identifier, result.status)
                results[task.identifier] = BatchTaskResult(task.identifier, result.status, result, task.ignore_failure,
                                                           "fast-fail: another build failed" if result.status == "STOPPED" else None)
                if schedule.failed and spec.batch.fast_fail:  # as CodeBuild: the running builds stop too
                    for other in running.values():
                        stops[other.identifier].set()
                        if other.identifier in containers:
                            runtime.stop(containers[other.identifier], timeout=1)
    for identifier, note in schedule.notes.items():
        results[identifier] = BatchTaskResult(identifier, "STOPPED", None, prepared[identifier][0].ignore_failure, note)
    return [results[i] for i in schedule.order]


def _prefixed(identifier: str, on_text: Callable[[str], None], lock: threading.Lock) -> Callable[[str], None]:
    """Whole lines only, each as `identifier | line`, so builds running together stay readable."""
    pending = [""]

    def write(text: str) -> None:
        text = pending[0] + text
        lines = text.split("\n")
        pending[0] = lines.pop()
        if lines:
            with lock:
                on_text("".join(f"{identifier} | {line}\n" for line in lines))

    return write


def batch_status(results: list[BatchTaskResult]) -> str:
    return "SUCCEEDED" if all(r.status == "SUCCEEDED" or r.ignore_failure for r in results) else "FAILED"
