"""The demo: the seed's pipeline, pushed twice, watched live, checked, and reported; then a bad
release that a CloudWatch alarm stops and rolls back, and its fix; then, behind the load balancer,
a canary of a broken page that an alarm aborts and a blue/green release of the fix."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from emulator.cli import traffic_demo
from emulator.cli.broken_release import broken_start
from emulator.cli.client import Client, ControlPlaneError
from emulator.cli.progress import ExecutionWatcher
from emulator.config import Settings

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo_app"
REPOSITORY = "my-app"
SITE_BUCKET = "my-app-build-artifacts"
GROUP = "my-app-fleet"
ALARM = "my-app-5xx"
# The bad release's server: it starts, but answers every request with HTTP 500.
BROKEN_START = broken_start()


@dataclass
class Round:
    title: str
    commit: str
    execution: dict | None = None
    seconds: float = 0.0
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    expected: str = "Succeeded"  # the bad release's pipeline is meant to fail

    @property
    def passed(self) -> bool:
        return bool(self.execution and self.execution["status"] == self.expected and all(ok for _, ok, _ in self.checks))


def provision(client: Client, settings: Settings, store) -> None:
    """Creates what a user would create in AWS before the first push; repeated runs reuse it."""
    existing = {r["repositoryName"] for r in client.get("/repositories")["repositories"]}
    if REPOSITORY not in existing:
        client.post("/repositories", {"repositoryName": REPOSITORY, "repositoryDescription": "pipelocal demo app"})
    projects = {p["name"] for p in client.get("/projects")["projects"]}
    if "my-app-build" not in projects:
        client.post("/projects", {"name": "my-app-build", "source": {"type": "CODEPIPELINE"},
                                  "environment": {"image": "pipelocal/build:1",
                                                  "computeType": "BUILD_GENERAL1_SMALL"}})
    if "my-app-package" not in projects:
        client.post("/projects", {"name": "my-app-package", "source": {
            "type": "CODEPIPELINE", "buildspec": (DEMO_DIR / "package-buildspec.yml").read_text()},
            "environment": {"image": "pipelocal/build:1", "computeType": "BUILD_GENERAL1_SMALL"}})
    try:
        client.post("/applications", {"applicationName": REPOSITORY})
        client.post(f"/applications/{REPOSITORY}/deployment-groups", {
            "deploymentGroupName": "my-app-fleet",
            "ec2TagFilters": [{"Key": "Environment", "Value": "demo", "Type": "KEY_AND_VALUE"}],
            "deploymentConfigName": "CodeDeployDefault.OneAtATime",
            "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
        })
    except ControlPlaneError as exc:
        if "already exists" not in str(exc):
            raise
    store.ensure_bucket(SITE_BUCKET)
    try:
        client.get("/pipelines/demo-pipeline")
    except ControlPlaneError:
        client.post("/pipelines/from-text", {"text": (DEMO_DIR / "pipeline.json").read_text(),
                                             "file": "pipeline.json"})


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def push_round(client: Client, console: Console, work: Path, title: str, version: int, show_logs: bool) -> Round:
    index = work / "src" / "index.html"
    text = index.read_text()
    index.write_text(re.sub(r'<p id="version">version \d+</p>', f'<p id="version">version {version}</p>', text))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", title)
    commit = git(work, "rev-parse", "HEAD")
    cursor = client.get("/events/cursor")["last"]
    started = time.monotonic()
    console.rule(f"[bold]{title}[/bold]  commit {commit[:8]}")
    git(work, "push", "-q", "origin", "HEAD:main")
    execution_id = _wait_for_execution(client, commit)
    watcher = ExecutionWatcher(client, console, show_logs=show_logs)
    execution = watcher.follow(execution_id, after=cursor)
    result = Round(title, commit, execution, time.monotonic() - started)
    return result


def _wait_for_execution(client: Client, commit: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for summary in client.get("/pipelines/demo-pipeline/executions")["pipelineExecutionSummaries"]:
            if any(r.get("revisionId") == commit for r in summary.get("artifactRevisions", [])):
                return summary["pipelineExecutionId"]
        time.sleep(0.3)
    raise RuntimeError(f"no pipeline execution started for commit {commit[:8]} within {timeout:.0f} s")


def check_served(client: Client, work: Path, result: Round, store) -> None:
    built = store.get_bytes(SITE_BUCKET, "latest/index.html").decode()
    result.checks.append(("s3://my-app-build-artifacts/latest/index.html has this commit",
                          result.commit[:8] in built, ""))
    for instance in client.get("/instances")["instances"]:
        if instance.get("state") != "running":
            continue
        url = instance["appUrl"]
        try:
            body = httpx.get(url, timeout=5).text
        except httpx.HTTPError as exc:
            body = f"({exc})"
        ok = body == built
        result.checks.append((f"{instance['name']} serves it at {url}", ok, "" if ok else body[:120]))


def report(console: Console, client: Client, rounds: list[Round]) -> None:
    table = Table(title="pipelocal demo report")
    for column in ("round", "commit", "pipeline", "stages", "time", "checks"):
        table.add_column(column)
    for r in rounds:
        stages = ""
        if r.execution:
            parts = []
            for s in r.execution.get("stages", []):
                duration = (s.get("endTime") or s.get("updatedAt", 0)) - s.get("createdAt", 0)
                parts.append(f"{s['stageName']} {s['status']} {duration:.1f}s")
            stages = "\n".join(parts)
        checks = "\n".join(("PASS " if ok else "FAIL ") + name + (f" ({why})" if why else "")
                           for name, ok, why in r.checks)
        status = r.execution["status"] if r.execution else "not started"
        table.add_row(r.title, r.commit[:8], status, stages, f"{r.seconds:.1f}s", checks)
    console.print(table)
    for r in rounds:
        if r.execution and r.execution["status"] != "Succeeded":
            if r.expected != "Succeeded":
                console.print(f"[yellow]{r.title}: failed as intended.[/yellow]")
            explain_failure(console, client, r.execution)
    passed = sum(1 for r in rounds if r.passed)
    console.print(f"{passed} passed, {len(rounds) - passed} failed")
    for instance in client.get("/instances")["instances"]:
        if instance.get("state") == "running":
            console.print(f"  {instance['name']}: {instance['appUrl']}")
    try:
        console.print(f"  load balancer {traffic_demo.LOAD_BALANCER}: "
                      f"{client.get(f'/elb/load-balancers/{traffic_demo.LOAD_BALANCER}')['url']}")
    except ControlPlaneError:
        pass


def explain_failure(console: Console, client: Client, execution: dict) -> None:
    """Says which action failed and why, down to the lifecycle event and its script output."""
    for action in execution.get("actions", []):
        if action["status"] != "Failed":
            continue
        console.print(f"[red]{action['stageName']}/{action['actionName']} failed:[/red] {action.get('errorMessage', '')}",
                      highlight=False)
        ext = action.get("externalExecutionId", "")
        if action["stageName"] == "Deploy" and ext.startswith("d-"):
            for target in client.get(f"/deployments/{ext}")["targets"]:
                for event in target["lifecycleEvents"]:
                    if event["status"] == "Failed":
                        diag = event.get("diagnostics") or {}
                        console.print(f"  {target['name']} {event['lifecycleEventName']}: "
                                      f"{diag.get('errorCode', '')} {diag.get('message', '')}", highlight=False)
        elif ext:
            console.print(f"  full log: pipelocal logs {ext}")


def arm_alarm(client: Client, enabled: bool) -> None:
    """The alarm the bad release trips: HTTP 5xx of the fleet, 2 of 3 one-minute periods."""
    if enabled:
        client.post("/cloudwatch/alarms", {
            "AlarmName": ALARM, "AlarmDescription": "the demo fleet answers HTTP 5xx",
            "Namespace": "Pipelocal/App", "MetricName": "HTTPCode_Target_5XX_Count",
            "Dimensions": [{"Name": "DeploymentGroupName", "Value": GROUP}], "Statistic": "Sum", "Period": 60,
            "EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"})
    client.post(f"/cloudwatch/deployment-groups/{REPOSITORY}/{GROUP}/alarms", {
        "alarmConfiguration": {"enabled": enabled, "alarms": [{"name": ALARM}]}, "rollbackOnAlarm": enabled})


def check_rolled_back(client: Client, result: Round, previous: str) -> None:
    """The bad release's deployment was stopped by the alarm and its rollback serves `previous`."""
    deploy = next((a for a in (result.execution or {}).get("actions", []) if a["stageName"] == "Deploy"), {})
    deployment_id = deploy.get("externalExecutionId", "")
    if not deployment_id.startswith("d-"):
        result.checks.append(("the Deploy action started a deployment", False, str(deploy.get("errorMessage"))))
        return
    bad = client.get(f"/deployments/{deployment_id}")
    code = (bad.get("errorInformation") or {}).get("code")
    result.checks.append((f"{deployment_id} stopped by alarm {ALARM}", code == "ALARM_ACTIVE", code or bad["status"]))
    rollback_id = (bad.get("rollbackInfo") or {}).get("rollbackDeploymentId")
    if not rollback_id:
        result.checks.append(("a rollback deployment started", False, "none"))
        return
    deadline = time.monotonic() + 180
    rollback = client.get(f"/deployments/{rollback_id}")
    while rollback["status"] not in ("Succeeded", "Failed", "Stopped") and time.monotonic() < deadline:
        time.sleep(0.5)
        rollback = client.get(f"/deployments/{rollback_id}")
    result.checks.append((f"rollback {rollback_id} redeployed the last good revision", rollback["status"] == "Succeeded",
                          rollback["status"]))
    for instance in client.get("/instances")["instances"]:
        if instance.get("state") != "running" or (instance.get("tags") or {}).get("Environment") != "demo":
            continue
        try:
            body = httpx.get(instance["appUrl"], timeout=5).text
        except httpx.HTTPError as exc:
            body = f"({exc})"
        result.checks.append((f"{instance['name']} serves the previous index.html again", body == previous,
                              "" if body == previous else body[:120]))
    result.checks.append((f"why: pipelocal why-rollback {deployment_id}", True, ""))


