"""`pipelocal build` (a buildspec against a local directory) and `pipelocal params` / `secrets`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from emulator import contracts
from emulator.config import load_settings
from emulator.domain.errors import SpecError

console = Console(highlight=False)
params_app = typer.Typer(help="SSM Parameter Store stand-in: values for buildspec env.parameter-store.",
                         no_args_is_help=True)
secrets_app = typer.Typer(help="Secrets Manager stand-in: values for buildspec env.secrets-manager.",
                          no_args_is_help=True)
_COLOURS = {"SUCCEEDED": "green", "FAILED": "red", "TIMED_OUT": "red", "STOPPED": "yellow", "FAULT": "red"}


def register(app: typer.Typer) -> None:
    app.command(name="build")(build)
    app.add_typer(params_app, name="params")
    app.add_typer(secrets_app, name="secrets")


def build(
    source: Path = typer.Option(Path("."), "--source", "-s", help="Source directory (CODEBUILD_SRC_DIR)."),
    buildspec: Path = typer.Option(None, "--buildspec", "-b", help="Buildspec file (default: buildspec.yml in the source)."),
    image: str = typer.Option("pipelocal/build:1", "--image", "-i", help="Build image."),
    env_file: Path = typer.Option(None, "--env-file", "-e", help="KEY=VALUE lines, as the project's variables."),
    artifacts: Path = typer.Option(None, "--artifacts", "-a", help="Write the artifacts here (secondary ones in subdirectories)."),
    source_mode: str = typer.Option("copy", "--source-mode", help="copy: every file; git: only files git tracks; bind: mount the directory (the build writes into it)."),
    privileged: bool = typer.Option(False, "--privileged", help="privilegedMode: a privileged container."),
    compute_type: str = typer.Option("BUILD_GENERAL1_SMALL", "--compute-type", help="CPU and memory limits."),
    phase: str = typer.Option(None, "--phase", help="Run only this phase (install, pre_build, build, post_build)."),
    timeout: float = typer.Option(3600, "--timeout", help="Stop the build after this many seconds (TIMED_OUT)."),
    cache_dir: Path = typer.Option(None, "--cache-dir", help="A LOCAL cache directory for the buildspec's cache."),
    batch: bool = typer.Option(False, "--batch", help="Run the buildspec's batch (build-list, build-graph, build-matrix)."),
    shell_on_failure: bool = typer.Option(False, "--shell-on-failure",
                                          help="At the first failed command, open a shell in the build container with the build's environment."),
) -> None:
    """Run a buildspec against a local directory, like CodeBuild's codebuild_build.sh. Exit code 0 only on success."""
    from emulator.runtime.container_runtime import ImageMissing, RuntimeUnavailable
    from emulator.runtime.docker_engine import DockerEngine
    from emulator.services.codebuild import local_build
    from emulator.services.codebuild.build_environment import ReferenceError_
    from emulator.services.codebuild.runtime_packs import RuntimePackError

    settings = load_settings()
    try:
        env = _read_env_file(env_file) if env_file else {}
        options = local_build.LocalBuildOptions(
            source_dir=source, buildspec=buildspec, image=image, compute_type=compute_type, env=env,
            artifacts_dir=artifacts, source_mode=source_mode, privileged=privileged, phase=phase,
            timeout_seconds=timeout, region=settings.region, account=settings.account_id,
            params=_local_params(settings), cache_dir=cache_dir, runtimes_dir=settings.data_dir / "runtimes",
            shell_on_failure=shell_on_failure,
        )
        spec, _ = local_build.prepare(options)
        if batch:
            local_build.prepare_batch(options, spec)
    except (SpecError, local_build.LocalBuildError) as exc:
        console.print(f"[red]refused:[/red] {exc}", markup=True)
        raise typer.Exit(2)
    out = sys.stdout

    def on_text(text: str) -> None:
        out.write(text)
        out.flush()

    def on_phase(report: contracts.PhaseReport) -> None:
        if report.status == "IN_PROGRESS":
            console.rule(f"[bold]{report.phase}[/bold]")

    if batch:
        _run_batch(options, spec, on_text, on_phase, DockerEngine(installation=str(settings.home)))
    engine = DockerEngine(installation=str(settings.home))

    def open_shell(event: dict, container: str) -> None:
        console.print(f"[yellow]command failed:[/yellow] {event.get('command')}\n"
                      f"A shell in the build container, with the build's variables and directory. "
                      f"Exit it to let the build go on (the phase stays failed).")
        script = (f"set -a; . {event['env_file']} 2>/dev/null; set +a; cd \"$(cat {event['cwd_file']})\"; "
                  f"exec bash --norc -i")
        engine.exec(container, ["bash", "-c", script], interactive=True)

    try:
        result = local_build.run(options, spec, on_text, on_phase, engine,
                                 on_pause=open_shell if shell_on_failure else None)
    except (ReferenceError_, RuntimePackError) as exc:
        console.print(f"[red]build refused:[/red] {exc}")
        raise typer.Exit(2)
    except (ImageMissing, RuntimeUnavailable) as exc:
        console.print(f"[red]pipelocal:[/red] {exc}")
        raise typer.Exit(3)
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
    colour = _COLOURS.get(result.status, "white")
    console.print(f"build: [{colour}]{result.status}[/]")
    raise typer.Exit(0 if result.status == "SUCCEEDED" else 1)


