"""`pipelocal`: run the AWS delivery pipeline on this machine.

Start with `pipelocal demo`: it builds the images, starts everything, pushes the sample app and
shows it travel Source -> Build -> Deploy. `pipelocal --help` lists the rest.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from emulator.cli import build_command, cloudwatch_command, deploy_command, lb_command, lifecycle
from emulator.cli.client import Client, ControlPlaneError
from emulator.config import load_settings
from emulator.runtime.container_runtime import RuntimeUnavailable

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
repo_app = typer.Typer(help="Hosted git repositories (the CodeCommit stand-in).", no_args_is_help=True)
pipeline_app = typer.Typer(help="Pipelines in AWS's own JSON structure.", no_args_is_help=True)
instances_app = typer.Typer(help="The fleet: agent containers standing in for EC2 instances.", no_args_is_help=True)
app.add_typer(repo_app, name="repo")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(instances_app, name="instances")
app.add_typer(deploy_command.deployments_app, name="deployments")
app.command("deploy")(deploy_command.deploy)
build_command.register(app)
cloudwatch_command.register(app)
lb_command.register(app)
console = Console(highlight=False)


def _client() -> Client:
    return Client(load_settings().control_url)


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[red]pipelocal:[/red] {message}")
    raise typer.Exit(code)


@app.command()
def images(force: bool = typer.Option(False, "--force", help="Rebuild even if the images are current."),
           control_plane: bool = typer.Option(False, "--control-plane",
                                              help="Also build pipelocal/control-plane:1 for docker-compose.")) -> None:
    """Build the build and agent images from Debian packages (no registry needed). Cached."""
    from emulator.runtime.images import ImageBuilder, ImageBuildError

    settings = load_settings()
    builder = ImageBuilder(settings.home / "images", progress=lambda line: console.print(f"  {line}"))
    try:
        names = builder.ensure(force=force)
        if control_plane:
            from emulator.runtime.control_plane_image import ControlPlaneImageBuilder

            cp_builder = ControlPlaneImageBuilder(settings.home / "images", progress=lambda line: console.print(f"  {line}"))
            names.append(cp_builder.ensure(force=force, base_checked=True))
            from emulator.runtime.docker_engine import DockerEngine

            DockerEngine().ensure_network()  # docker-compose.yml joins it as an external network
            if cp_builder.built:
                builder.built.append(names[-1])
    except (ImageBuildError, RuntimeUnavailable) as exc:
        _fail(str(exc), 2)
    console.print(f"images ready: {', '.join(names)}" + (f" (built: {', '.join(builder.built)})" if builder.built else ""))


@app.command()
def up(detach: bool = typer.Option(True, "--detach/--foreground",
                                   help="Keep running in the background (default), or stay attached until Ctrl-C.")) -> None:
    """Start the control plane, the object store and the fleet of instances."""
    settings = load_settings()
    images(force=False, control_plane=False)
    try:
        client = lifecycle.start_server(settings, console)
        fleet = lifecycle.ensure_fleet(client, settings, console)
    except (lifecycle.StartFailed, ControlPlaneError) as exc:
        _fail(str(exc), 2)
    console.print(f"control plane: {settings.control_url}   store: {settings.store_url}   instances: {len(fleet)}")
    if not detach:
        import time

        console.print("running; press Ctrl-C to stop")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            lifecycle.stop_everything(settings, console)


@app.command()
def down() -> None:
    """Stop the control plane and remove instance and build containers. State stays on disk."""
    try:
        lifecycle.stop_everything(load_settings(), console)
    except RuntimeUnavailable as exc:
        _fail(str(exc), 2)


@app.command()
def status() -> None:
    """What runs, where, and which version each instance serves."""
    settings = load_settings()
    client = Client(settings.control_url)
    if not client.healthy():
        console.print(f"control plane: [red]not running[/red] ({settings.control_url}); start it with `pipelocal up`")
        raise typer.Exit(1)
    console.print(f"control plane: [green]running[/green] at {settings.control_url}; store {settings.store_url}; "
                  f"data in {settings.data_dir}")
    try:
        scale = client.get("/cloudwatch/settings")["timeScale"]
        console.print(f"time scale: {scale['factor']:g}x ({scale['description']})")
    except (ControlPlaneError, KeyError, TypeError):
        pass
    table = Table(title="instances")
    for column in ("name", "instance id", "state", "tags", "address", "app URL", "serving"):
        table.add_column(column)
    for i in client.get("/instances")["instances"]:
        revision = i.get("revision") or {}
        table.add_row(i["name"], i["instanceId"], i.get("state", ""), ",".join(f"{k}={v}" for k, v in i["tags"].items()),
                      i.get("privateIpAddress") or "", i.get("appUrl") or "",
                      f"{revision.get('deploymentId', '-')} {revision.get('description', '') or ''}".strip())
    console.print(table)
    pipelines = Table(title="pipelines")
    for column in ("pipeline", "last execution", "status", "source revision"):
        pipelines.add_column(column)
    for p in client.get("/pipelines")["pipelines"]:
        runs = client.get(f"/pipelines/{p['name']}/executions")["pipelineExecutionSummaries"]
        last = runs[0] if runs else {}
        rev = (last.get("artifactRevisions") or [{}])[0]
        pipelines.add_row(p["name"], last.get("pipelineExecutionId", "-"), last.get("status", "-"),
                          f"{rev.get('revisionId', '')[:8]} {rev.get('revisionSummary', '')[:40]}".strip())
    console.print(pipelines)


@app.command()
def demo(logs: bool = typer.Option(False, "--logs", help="Stream build logs too.")) -> None:
    """Set everything up and run the seed's pipeline: a first push, a change to index.html, a bad release
    that an alarm stops and rolls back, and its fix."""
    from emulator.cli.demo import run_demo
    from emulator.store.object_store import ObjectStore

    settings = load_settings()
    images(force=False, control_plane=False)
    try:
        client = lifecycle.start_server(settings, console)
        lifecycle.ensure_fleet(client, settings, console)
        store = ObjectStore(settings.store_url, settings.s3_access_key, settings.s3_secret_key, settings.region)
        ok = run_demo(client, settings, console, store, show_logs=logs)
    except (lifecycle.StartFailed, ControlPlaneError) as exc:
        _fail(str(exc), 2)
    raise typer.Exit(0 if ok else 1)


@app.command()
def logs(build_id: str = typer.Argument(None, help="A build id (project:uuid). Without it: the latest build."),
         deployment: str = typer.Option(None, "--deployment", help="Show a deployment's lifecycle event logs.")) -> None:
    """Print a build's log, or the script output of a deployment's lifecycle events."""
    client = _client()
    try:
        if deployment:
            info = client.get(f"/deployments/{deployment}")
            for target in info["targets"]:
                for event in target["lifecycleEvents"]:
                    text = client.get(f"/deployments/{deployment}/instances/{target['instanceId']}/events/"
                                      f"{event['lifecycleEventName']}/log")["log"]
                    console.print(f"[bold]{target['name']} {event['lifecycleEventName']} {event['status']}[/bold]")
                    diagnostics = event.get("diagnostics") or {}
                    if event["status"] == "Failed" and diagnostics.get("message"):
                        console.print(f"[red]{diagnostics.get('errorCode')}: {diagnostics['message']}[/red]",
                                      markup=True, highlight=False)
                    if text:
                        console.print(text.rstrip(), markup=False)
            return
        if not build_id:
            builds = []
            for p in client.get("/projects")["projects"]:
                builds += [b for b in _project_builds(client, p["name"])]
            if not builds:
                _fail("no builds yet")
            build_id = max(builds, key=lambda b: b["startTime"])["id"]
        for chunk in client.get(f"/builds/{build_id}/log")["chunks"]:
            sys.stdout.write(chunk["text"])
    except ControlPlaneError as exc:
        _fail(str(exc))


def _project_builds(client: Client, project: str) -> list[dict]:
    return client.get(f"/projects/{project}/builds")["builds"]


@app.command(hidden=True)
def server() -> None:
    """Run the control plane in the foreground (what `up` starts in the background)."""
    from emulator.server import main

    raise typer.Exit(main())


# ------------------------------------------------------------------ repo
# `repo` and `pipeline` speak the AWS API of the control plane (docs/aws-api.md), the same calls
# `aws codecommit` and `aws codepipeline` make; only the live progress view reads the event feed.


def _aws(service: str):
    import boto3

    settings = load_settings()
    return boto3.client(service, endpoint_url=settings.control_url, region_name=settings.region,
                        aws_access_key_id="pipelocal", aws_secret_access_key="pipelocal")


def _call(service: str, operation: str, **params):
    """One AWS API call; an AWS error or a stopped control plane becomes one line and exit code 1."""
    from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError

    try:
        return getattr(_aws(service), operation)(**params)
    except ClientError as exc:
        error = exc.response["Error"]
        _fail(f"{error.get('Code')}: {error.get('Message')}")
    except ParamValidationError as exc:
        _fail(str(exc))
    except EndpointConnectionError:
        _fail(f"The control plane is not running at {load_settings().control_url}. Start it with `pipelocal up`.")


def _all(service: str, operation: str, result_key: str, **params) -> list:
    """Every item of a list operation, page after page (the API answers in pages, as AWS does)."""
    items, token_name = [], "nextToken"
    while True:
        page = _call(service, operation, **params)
        items += page[result_key]
        if not page.get(token_name):
            return items
        params[token_name] = page[token_name]


def _print_json(doc: dict) -> None:
    doc = {k: v for k, v in doc.items() if k != "ResponseMetadata"}
    console.print_json(json.dumps(doc, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)))


@repo_app.command("create")
def repo_create(name: str, description: str = "") -> None:
    """Create a hosted repository (CreateRepository); prints its clone URL."""
    repo = _call("codecommit", "create_repository", repositoryName=name, repositoryDescription=description)
    console.print(f"created {name}: git clone {repo['repositoryMetadata']['cloneUrlHttp']}")


@repo_app.command("list")
def repo_list() -> None:
    for entry in _all("codecommit", "list_repositories", "repositories"):
        repo = _call("codecommit", "get_repository", repositoryName=entry["repositoryName"])["repositoryMetadata"]
        console.print(f"{repo['repositoryName']}\t{repo['cloneUrlHttp']}")


@repo_app.command("delete")
def repo_delete(name: str) -> None:
    """Delete a repository and its git data (DeleteRepository)."""
    _call("codecommit", "get_repository", repositoryName=name)
    _call("codecommit", "delete_repository", repositoryName=name)
    console.print(f"deleted {name}")


@repo_app.command("branches")
def repo_branches(name: str) -> None:
    """Each branch and the commit it points at (ListBranches, GetBranch)."""
    for branch in _call("codecommit", "list_branches", repositoryName=name)["branches"]:
        commit = _call("codecommit", "get_branch", repositoryName=name, branchName=branch)["branch"]["commitId"]
        console.print(f"{branch}\t{commit}")


# ------------------------------------------------------------------ pipeline


@pipeline_app.command("create")
def pipeline_create(file: Path = typer.Option(..., "-f", "--file", exists=True, help="pipeline.json or .yaml"),
                    update: bool = typer.Option(False, "--update", help="Replace an existing pipeline.")) -> None:
    """Create a pipeline from the JSON that `aws codepipeline get-pipeline` prints (CreatePipeline).

    As on AWS, a new pipeline starts its first execution. The file is checked here first, so an
    error names its line.
    """
    from emulator.domain.errors import SpecError
    from emulator.domain.pipeline import load_pipeline

    try:
        declaration = load_pipeline(file.read_text(), str(file))
    except SpecError as exc:
        _fail(f"InvalidStructureException: {exc}")
    declaration.pop("version", None)
    if update:
        current = _call("codepipeline", "get_pipeline", name=declaration["name"])["pipeline"]
        declaration["version"] = current["version"]
        doc = _call("codepipeline", "update_pipeline", pipeline=declaration)
        console.print(f"pipeline {doc['pipeline']['name']} version {doc['pipeline']['version']}")
        return
    doc = _call("codepipeline", "create_pipeline", pipeline=declaration)
    first = _call("codepipeline", "list_pipeline_executions", pipelineName=declaration["name"], maxResults=1)
    started = first["pipelineExecutionSummaries"][0]["pipelineExecutionId"] if first[
        "pipelineExecutionSummaries"] else None
    console.print(f"pipeline {doc['pipeline']['name']} version {doc['pipeline']['version']}"
                  + (f"; first execution {started}" if started else ""))


@pipeline_app.command("list")
def pipeline_list() -> None:
    for p in _all("codepipeline", "list_pipelines", "pipelines"):
        console.print(f"{p['name']}\tversion {p['version']}\t{p.get('executionMode', 'SUPERSEDED')}")


@pipeline_app.command("get")
def pipeline_get(name: str) -> None:
    _print_json(_call("codepipeline", "get_pipeline", name=name))


@pipeline_app.command("delete")
def pipeline_delete(name: str) -> None:
    _call("codepipeline", "get_pipeline", name=name)
    _call("codepipeline", "delete_pipeline", name=name)
    console.print(f"deleted {name}")


@pipeline_app.command("start")
def pipeline_start(name: str, watch: bool = typer.Option(True, "--watch/--no-watch"),
                   variable: list[str] = typer.Option([], "--variable", "-v",
                                                      help="NAME=VALUE for a pipeline-level variable")) -> None:
    """Start an execution with the latest source revision (StartPipelineExecution)."""
    from emulator.cli.progress import ExecutionWatcher

    variables = []
    for item in variable:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"--variable {item!r}: expected NAME=VALUE")
        variables.append({"name": key, "value": value})
    client = _client()
    try:
        cursor = client.get("/events/cursor")["last"]
    except ControlPlaneError as exc:
        _fail(str(exc))
    execution_id = _call("codepipeline", "start_pipeline_execution", name=name,
                         **({"variables": variables} if variables else {}))["pipelineExecutionId"]
    console.print(f"execution {execution_id}")
    if watch:
        done = ExecutionWatcher(client, console).follow(execution_id, after=cursor)
        console.print(f"execution {execution_id}: {done['status']}")
        raise typer.Exit(0 if done["status"] == "Succeeded" else 1)


@pipeline_app.command("stop")
def pipeline_stop(name: str, execution_id: str,
                  abandon: bool = typer.Option(False, "--abandon", help="Abandon running actions."),
                  reason: str = typer.Option("", "--reason")) -> None:
    """Stop an execution: wait for running actions, or abandon them (StopPipelineExecution)."""
    _call("codepipeline", "stop_pipeline_execution", pipelineName=name, pipelineExecutionId=execution_id,
          abandon=abandon, reason=reason)
    status = _call("codepipeline", "get_pipeline_execution", pipelineName=name,
                   pipelineExecutionId=execution_id)["pipelineExecution"]["status"]
    console.print(f"execution {execution_id}: {status}")


@pipeline_app.command("state")
def pipeline_state(name: str) -> None:
    _print_json(_call("codepipeline", "get_pipeline_state", name=name))


@pipeline_app.command("executions")
def pipeline_executions(name: str) -> None:
    """Execution history, newest first, with each execution's source revision."""
    for e in _all("codepipeline", "list_pipeline_executions", "pipelineExecutionSummaries", pipelineName=name):
        revisions = ", ".join(f"{r['actionName']}@{r['revisionId'][:8]}" for r in e.get("sourceRevisions", []))
        started = e["startTime"].strftime("%Y-%m-%d %H:%M:%S") if e.get("startTime") else ""
        console.print("\t".join([e["pipelineExecutionId"], e["status"], e.get("trigger", {}).get("triggerType", ""),
                                 revisions or "-", started]), soft_wrap=True)


