"""The demo's traffic rounds: the app behind the load balancer stand-in, a canary release of a bad
version that a CloudWatch alarm on the load balancer's 5xx count aborts (traffic returns to the
old version), then a blue/green release of the fix, each under a steady generated load whose
report says whether any request failed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from emulator.cli.broken_release import broken_start
from emulator.cli.client import Client, ControlPlaneError

APPLICATION = "my-app"
FLEET_TAG = {"Key": "Environment", "Value": "demo", "Type": "KEY_AND_VALUE"}
GROUP = "my-app-bluegreen"
LOAD_BALANCER = "my-app-lb"
TARGET_GROUPS = ("my-app-blue", "my-app-green")
ALARM = "my-app-lb-5xx"
CANARY_CONFIG = "CodeDeployDefault.ECSCanary10Percent5Minutes"
RATE = 25  # requests per second through the load balancer during each round
# The target groups check a static file both versions serve, so a broken page still passes them:
# the canary and its alarm are what catch it.
HEALTH_CHECK = {"path": "/app.js", "intervalSeconds": 10, "timeoutSeconds": 5, "healthyThresholdCount": 2,
                "unhealthyThresholdCount": 2, "matcher": "200"}
# The bad canary: static files still serve (health checks pass), every page answers HTTP 500.
BROKEN_PAGES_START = broken_start(keep_static=True)


class Load:
    """The load generator in its own process, at RATE requests per second until `stop()` (or, should
    the demo be interrupted, by itself after MAX_SECONDS)."""

    MAX_SECONDS = 600
    running: list[Load] = []

    def __init__(self, url: str):
        self.path = Path(tempfile.mkdtemp(prefix="pipelocal-load-")) / "report.json"
        self.process = subprocess.Popen([sys.executable, "-m", "emulator.services.elb.load_generator", url,
                                         "--rate", str(RATE), "--duration", str(self.MAX_SECONDS),
                                         "--json", str(self.path)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        Load.running.append(self)

    def stop(self) -> dict:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        if self in Load.running:
            Load.running.remove(self)
        return json.loads(self.path.read_text()) if self.path.exists() else {"sent": 0, "failed": -1, "versions": {}}


def _ignore_exists(call) -> None:
    try:
        call()
    except ControlPlaneError as exc:
        if "already exists" not in str(exc):
            raise


def provision(client: Client) -> dict:
    """Two target groups, a load balancer forwarding to the live one, the fleet registered in it, and
    a blue/green deployment group over that pair; repeated runs reuse them."""
    for name in TARGET_GROUPS:
        _ignore_exists(lambda name=name: client.post("/elb/target-groups", {
            "name": name, "healthCheck": HEALTH_CHECK, "deregistrationDelaySeconds": 30}))
    _ignore_exists(lambda: client.post("/elb/load-balancers", {
        "name": LOAD_BALANCER, "weights": {TARGET_GROUPS[0]: 100, TARGET_GROUPS[1]: 0}}))
    lb = client.get(f"/elb/load-balancers/{LOAD_BALANCER}")
    live = max(lb["weights"], key=lambda tg: lb["weights"][tg])
    fleet = [i for i in client.get("/instances")["instances"]
             if i.get("state") == "running" and (i.get("tags") or {}).get("Environment") == "demo"]
    client.post(f"/elb/target-groups/{live}/register", {"instanceIds": [i["instanceId"] for i in fleet]})
    _ignore_exists(lambda: client.post(f"/applications/{APPLICATION}/deployment-groups", {
        "deploymentGroupName": GROUP, "ec2TagFilters": [FLEET_TAG], "deploymentConfigName": CANARY_CONFIG,
        "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        "loadBalancerInfo": {"targetGroupPairInfoList": [{"targetGroups": [{"name": n} for n in TARGET_GROUPS]}]},
        "blueGreenDeploymentConfiguration": {
            "greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"},
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 1}},
        "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]},
    }))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        targets = client.get(f"/elb/target-groups/{live}/health")["targets"]
        if fleet and all(any(t["instanceId"] == i["instanceId"] and t["state"] == "healthy" for t in targets)
                         for i in fleet):
            break
        time.sleep(0.3)
    return client.get(f"/elb/load-balancers/{LOAD_BALANCER}")


def arm_alarm(client: Client, lb: dict, enabled: bool) -> None:
    """HTTP 5xx answered through the load balancer in one (emulated) minute stops the release."""
    if enabled:
        dimension = lb["loadBalancerArn"].split(":loadbalancer/", 1)[1]
        client.post("/cloudwatch/alarms", {
            "AlarmName": ALARM, "AlarmDescription": "the demo's load balancer answers HTTP 5xx",
            "Namespace": "AWS/ApplicationELB", "MetricName": "HTTPCode_Target_5XX_Count",
            "Dimensions": [{"Name": "LoadBalancer", "Value": dimension}], "Statistic": "Sum", "Period": 60,
            "EvaluationPeriods": 1, "Threshold": 0, "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching"})
    client.post(f"/cloudwatch/deployment-groups/{APPLICATION}/{GROUP}/alarms", {
        "alarmConfiguration": {"enabled": enabled, "alarms": [{"name": ALARM}]}, "rollbackOnAlarm": enabled})


def use_group(client: Client, pipeline_text: str, group: str) -> None:
    """Points the pipeline's Deploy action at `group`."""
    declaration = json.loads(pipeline_text)
    for stage in declaration["pipeline"]["stages"]:
        for action in stage["actions"]:
            if action["actionTypeId"]["provider"] == "CodeDeploy":
                action["configuration"]["DeploymentGroupName"] = group
    client.post("/pipelines/from-text", {"text": json.dumps(declaration), "file": "pipeline.json", "update": True})


