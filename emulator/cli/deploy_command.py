"""`pipelocal deploy` (what `codedeploy-local` does, on emulated instances) and `pipelocal deployments`."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from emulator.cli.client import Client, ControlPlaneError
from emulator.config import load_settings

console = Console(highlight=False)
deployments_app = typer.Typer(help="CodeDeploy deployments: list, show, stop, redeploy.", no_args_is_help=True)

LOCAL_APPLICATION = "pipelocal-local"
LOCAL_GROUP = "LocalFleet"  # codedeploy-local's default DEPLOYMENT_GROUP_NAME
LOCAL_TAG = "pipelocal:deploy"
TERMINAL = ("Succeeded", "Failed", "Stopped")
_SUFFIXES = {".zip": "zip", ".tar": "tar", ".tgz": "tgz", ".gz": "tgz"}


def _client() -> Client:
    return Client(load_settings().control_url)


def parse_tags(values: list[str]) -> dict[str, str]:
    tags = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r}: expected Key=Value", param_hint="--tag")
        tags[key] = val
    return tags


def bundle_type_of(name: str, given: str | None) -> str:
    if given:
        if given not in ("zip", "tar", "tgz"):
            raise typer.BadParameter(f"{given!r}: expected zip, tar or tgz", param_hint="--type")
        return given
    kind = _SUFFIXES.get(Path(name).suffix.lower())
    if kind is None:
        raise typer.BadParameter(f"cannot tell the bundle type of {name!r} from its name; pass --type zip|tar|tgz",
                                 param_hint="BUNDLE")
    return kind


def pack_directory(directory: Path) -> bytes:
    """A tgz of the directory's contents, members relative to its root (as a revision is)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(directory.rglob("*")):
            archive.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
    return buffer.getvalue()


def revision_for(client: Client, bundle: str, bundle_type: str | None) -> dict:
    if bundle.startswith("s3://"):
        bucket, _, key = bundle[5:].partition("/")
        if not bucket or not key:
            raise typer.BadParameter(f"{bundle!r}: expected s3://bucket/key", param_hint="BUNDLE")
        return {"revisionType": "S3", "s3Location": {"bucket": bucket, "key": key,
                                                     "bundleType": bundle_type_of(key, bundle_type)}}
    path = Path(bundle)
    if path.is_dir():
        data, kind = pack_directory(path), "tgz"
    elif path.is_file():
        data, kind = path.read_bytes(), bundle_type_of(path.name, bundle_type)
    else:
        raise typer.BadParameter(f"{bundle!r} is neither a directory, a file nor s3://bucket/key",
                                 param_hint="BUNDLE")
    return client.request("POST", "/bundles", content=data, params={"bundleType": kind})


def _ensure(client: Client, path: str, payload: dict) -> None:
    try:
        client.post(path, payload)
    except ControlPlaneError as exc:
        if not str(exc).startswith("ConflictException"):
            raise


def deploy(
    bundle: str = typer.Argument(..., help="A directory, a .zip/.tar/.tgz file, or s3://bucket/key."),
    instance: list[str] = typer.Option([], "--instance", "-i",
                                       help="Deploy to this instance (id or name); repeatable. "
                                            "Without it a fresh instance is launched."),
    appspec_filename: str = typer.Option(None, "--appspec-filename",
                                         help="The appspec's name at the bundle root (default appspec.yml, "
                                              "then appspec.yaml)."),
    events: str = typer.Option(None, "--events", "-e",
                               help="Comma-separated lifecycle events to run, custom names allowed; "
                                    "DownloadBundle and Install always run."),
    file_exists_behavior: str = typer.Option("DISALLOW", "--file-exists-behavior",
                                             help="DISALLOW, OVERWRITE or RETAIN"),
    bundle_type: str = typer.Option(None, "--type", help="zip, tar or tgz when the name does not say."),
    application: str = typer.Option(LOCAL_APPLICATION, "--application-name", "-a"),
    group: str = typer.Option(LOCAL_GROUP, "--deployment-group-name", "-d"),
    config: str = typer.Option(None, "--deployment-config-name"),
) -> None:
    """Deploy a bundle to one fresh instance or to named ones, printing each lifecycle event."""
    if file_exists_behavior not in ("DISALLOW", "OVERWRITE", "RETAIN"):
        raise typer.BadParameter(f"{file_exists_behavior!r}: expected DISALLOW, OVERWRITE or RETAIN",
                                 param_hint="--file-exists-behavior")
    client = _client()
    revision = revision_for(client, bundle, bundle_type)
    if not instance:
        launched = client.post("/instances", {"count": 1, "tags": {LOCAL_TAG: "local"}, "namePrefix": "local"})
        instance = [launched["instances"][0]["name"]]
        console.print(f"launched {instance[0]} ({launched['instances'][0]['instanceId']})")
    _ensure(client, "/applications", {"applicationName": application})
    _ensure(client, f"/applications/{application}/deployment-groups",
            {"deploymentGroupName": group, "ec2TagFilters": [{"Key": LOCAL_TAG, "Type": "KEY_ONLY"}]})
    payload = {"applicationName": application, "deploymentGroupName": group, "revision": revision,
               "fileExistsBehavior": file_exists_behavior, "instanceNames": instance,
               "deploymentConfigName": config or "CodeDeployDefault.AllAtOnce"}
    if appspec_filename:
        payload["appspecFile"] = appspec_filename
    if events:
        payload["lifecycleEvents"] = [e.strip() for e in events.split(",") if e.strip()]
    created = client.post("/deployments", payload)
    console.print(f"deployment {created['deploymentId']} to {', '.join(instance)}")
    doc = watch(client, created["deploymentId"])
    if doc["status"] != "Succeeded":
        raise typer.Exit(1)