def bad_release_rounds(client: Client, console: Console, work: Path, store, version: int,
                       show_logs: bool) -> list[Round]:
    """Pushes a release whose app answers 500; the alarm stops it and rolls back. Then the fix."""
    settings = client.get("/cloudwatch/settings")
    client.post("/cloudwatch/settings", {"timeScale": 60})  # the alarm's minutes pass in seconds
    console.print("[dim]time scale 60x for the bad release: one alarm period of 60 s lasts 1 s[/dim]")
    start_script = work / "scripts" / "start_server.sh"
    try:
        arm_alarm(client, True)
        previous = store.get_bytes(SITE_BUCKET, "latest/index.html").decode()
        start_script.write_text(BROKEN_START)
        bad = push_round(client, console, work, f"Bad release: answers HTTP 500 (version {version})", version,
                         show_logs)
        bad.expected = "Failed"
        check_rolled_back(client, bad, previous)
        rounds = [bad]
        if bad.passed:
            shutil.copy(DEMO_DIR / "app" / "scripts" / "start_server.sh", start_script)
            fix = push_round(client, console, work, f"Fix the bad release (version {version + 1})", version + 1,
                             show_logs)
            if fix.execution and fix.execution["status"] == "Succeeded":
                check_served(client, work, fix, store)
            rounds.append(fix)
        return rounds
    finally:
        arm_alarm(client, False)
        client.post("/cloudwatch/settings", {"timeScale": settings["timeScale"]["factor"]})