def deployment_of(execution: dict | None) -> str:
    deploy = next((a for a in (execution or {}).get("actions", []) if a["stageName"] == "Deploy"), {})
    return deploy.get("externalExecutionId", "")


def wait_deployment(client: Client, deployment_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    doc = client.get(f"/deployments/{deployment_id}")
    while doc["status"] not in ("Succeeded", "Failed", "Stopped") and time.monotonic() < deadline:
        time.sleep(0.3)
        doc = client.get(f"/deployments/{deployment_id}")
    return doc


def sample(lb: dict, seconds: float = 2.0) -> dict:
    load = Load(lb["url"])
    time.sleep(seconds)
    return load.stop()


def traffic_rounds(client: Client, console: Console, work: Path, push_round, pipeline_text: str, version: int,
                   show_logs: bool) -> list:
    """Round 5: a canary of a broken page, aborted by the alarm; round 6: a blue/green release of the fix."""
    settings = client.get("/cloudwatch/settings")
    client.post("/cloudwatch/settings", {"timeScale": 60})
    console.print("[dim]time scale 60x for the traffic rounds: health checks every 10 s take 0.17 s, the canary's "
                  "5 minutes take 5 s[/dim]")
    start_script = work / "scripts" / "start_server.sh"
    good_start = start_script.read_text()
    rounds = []
    try:
        lb = provision(client)
        console.print(f"[bold]load balancer {LOAD_BALANCER}[/bold] at {lb['url']} "
                      f"(weights {lb['weights']}); {RATE} requests/s through it during each round")
        arm_alarm(client, lb, True)
        use_group(client, pipeline_text, GROUP)
        client.post(f"/applications/{APPLICATION}/deployment-groups/{GROUP}", {"deploymentConfigName": CANARY_CONFIG})
        before = sample(lb)
        previous = sorted(before.get("versions") or {"?": 0})[0]

        start_script.write_text(BROKEN_PAGES_START)
        load = Load(lb["url"])
        canary = push_round(client, console, work, f"Canary release of a broken page (version {version})", version,
                            show_logs)
        canary.expected = "Failed"
        during = load.stop()
        _check_canary(client, canary, lb, during, previous)
        rounds.append(canary)
        if not canary.passed:
            return rounds

        start_script.write_text(good_start)
        client.post(f"/applications/{APPLICATION}/deployment-groups/{GROUP}",
                    {"deploymentConfigName": "CodeDeployDefault.AllAtOnce"})
        load = Load(lb["url"])
        release = push_round(client, console, work, f"Blue/green release of the fix (version {version + 1})",
                             version + 1, show_logs)
        report = load.stop()
        _check_blue_green(client, release, lb, report, f"version {version + 1}")
        rounds.append(release)
        return rounds
    finally:
        for load in list(Load.running):  # a round that ended early leaves none running
            load.stop()
        start_script.write_text(good_start)
        arm_alarm(client, client.get(f"/elb/load-balancers/{LOAD_BALANCER}"), False)
        use_group(client, pipeline_text, "my-app-fleet")
        client.post("/cloudwatch/settings", {"timeScale": settings["timeScale"]["factor"]})


def _check_canary(client: Client, result, lb: dict, during: dict, previous: str) -> None:
    deployment_id = deployment_of(result.execution)
    if not deployment_id.startswith("d-"):
        result.checks.append(("the Deploy action started a deployment", False, ""))
        return
    doc = wait_deployment(client, deployment_id)
    code = (doc.get("errorInformation") or {}).get("code")
    result.checks.append((f"canary {deployment_id} stopped by alarm {ALARM}", code == "ALARM_ACTIVE",
                          code or doc["status"]))
    errors = (during.get("statuses") or {}).get("500", 0)
    result.checks.append((f"the canary took part of the traffic ({errors} of {during.get('sent')} requests "
                          "answered 500 before the alarm)", errors > 0, ""))
    rollback_id = (doc.get("rollbackInfo") or {}).get("rollbackDeploymentId")
    rollback = wait_deployment(client, rollback_id) if rollback_id else {"status": "none"}
    result.checks.append((f"rollback {rollback_id} rerouted to the original instances",
                          rollback["status"] == "Succeeded", rollback["status"]))
    weights = client.get(f"/elb/load-balancers/{LOAD_BALANCER}")["weights"]
    result.checks.append((f"all traffic back on the original target group {weights}",
                          sorted(weights.values()) == [0, 100], ""))
    after = sample(lb)
    versions = after.get("versions") or {}
    result.checks.append((f"{after.get('sent')} requests after the abort: all answered by {previous}",
                          after.get("failed") == 0 and set(versions) == {previous}, json.dumps(versions)))


def _check_blue_green(client: Client, result, lb: dict, report: dict, expected: str) -> None:
    deployment_id = deployment_of(result.execution)
    doc = wait_deployment(client, deployment_id) if deployment_id.startswith("d-") else {"status": "none"}
    result.checks.append((f"blue/green {deployment_id} succeeded", doc["status"] == "Succeeded", doc["status"]))
    result.checks.append((f"every request through the load balancer answered ({report.get('sent')} sent, "
                          f"{report.get('failed')} failed)", report.get("failed") == 0 and report.get("sent", 0) > 0,
                          json.dumps(report.get("versions"))))
    after = sample(lb)
    result.checks.append((f"{LOAD_BALANCER} serves {expected}", set(after.get("versions") or {}) == {expected},
                          json.dumps(after.get("versions"))))
    originals = [t for t in doc.get("targets", []) if t.get("instanceLabel") == "Blue"]
    states = {i["instanceId"]: i["state"] for i in client.get("/instances", all="true")["instances"]}
    result.checks.append(("the original instances were terminated",
                          bool(originals) and all(states.get(t["instanceId"]) == "terminated" for t in originals), ""))