@pipeline_app.command("approve")
def pipeline_approve(name: str, stage: str, action: str,
                     reject: bool = typer.Option(False, "--reject"),
                     summary: str = typer.Option("", "--summary")) -> None:
    """Approve (or --reject) the manual approval waiting in STAGE/ACTION (PutApprovalResult)."""
    state = _call("codepipeline", "get_pipeline_state", name=name)
    token = next((a.get("latestExecution", {}).get("token") for s in state["stageStates"] if s["stageName"] == stage
                  for a in s["actionStates"] if a["actionName"] == action), None)
    if not token:
        _fail(f"No approval is waiting in {stage}/{action} of {name}")
    _call("codepipeline", "put_approval_result", pipelineName=name, stageName=stage, actionName=action, token=token,
          result={"summary": summary, "status": "Rejected" if reject else "Approved"})
    console.print(f"{stage}/{action}: {'Rejected' if reject else 'Approved'}")


@pipeline_app.command("retry")
def pipeline_retry(name: str, stage: str, execution_id: str,
                   all_actions: bool = typer.Option(False, "--all-actions",
                                                    help="Rerun every action, not just the failed ones.")) -> None:
    """Run a failed stage of an execution again (RetryStageExecution)."""
    _call("codepipeline", "retry_stage_execution", pipelineName=name, stageName=stage,
          pipelineExecutionId=execution_id, retryMode="ALL_ACTIONS" if all_actions else "FAILED_ACTIONS")
    console.print(f"execution {execution_id}: retrying {stage}")