def _run_batch(options, spec, on_text, on_phase, runtime) -> None:
    from emulator.services.codebuild import local_build

    results = local_build.run_batch(options, spec, on_text, on_phase, runtime,
                                    on_task=lambda identifier: console.rule(f"[bold cyan]build {identifier}[/bold cyan]"))
    table = Table(title="batch")
    for column in ("build", "status", "phases", "note"):
        table.add_column(column)
    for r in results:
        phases = " ".join(f"{p.phase}:{'PASS' if p.status == 'SUCCEEDED' else 'FAIL'}" for p in (r.result.phases if r.result else []))
        note = r.message or ("failure ignored" if r.ignore_failure and r.status != "SUCCEEDED" else "")
        table.add_row(r.identifier, f"[{_COLOURS.get(r.status, 'white')}]{r.status}[/]", phases, note)
    console.print(table)
    status = local_build.batch_status(results)
    console.print(f"batch: [{_COLOURS.get(status, 'white')}]{status}[/]")
    raise typer.Exit(0 if status == "SUCCEEDED" else 1)


def _read_env_file(path: Path) -> dict[str, str]:
    from emulator.services.codebuild.local_build import LocalBuildError

    env = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LocalBuildError(f"--env-file {path}: {exc}") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip().isidentifier():
            raise LocalBuildError(f"{path}:{number}: expected NAME=VALUE, got {line!r}")
        env[name.strip()] = value
    return env


def _local_params(settings):
    """The installation's Parameter Store, read straight from its state database (if it exists)."""
    if not settings.db_path.exists():
        return None
    from emulator.services.parameters.store import ParameterStore
    from emulator.state.database import Database

    return ParameterStore(Database(settings.db_path, settings.account_id, settings.region))


# ------------------------------------------------------------ params / secrets


def _client():
    from emulator.cli.client import Client

    return Client(load_settings().control_url)


def _call(fn):
    from emulator.cli.client import ControlPlaneError

    try:
        return fn()
    except ControlPlaneError as exc:
        console.print(f"[red]pipelocal:[/red] {exc}")
        raise typer.Exit(1)


@params_app.command("put")
def params_put(name: str, value: str,
               type: str = typer.Option("String", "--type", help="String, StringList or SecureString."),
               overwrite: bool = typer.Option(False, "--overwrite")) -> None:
    """Set a parameter (like `aws ssm put-parameter`)."""
    result = _call(lambda: _client().post("/parameters", {"name": name, "value": value, "type": type,
                                                          "overwrite": overwrite}))
    console.print(f"{name}: version {result['Version']}")


@params_app.command("get")
def params_get(name: str, decrypt: bool = typer.Option(False, "--with-decryption")) -> None:
    """Print a parameter's value."""
    print(_call(lambda: _client().get("/parameters/value", name=name, withDecryption=decrypt))["Value"])


@params_app.command("list")
def params_list() -> None:
    """Names, types and versions (never values)."""
    for p in _call(lambda: _client().get("/parameters"))["parameters"]:
        console.print(f"{p['Name']}  {p['Type']}  v{p['Version']}")


@secrets_app.command("create")
def secrets_create(name: str, value: str) -> None:
    """Create a secret (like `aws secretsmanager create-secret --secret-string`)."""
    result = _call(lambda: _client().post("/secrets", {"name": name, "secretString": value}))
    console.print(result["ARN"])


@secrets_app.command("put")
def secrets_put(secret_id: str, value: str) -> None:
    """A new AWSCURRENT version of a secret."""
    result = _call(lambda: _client().request("PUT", "/secrets/value", json={"secretId": secret_id, "secretString": value}))
    console.print(f"{result['Name']}: version {result['VersionId']}")


@secrets_app.command("get")
def secrets_get(secret_id: str, stage: str = typer.Option(None, "--version-stage")) -> None:
    """Print a secret's value."""
    print(_call(lambda: _client().get("/secrets/value", secretId=secret_id, **({"versionStage": stage} if stage else {})))["SecretString"])


@secrets_app.command("list")
def secrets_list() -> None:
    """Secret names and ARNs (never values)."""
    for s in _call(lambda: _client().get("/secrets"))["secrets"]:
        console.print(f"{s['Name']}  {s['ARN']}")
