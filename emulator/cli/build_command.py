"""`pipelocal build`: a buildspec against a local directory, like CodeBuild's codebuild_build.sh.

Its options are read with argparse rather than typer, and rich is imported while the container
starts: typer's option parsing (a pydantic adapter per option) and rich's import take longer than
the whole overhead a trivial build may have over a plain `docker run` (benchmarks/local_build.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from emulator import contracts
from emulator.config import load_settings
from emulator.domain.errors import SpecError

_COLOURS = {"SUCCEEDED": "green", "FAILED": "red", "TIMED_OUT": "red", "STOPPED": "yellow", "FAULT": "red"}
HELP = "Run a buildspec against a local directory, like CodeBuild's codebuild_build.sh. Exit code 0 only on success."


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pipelocal build", description=HELP)
    p.add_argument("-s", "--source", type=Path, default=Path("."), help="Source directory (CODEBUILD_SRC_DIR). Default: .")
    p.add_argument("-b", "--buildspec", type=Path, help="Buildspec file (default: buildspec.yml in the source).")
    p.add_argument("-i", "--image", default="pipelocal/build:1", help="Build image. Default: pipelocal/build:1")
    p.add_argument("-e", "--env-file", type=Path, help="KEY=VALUE lines, as the project's variables.")
    p.add_argument("-a", "--artifacts", type=Path, help="Write the artifacts here (secondary ones in subdirectories).")
    p.add_argument("--source-mode", default="copy",
                   help="copy: every file (default); git: only files git tracks; bind: mount the directory (the build writes into it).")
    p.add_argument("--privileged", action="store_true", help="privilegedMode: a privileged container.")
    p.add_argument("--compute-type", default="BUILD_GENERAL1_SMALL", help="CPU and memory limits. Default: BUILD_GENERAL1_SMALL")
    p.add_argument("--phase", help="Run only this phase (install, pre_build, build, post_build).")
    p.add_argument("--timeout", type=float, default=3600, help="Stop the build after this many seconds (TIMED_OUT). Default: 3600")
    p.add_argument("--cache-dir", type=Path, help="A LOCAL cache directory for the buildspec's cache.")
    p.add_argument("--batch", action="store_true", help="Run the buildspec's batch (build-list, build-graph, build-matrix).")
    p.add_argument("--max-parallel", type=int, default=None,
                   help="With --batch: how many builds run at once (default 2); each starts when the builds it depends on have ended.")
    p.add_argument("--shell-on-failure", action="store_true",
                   help="At the first failed command, open a shell in the build container with the build's environment.")
    p.add_argument("--standalone", action="store_true",
                   help="Run the build in this process even when pipelocal's control plane runs (which otherwise "
                        "runs it, starting sooner).")
    return p


def register(app) -> None:
    """Adds `build`, `params` and `secrets` to the full CLI (`pipelocal --help` lists them)."""
    import typer

    from emulator.cli.params_command import params_app, secrets_app

    def build(ctx) -> None:
        raise typer.Exit(main(list(ctx.args)))

    build.__annotations__ = {"ctx": typer.Context}  # a real class: this module imports typer only here
    app.command(name="build", help=HELP, add_help_option=False,
                context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(build)
    app.add_typer(params_app, name="params")
    app.add_typer(secrets_app, name="secrets")


def main(args: list[str]) -> int:
    """Runs `pipelocal build ARGS`; the exit status: 0 succeeded, 1 failed, 2 refused, 3 no engine or image."""
    opts = parser().parse_args(args)
    settings = load_settings()
    try:
        env = _read_env_file(opts.env_file) if opts.env_file else {}
    except EnvFileError as exc:
        _console().print(f"[red]refused:[/red] {exc}", markup=True)
        return 2
    if not (opts.standalone or opts.batch or opts.shell_on_failure):  # those need this process (a terminal, several builds)
        handed = _hand_over(opts, env, settings)
        if handed is not None:
            return handed
    from emulator.runtime.container_runtime import ImageMissing, RuntimeUnavailable
    from emulator.runtime.docker_engine import CLI_API_VERSION, DockerEngine
    from emulator.services.codebuild import local_build
    from emulator.services.codebuild.build_environment import ReferenceError_

    try:
        options = local_build.LocalBuildOptions(
            source_dir=opts.source, buildspec=opts.buildspec, image=opts.image, compute_type=opts.compute_type,
            env=env, artifacts_dir=opts.artifacts, source_mode=opts.source_mode, privileged=opts.privileged,
            phase=opts.phase, timeout_seconds=opts.timeout, region=settings.region, account=settings.account_id,
            cache_dir=opts.cache_dir, runtimes_dir=settings.data_dir / "runtimes",
            shell_on_failure=opts.shell_on_failure,
        )
        spec, _ = local_build.prepare(options)
        if opts.batch or spec.env.parameter_store or spec.env.secrets_manager:
            options.params = _local_params(settings)  # opens the state database: only when something may need it
        if opts.batch:
            local_build.prepare_batch(options, spec)
        if opts.max_parallel is not None and opts.max_parallel < 1:
            raise local_build.LocalBuildError(f"--max-parallel {opts.max_parallel}: expected at least 1")
    except (SpecError, local_build.LocalBuildError) as exc:
        _console().print(f"[red]refused:[/red] {exc}", markup=True)
        return 2
    out = sys.stdout
    engine = DockerEngine(installation=str(settings.home), api_version=CLI_API_VERSION)

    def on_text(text: str) -> None:
        out.write(text)
        out.flush()

    def on_phase(report: contracts.PhaseReport) -> None:
        if report.status == "IN_PROGRESS":
            _console().rule(f"[bold]{report.phase}[/bold]")

    def open_shell(event: dict, container: str) -> None:
        _console().print(f"[yellow]command failed:[/yellow] {event.get('command')}\n"
                         f"A shell in the build container, with the build's variables and directory. "
                         f"Exit it to let the build go on (the phase stays failed).")
        script = (f"set -a; . {event['env_file']} 2>/dev/null; set +a; cd \"$(cat {event['cwd_file']})\"; "
                  f"exec bash --norc -i")
        engine.exec(container, ["bash", "-c", script], interactive=True)

    refusals: tuple[type[Exception], ...] = (ReferenceError_,)
    if opts.batch or spec.runtime_versions:
        from emulator.services.codebuild.runtime_packs import RuntimePackError

        refusals += (RuntimePackError,)
    try:
        if opts.batch:
            return _run_batch(options, spec, on_text, engine, opts.max_parallel)
        result = local_build.run(options, spec, on_text, on_phase, engine, on_starting=lambda container: _preload_rich(),
                                 on_pause=open_shell if opts.shell_on_failure else None)
    except (SpecError, local_build.LocalBuildError) as exc:  # found while copying the source (--source-mode git)
        _console().print(f"[red]refused:[/red] {exc}", markup=True)
        return 2
    except refusals as exc:
        _console().print(f"[red]build refused:[/red] {exc}")
        return 2
    except (ImageMissing, RuntimeUnavailable) as exc:
        _console().print(f"[red]pipelocal:[/red] {exc}")
        return 3
    _print_result(result, opts.artifacts)
    return 0 if result.status == "SUCCEEDED" else 1


def run_build_alone(args: list[str]) -> None:
    """`pipelocal build ARGS` without the rest of the CLI (see emulator/cli/entry.py).

    Ends with os._exit once the output is flushed: nothing is left to close (the container is
    gone or removing itself, files are written), and tearing down the interpreter's modules would
    add tens of milliseconds to every build."""
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's usage errors and --help
        code = exc.code if isinstance(exc.code, int) else 2 if exc.code else 0
    except KeyboardInterrupt:  # the build's container is stopped by whoever ran it (this process or the control plane)
        sys.stderr.write("\nbuild interrupted\n")
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _print_result(result, artifacts: Path | None) -> None:
    from rich.table import Table

    console = _console()
    if result.excluded:
        shown = ", ".join(result.excluded[:10]) + (f" and {len(result.excluded) - 10} more" if len(result.excluded) > 10 else "")
        console.print(f"source: {len(result.excluded)} files not tracked by git were left out: {shown}")
    table = Table(title="phases")
    for column in ("phase", "result", "seconds", "message"):
        table.add_column(column)
    for p in result.phases:
        word = "PASS" if p.status == "SUCCEEDED" else "FAIL" if p.status == "FAILED" else p.status
        table.add_row(p.phase, f"[{_COLOURS.get(p.status, 'white')}]{word}[/]", f"{p.seconds:.2f}", p.message or "")
    console.print(table)
    for report in result.reports:
        summary = report.get("testSummary") or report.get("codeCoverageSummary")
        console.print(f"report {report['name']} ({report['fileFormat']}): {report['status']} {summary}")
    if result.exported:
        console.print("exported: " + ", ".join(f"{k}={v}" for k, v in result.exported.items()))
    if artifacts and result.artifacts:
        console.print(f"artifacts: {len(result.artifacts)} files in {artifacts}")
    console.print(f"build: [{_COLOURS.get(result.status, 'white')}]{result.status}[/]")


def _run_batch(options, spec, on_text, runtime, max_parallel: int | None) -> int:
    from rich.table import Table

    from emulator.services.codebuild import local_build

    # builds run side by side: their lines carry the build's identifier instead of phase rules
    results = local_build.run_batch(options, spec, on_text, lambda report: None, runtime, max_parallel=max_parallel,
                                    on_task=lambda identifier: _console().rule(f"[bold cyan]build {identifier} starts[/bold cyan]"))
    table = Table(title="batch")
    for column in ("build", "status", "phases", "note"):
        table.add_column(column)
    for r in results:
        phases = " ".join(f"{p.phase}:{'PASS' if p.status == 'SUCCEEDED' else 'FAIL'}" for p in (r.result.phases if r.result else []))
        note = r.message or ("failure ignored" if r.ignore_failure and r.status != "SUCCEEDED" else "")
        table.add_row(r.identifier, f"[{_COLOURS.get(r.status, 'white')}]{r.status}[/]", phases, note)
    _console().print(table)
    status = local_build.batch_status(results)
    _console().print(f"batch: [{_COLOURS.get(status, 'white')}]{status}[/]")
    return 0 if status == "SUCCEEDED" else 1


def _hand_over(opts, env: dict[str, str], settings) -> int | None:
    """The build run by the installation's control plane, if one runs and takes it."""
    from emulator.cli.build_handoff import Receiver, hand_over, request_for

    out = sys.stdout

    def on_text(text: str) -> None:
        out.write(text)
        out.flush()

    def on_refused(kind: str, message: str) -> int:
        """The words and exit status the command uses when it runs the build itself."""
        prefix, code = {"refused": ("refused", 2), "build-refused": ("build refused", 2),
                        "no-engine": ("pipelocal", 3)}.get(kind, ("pipelocal", 1))
        _console().print(f"[red]{prefix}:[/red] {message}", markup=True)
        return code

    def on_result(result) -> int:
        _print_result(result, opts.artifacts)
        return 0 if result.status == "SUCCEEDED" else 1

    receiver = Receiver(text=on_text, phase=lambda phase: _console().rule(f"[bold]{phase}[/bold]"),
                        refused=on_refused, result=on_result, sent=_preload_rich)
    return hand_over(request_for(opts, env), settings.run_dir, settings.port, receiver)


class EnvFileError(ValueError):
    """An --env-file that cannot be read or has a line that is not NAME=VALUE."""


def _read_env_file(path: Path) -> dict[str, str]:
    env = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EnvFileError(f"--env-file {path}: {exc}") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip().isidentifier():
            raise EnvFileError(f"{path}:{number}: expected NAME=VALUE, got {line!r}")
        env[name.strip()] = value
    return env


def _local_params(settings):
    """The installation's Parameter Store, read straight from its state database (if it exists)."""
    if not settings.db_path.exists():
        return None
    from emulator.services.parameters.store import ParameterStore
    from emulator.state.database import Database

    return ParameterStore(Database(settings.db_path, settings.account_id, settings.region))


_rich: dict = {}
_rich_lock = threading.Lock()


def _console():
    """rich's Console, made at first use (see _preload_rich)."""
    with _rich_lock:
        if "console" not in _rich:
            from rich.console import Console

            _rich["console"] = Console(highlight=False)
        return _rich["console"]


def _preload_rich() -> None:
    """Imports rich on a thread while the main thread waits for the Docker engine to start the
    container (started earlier, the import would take the interpreter from the build's own set-up)."""
    threading.Thread(target=lambda: (_console(), __import__("rich.table")), daemon=True).start()