@pipeline_app.command("disable-transition")
def pipeline_disable_transition(name: str, stage: str, reason: str = typer.Option(..., "--reason")) -> None:
    """Hold executions in front of STAGE (DisableStageTransition, Inbound)."""
    _call("codepipeline", "disable_stage_transition", pipelineName=name, stageName=stage,
          transitionType="Inbound", reason=reason)
    console.print(f"transition into {stage}: disabled")


@pipeline_app.command("enable-transition")
def pipeline_enable_transition(name: str, stage: str) -> None:
    _call("codepipeline", "enable_stage_transition", pipelineName=name, stageName=stage, transitionType="Inbound")
    console.print(f"transition into {stage}: enabled")


# ------------------------------------------------------------------ instances


@instances_app.command("launch")
def instances_launch(count: int = typer.Option(1, "--count"),
                     tag: list[str] = typer.Option([], "--tag", help="Key=Value, repeatable")) -> None:
    tags = deploy_command.parse_tags(tag)
    for i in _client().post("/instances", {"count": count, "tags": tags})["instances"]:
        console.print(f"{i['instanceId']} {i['name']} {i['appUrl']}")


@instances_app.command("list")
def instances_list() -> None:
    for i in _client().get("/instances")["instances"]:
        console.print(f"{i['instanceId']}\t{i['name']}\t{i.get('state')}\t{i.get('appUrl')}\t{i['tags']}")


@instances_app.command("terminate")
def instances_terminate(instance_id: str) -> None:
    console.print(_client().delete(f"/instances/{instance_id}")["state"])


def main() -> None:
    """Entry point: a user's mistake or a stopped control plane is one red line, never a traceback."""
    try:
        app()
    except ControlPlaneError as exc:
        console.print(f"[red]pipelocal:[/red] {exc}")
        sys.exit(1)
    except RuntimeUnavailable as exc:
        console.print(f"[red]pipelocal:[/red] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