def watch(client: Client, deployment_id: str, poll: float = 0.3) -> dict:
    """Prints each lifecycle event as it changes, then the per-instance, per-event table."""
    shown: dict[tuple[str, str], str] = {}
    while True:
        doc = client.get(f"/deployments/{deployment_id}")
        for target in doc["targets"]:
            for event in target["lifecycleEvents"]:
                key = (target["name"], event["lifecycleEventName"])
                if event["status"] != "Pending" and shown.get(key) != event["status"]:
                    shown[key] = event["status"]
                    console.print(f"  {target['name']:<12} {event['lifecycleEventName']:<18} {event['status']}"
                                  + _duration(event))
        if doc["status"] in TERMINAL:
            break
        time.sleep(poll)
    print_table(doc)
    return doc


def _duration(event: dict) -> str:
    if event.get("startTime") and event.get("endTime"):
        return f" ({event['endTime'] - event['startTime']:.1f} s)"
    return ""


def print_table(doc: dict) -> None:
    table = Table(title=f"{doc['deploymentId']}: {doc['status']}")
    table.add_column("instance")
    table.add_column("lifecycle event")
    table.add_column("status")
    table.add_column("duration", justify="right")
    table.add_column("message")
    for target in doc["targets"]:
        for event in target["lifecycleEvents"]:
            diagnostics = event.get("diagnostics") or {}
            message = diagnostics.get("message", "") if event["status"] == "Failed" else ""
            side = f" ({target['instanceLabel'].lower()})" if target.get("instanceLabel") else ""
            table.add_row(target["name"] + side, event["lifecycleEventName"], event["status"],
                          _duration(event).strip(" ()"), message.splitlines()[0] if message else "")
    console.print(table)
    for step in doc.get("deploymentStatusMessages") or []:  # a blue/green release's steps
        console.print(f"  [cyan]{step}[/cyan]", highlight=False)
    if doc.get("errorInformation"):
        console.print(f"{doc['errorInformation']['code']}: {doc['errorInformation']['message']}")
    for target in doc["targets"]:
        for event in target["lifecycleEvents"]:
            tail = (event.get("diagnostics") or {}).get("logTail")
            if event["status"] == "Failed" and tail:
                console.print(f"[bold]{target['name']} {event['lifecycleEventName']}[/bold] output (tail):\n{tail}")


@deployments_app.command("list")
def deployments_list(application: str = typer.Option(None, "--application-name", "-a"),
                     group: str = typer.Option(None, "--deployment-group-name", "-d")) -> None:
    for d in _client().get("/deployments", **{k: v for k, v in (("application", application), ("group", group)) if v}
                           )["deployments"]:
        console.print(f"{d['deploymentId']}\t{d['applicationName']}/{d['deploymentGroupName']}\t{d['status']}"
                      f"\t{d.get('creator', '')}")


@deployments_app.command("get")
def deployments_get(deployment_id: str) -> None:
    print_table(_client().get(f"/deployments/{deployment_id}"))


@deployments_app.command("stop")
def deployments_stop(deployment_id: str,
                     auto_rollback: bool = typer.Option(None, "--auto-rollback-enabled/--no-auto-rollback-enabled",
                                                        help="Roll back after stopping (default: the group's "
                                                             "DEPLOYMENT_STOP_ON_REQUEST setting).")) -> None:
    payload = {} if auto_rollback is None else {"autoRollbackEnabled": auto_rollback}
    doc = _client().post(f"/deployments/{deployment_id}/stop", payload)
    console.print(f"{deployment_id}: stop requested ({doc['status']})")


@deployments_app.command("continue")
def deployments_continue(deployment_id: str,
                         wait_type: str = typer.Option("READY_WAIT", "--deployment-wait-type",
                                                       help="READY_WAIT: reroute traffic to the replacement "
                                                            "environment now; TERMINATION_WAIT: end the wait before "
                                                            "the original instances are terminated.")) -> None:
    doc = _client().post(f"/deployments/{deployment_id}/continue", {"deploymentWaitType": wait_type})
    console.print(f"{deployment_id}: continue requested ({wait_type}, {doc['status']})")


@deployments_app.command("redeploy")
def deployments_redeploy(deployment_id: str, watch_it: bool = typer.Option(True, "--watch/--no-watch")) -> None:
    client = _client()
    doc = client.post(f"/deployments/{deployment_id}/redeploy")
    console.print(f"deployment {doc['deploymentId']} redeploys the revision of {deployment_id}")
    if watch_it and watch(client, doc["deploymentId"])["status"] != "Succeeded":
        raise typer.Exit(1)