def run_demo(client: Client, settings: Settings, console: Console, store, show_logs: bool) -> bool:
    provision(client, settings, store)
    work = Path(tempfile.mkdtemp(prefix="pipelocal-demo-"))
    try:
        clone_url = f"{settings.control_url}/v1/repos/{REPOSITORY}"
        git(work.parent, "clone", "-q", clone_url, work.name)
        git(work, "config", "user.email", "demo@pipelocal.local")
        git(work, "config", "user.name", "pipelocal demo")
        first = not (work / "buildspec.yml").exists()
        if first:
            shutil.copytree(DEMO_DIR / "app", work, dirs_exist_ok=True)
        base = _current_version(work)
        rounds = []
        for offset, title in ((1, "First release" if first else "Release"), (2, "Change index.html")):
            version = base + offset if not first or offset > 1 else 1
            r = push_round(client, console, work, f"{title} (version {version})", version, show_logs)
            if r.execution and r.execution["status"] == "Succeeded":
                check_served(client, work, r, store)
            rounds.append(r)
            if not r.passed:
                break
        if len(rounds) == 2 and all(r.passed for r in rounds):
            rounds += bad_release_rounds(client, console, work, store, _current_version(work) + 1, show_logs)
        if len(rounds) == 4 and all(r.passed for r in rounds):
            rounds += traffic_demo.traffic_rounds(client, console, work, push_round,
                                                  (DEMO_DIR / "pipeline.json").read_text(),
                                                  _current_version(work) + 1, show_logs)
        report(console, client, rounds)
        return all(r.passed for r in rounds) and len(rounds) == 6
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _current_version(work: Path) -> int:
    index = work / "src" / "index.html"
    match = re.search(r'<p id="version">version (\d+)</p>', index.read_text()) if index.exists() else None
    return int(match.group(1)) if match else 0
