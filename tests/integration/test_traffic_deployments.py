"""Traffic-aware deployments on real agent containers behind the load balancer stand-in, under a
steady generated load: in-place with BlockTraffic/AllowTraffic, blue/green with a copied fleet,
a canary that completes and a canary that an alarm aborts (aws-semantics.md sections 2-3).

Every load generator runs in its own process and reports each answer it got, so "every request
answered" and "all traffic back on the old version" are read from what a client saw.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.test_codedeploy_conformance import bundle

pytestmark = pytest.mark.integration

BUCKET = "traffic-tests"
TAG = "TrafficTest"
SCALE = 60.0  # health-check intervals, draining and canary waits: one emulated minute per real second
BLUE_GREEN = {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
CHECK = {"path": "/", "intervalSeconds": 10, "timeoutSeconds": 5, "healthyThresholdCount": 2,
         "unhealthyThresholdCount": 2, "matcher": "200"}

START = """#!/bin/bash
set -e
mkdir -p /srv/app
nohup python3 -m http.server 80 --directory /srv/app >/var/log/app.log 2>&1 &
echo $! > /var/run/app.pid
for _ in $(seq 50); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1/')" 2>/dev/null && exit 0
  sleep 0.1
done
exit 1
"""
STOP = """#!/bin/bash
if [ -f /var/run/app.pid ]; then kill "$(cat /var/run/app.pid)" 2>/dev/null || true; rm -f /var/run/app.pid; fi
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', 80), 0.2)" 2>/dev/null || exit 0
  sleep 0.1
done
"""
# Starts, answers its health check path, but fails every page: what a canary exists to catch.
BROKEN_START = """#!/bin/bash
set -e
cat > /tmp/broken.py <<'PY'
import http.server
class Broken(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200 if self.path == "/health.txt" else 500
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"broken")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", 80), Broken).serve_forever()
PY
nohup python3 /tmp/broken.py >/var/log/app.log 2>&1 &
echo $! > /var/run/app.pid
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', 80), 1)" 2>/dev/null && exit 0
  sleep 0.1
done
exit 1
"""
APPSPEC = """version: 0.0
os: linux
files:
  - source: site
    destination: /srv/app
file_exists_behavior: OVERWRITE
hooks:
  ApplicationStop:
    - location: stop.sh
  ApplicationStart:
    - location: start.sh
"""


def app_files(version: str, broken: bool = False) -> dict[str, str]:
    return {"appspec.yml": APPSPEC, "site/index.html": f"version {version}\n", "site/health.txt": "ok\n",
            "start.sh": BROKEN_START if broken else START, "stop.sh": STOP}


class Load:
    """`pipelocal load` in its own process; `report()` stops it and reads its JSON report. It stops by
    itself after MAX_SECONDS, and `stop_all()` ends any a failed test left running."""

    MAX_SECONDS = 300
    running: list[Load] = []

    def __init__(self, url: str, rate: int, work: Path):
        self.path = work / f"load-{uuid.uuid4().hex[:6]}.json"
        self.process = subprocess.Popen([sys.executable, "-m", "emulator.services.elb.load_generator", url,
                                         "--rate", str(rate), "--duration", str(self.MAX_SECONDS),
                                         "--json", str(self.path)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        Load.running.append(self)
        time.sleep(1.0)

    def report(self) -> dict:
        self.process.send_signal(signal.SIGINT)
        _, err = self.process.communicate(timeout=30)
        Load.running.remove(self)
        assert self.path.exists(), err.decode(errors="replace")[-2000:]
        return json.loads(self.path.read_text())

    @classmethod
    def stop_all(cls) -> None:
        for load in list(cls.running):
            load.process.kill()
            load.process.wait(10)
            cls.running.remove(load)


class Traffic:
    def __init__(self, cp, tmp: Path):
        self.cp, self.client, self.tmp = cp, cp.client, tmp
        self.app = f"traffic-{uuid.uuid4().hex[:6]}"
        self.client.post("/applications", {"applicationName": self.app})
        cp.store.ensure_bucket(BUCKET)

    def launch(self, count: int, tag_value: str) -> list[dict]:
        launched = self.client.post("/instances", {"count": count, "tags": {TAG: tag_value}})["instances"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(self.client.get(f"/instances/{i['instanceId']}").get("agentRegistered") for i in launched):
                break
            time.sleep(0.3)
        return launched

    def target_group(self, **check) -> str:
        name = f"tg-{uuid.uuid4().hex[:6]}"
        self.client.post("/elb/target-groups", {"name": name, "healthCheck": {**CHECK, **check},
                                                "deregistrationDelaySeconds": 30})
        return name

    def load_balancer(self, weights: dict[str, int]) -> dict:
        return self.client.post("/elb/load-balancers", {"name": f"lb-{uuid.uuid4().hex[:6]}", "weights": weights})

    def group(self, tag_value: str, **options) -> str:
        name = f"g-{uuid.uuid4().hex[:6]}"
        self.client.post(f"/applications/{self.app}/deployment-groups", {
            "deploymentGroupName": name, "ec2TagFilters": [{"Key": TAG, "Value": tag_value, "Type": "KEY_AND_VALUE"}],
            **options})
        return name

    def revision(self, files: dict[str, str]) -> dict:
        key = f"rev/{uuid.uuid4().hex}.tgz"
        self.cp.store.put_bytes(BUCKET, key, bundle(files))
        return {"revisionType": "S3", "s3Location": {"bucket": BUCKET, "key": key, "bundleType": "tgz"}}

    def deploy(self, group: str, files: dict[str, str], wait: bool = True, **options) -> dict:
        deployment_id = self.client.post("/deployments", {"applicationName": self.app, "deploymentGroupName": group,
                                                          "revision": self.revision(files), **options})["deploymentId"]
        return self.wait(deployment_id) if wait else {"deploymentId": deployment_id}

    def wait(self, deployment_id: str, timeout: float = 180, statuses=("Succeeded", "Failed", "Stopped")) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            doc = self.client.get(f"/deployments/{deployment_id}")
            if doc["status"] in statuses:
                return doc
            time.sleep(0.3)
        raise AssertionError(f"{deployment_id} still {doc['status']} after {timeout} s: {explain(doc)}")

    def wait_healthy(self, target_group: str, count: int, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            targets = self.client.get(f"/elb/target-groups/{target_group}/health")["targets"]
            if sum(t["state"] == "healthy" for t in targets) >= count:
                return targets
            time.sleep(0.2)
        raise AssertionError(f"{target_group}: {targets}")

    def register(self, target_group: str, instances: list[dict]) -> None:
        self.client.post(f"/elb/target-groups/{target_group}/register",
                         {"instanceIds": [i["instanceId"] for i in instances]})
        self.wait_healthy(target_group, len(instances))

    def behind_load_balancer(self, instances: list[dict], version: str) -> tuple[str, dict]:
        """`instances` serve `version`, registered in a new target group behind a new load balancer."""
        self.serve_first_version(instances, version)
        tg = self.target_group()
        lb = self.load_balancer({tg: 1})
        self.register(tg, instances)
        return tg, lb

    def behind_two_target_groups(self, instances: list[dict], version: str, **check) -> tuple[str, str, dict]:
        """`instances` serve `version` in a "blue" target group that takes all of a new load balancer's
        traffic; the "green" one, at weight 0, is where a canary's replacements go."""
        self.serve_first_version(instances, version)
        blue, green = self.target_group(**check), self.target_group(**check)
        lb = self.load_balancer({blue: 100, green: 0})
        self.register(blue, instances)
        return blue, green, lb

    def serve_first_version(self, instances: list[dict], version: str) -> None:
        """An in-place deployment without a load balancer puts a first version on `instances`."""
        group = f"seed-{uuid.uuid4().hex[:6]}"
        self.client.post(f"/applications/{self.app}/deployment-groups", {
            "deploymentGroupName": group, "deploymentConfigName": "CodeDeployDefault.AllAtOnce",
            "ec2TagFilters": [{"Key": "Name", "Value": i["name"], "Type": "KEY_AND_VALUE"} for i in instances]})
        doc = self.deploy(group, app_files(version))
        assert doc["status"] == "Succeeded", explain(doc)


def explain(doc: dict) -> str:
    lines = [f"{doc['deploymentId']} {doc['status']} {doc.get('errorInformation')} "
             f"{doc.get('deploymentStatusMessages')}"]
    for t in doc.get("targets", []):
        for e in t["lifecycleEvents"]:
            lines.append(f"  {t['name']} {t.get('instanceLabel', '')} {e['lifecycleEventName']} {e['status']} "
                         f"{(e.get('diagnostics') or {}).get('message', '')}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def traffic(control_plane, tmp_path_factory):
    previous = control_plane.client.get("/cloudwatch/settings")["timeScale"]["factor"]
    control_plane.client.post("/cloudwatch/settings", {"timeScale": SCALE})
    t = Traffic(control_plane, tmp_path_factory.mktemp("traffic"))
    yield t
    control_plane.client.post("/cloudwatch/settings", {"timeScale": previous})
    for inst in control_plane.client.get("/instances")["instances"]:
        if TAG in (inst.get("tags") or {}):
            control_plane.client.delete(f"/instances/{inst['instanceId']}")


@pytest.fixture(autouse=True)
def no_load_left_running():
    yield
    Load.stop_all()


@pytest.fixture(scope="module")
def codedeploy(control_plane):
    return boto3.client("codedeploy", endpoint_url=control_plane.settings.control_url, region_name="us-east-1",
                        aws_access_key_id="any", aws_secret_access_key="thing")


# ---------------------------------------------------------------- bad input


def _code(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_traffic_settings_refused_with_aws_error_names(traffic, codedeploy):
    app = traffic.app
    code, message = _code(lambda: codedeploy.create_deployment_group(
        applicationName=app, deploymentGroupName="no-lb", serviceRoleArn="arn:aws:iam::000000000000:role/x",
        deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"}))
    assert code == "InvalidLoadBalancerInfoException" and "loadBalancerInfo" in message
    code, message = _code(lambda: codedeploy.create_deployment_group(
        applicationName=app, deploymentGroupName="bg-no-lb", serviceRoleArn="arn:aws:iam::000000000000:role/x",
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"}))
    assert code == "InvalidDeploymentStyleException" and "WITH_TRAFFIC_CONTROL" in message
    for percent in (0, 100, 150):
        code, message = _code(lambda: codedeploy.create_deployment_config(
            deploymentConfigName=f"canary-{percent}", computePlatform="Server",
            trafficRoutingConfig={"type": "TimeBasedCanary",
                                  "timeBasedCanary": {"canaryPercentage": percent, "canaryInterval": 5}}))
        assert code == "InvalidTrafficRoutingConfigurationException" and "1 to 99" in message
    name = f"canary-20-{uuid.uuid4().hex[:6]}"
    codedeploy.create_deployment_config(deploymentConfigName=name, computePlatform="Server", trafficRoutingConfig={
        "type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 20, "canaryInterval": 5}})
    info = codedeploy.get_deployment_config(deploymentConfigName=name)["deploymentConfigInfo"]
    assert info["trafficRoutingConfig"]["timeBasedCanary"] == {"canaryPercentage": 20, "canaryInterval": 5}
    assert name in codedeploy.list_deployment_configs()["deploymentConfigsList"]
    code, _ = _code(lambda: codedeploy.create_deployment_group(
        applicationName=app, deploymentGroupName="bg-bad", serviceRoleArn="arn:aws:iam::000000000000:role/x",
        deploymentStyle=BLUE_GREEN,
        loadBalancerInfo={"targetGroupInfoList": [{"name": "x"}]},
        blueGreenDeploymentConfiguration={"terminateBlueInstancesOnDeploymentSuccess": {"action": "DESTROY"}}))
    assert code == "InvalidBlueGreenDeploymentConfigurationException"

    tg = traffic.target_group()
    codedeploy.create_deployment_group(applicationName=app, deploymentGroupName="becomes-bg",
                                       serviceRoleArn="arn:aws:iam::000000000000:role/x")
    code, _ = _code(lambda: codedeploy.update_deployment_group(
        applicationName=app, currentDeploymentGroupName="becomes-bg", deploymentStyle=BLUE_GREEN))
    assert code == "InvalidLoadBalancerInfoException"
    codedeploy.update_deployment_group(applicationName=app, currentDeploymentGroupName="becomes-bg",
                                       deploymentStyle=BLUE_GREEN,
                                       loadBalancerInfo={"targetGroupInfoList": [{"name": tg}]})
    updated = codedeploy.get_deployment_group(applicationName=app, deploymentGroupName="becomes-bg")
    assert updated["deploymentGroupInfo"]["blueGreenDeploymentConfiguration"][
        "greenFleetProvisioningOption"] == {"action": "DISCOVER_EXISTING"}
    revision = traffic.revision(app_files("x"))
    codedeploy.create_deployment_group(applicationName=app, deploymentGroupName="inplace-lb",
                                       serviceRoleArn="arn:aws:iam::000000000000:role/x",
                                       ec2TagFilters=[{"Key": TAG, "Value": "none", "Type": "KEY_AND_VALUE"}],
                                       deploymentStyle={"deploymentType": "IN_PLACE",
                                                        "deploymentOption": "WITH_TRAFFIC_CONTROL"},
                                       loadBalancerInfo={"targetGroupInfoList": [{"name": tg}]})
    code, message = _code(lambda: codedeploy.create_deployment(
        applicationName=app, deploymentGroupName="inplace-lb", revision=revision,
        deploymentConfigName="CodeDeployDefault.ECSCanary10Percent5Minutes"))
    assert code == "InvalidDeploymentConfigNameException" and "targetGroupPairInfoList" in message
    codedeploy.create_deployment_group(applicationName=app, deploymentGroupName="missing-tg",
                                       serviceRoleArn="arn:aws:iam::000000000000:role/x",
                                       deploymentStyle={"deploymentType": "IN_PLACE",
                                                        "deploymentOption": "WITH_TRAFFIC_CONTROL"},
                                       loadBalancerInfo={"targetGroupInfoList": [{"name": "no-such-tg"}]})
    code, message = _code(lambda: codedeploy.create_deployment(applicationName=app, deploymentGroupName="missing-tg",
                                                               revision=revision))
    assert code == "InvalidLoadBalancerInfoException" and "no-such-tg" in message

    codedeploy.create_deployment_group(applicationName=app, deploymentGroupName="discover",
                                       serviceRoleArn="arn:aws:iam::000000000000:role/x",
                                       ec2TagFilters=[{"Key": TAG, "Value": "none", "Type": "KEY_AND_VALUE"}],
                                       deploymentStyle={"deploymentType": "BLUE_GREEN",
                                                        "deploymentOption": "WITH_TRAFFIC_CONTROL"},
                                       loadBalancerInfo={"targetGroupInfoList": [{"name": tg}]})
    code, message = _code(lambda: codedeploy.create_deployment(applicationName=app, deploymentGroupName="discover",
                                                               revision=revision))
    assert code == "InvalidTargetInstancesException" and "targetInstances" in message
    other = traffic.target_group()
    codedeploy.create_deployment_group(applicationName=app, deploymentGroupName="too-small",
                                       serviceRoleArn="arn:aws:iam::000000000000:role/x",
                                       ec2TagFilters=[{"Key": "Environment", "Value": "demo", "Type": "KEY_AND_VALUE"}],
                                       deploymentStyle={"deploymentType": "BLUE_GREEN",
                                                        "deploymentOption": "WITH_TRAFFIC_CONTROL"},
                                       loadBalancerInfo={"targetGroupPairInfoList": [
                                           {"targetGroups": [{"name": tg}, {"name": other}]}]})
    code, message = _code(lambda: codedeploy.create_deployment(
        applicationName=app, deploymentGroupName="too-small", revision=revision,
        deploymentConfigName="CodeDeployDefault.ECSCanary10Percent5Minutes",
        targetInstances={"tagFilters": [{"Key": "Environment", "Value": "demo", "Type": "KEY_AND_VALUE"}]}))
    assert code == "InvalidTargetInstancesException" and "too small to split" in message


# ---------------------------------------------------------------- in place behind a load balancer


def test_in_place_with_a_load_balancer_takes_each_instance_out_while_it_is_deployed(traffic):
    instances = traffic.launch(2, "inplace")
    tg, lb = traffic.behind_load_balancer(instances, "1")
    group = traffic.group("inplace", deploymentConfigName="CodeDeployDefault.OneAtATime",
                          deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
                          loadBalancerInfo={"targetGroupInfoList": [{"name": tg}]})
    load = Load(lb["url"], 40, traffic.tmp)
    doc = traffic.deploy(group, app_files("2"))
    report = load.report()
    assert doc["status"] == "Succeeded", explain(doc)
    for target in doc["targets"]:
        assert [e["lifecycleEventName"] for e in target["lifecycleEvents"]] == [
            "BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic", "ApplicationStop", "DownloadBundle",
            "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService",
            "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
        assert all(e["status"] == "Succeeded" for e in target["lifecycleEvents"]), explain(doc)
    # Each server was stopped while its instance was out of the target group: nobody saw an error.
    assert report["sent"] > 30 and report["failed"] == 0, report
    assert set(report["versions"]) == {"version 1", "version 2"}, report["versions"]
    assert {t["state"] for t in traffic.wait_healthy(tg, 2)} == {"healthy"}


# ---------------------------------------------------------------- blue/green with a copied fleet


def test_blue_green_copies_the_fleet_reroutes_and_terminates_the_originals(traffic):
    originals = traffic.launch(2, "bluegreen")
    tg, lb = traffic.behind_load_balancer(originals, "1")
    group = traffic.group(
        "bluegreen", deploymentConfigName="CodeDeployDefault.AllAtOnce",
        deploymentStyle=BLUE_GREEN,
        loadBalancerInfo={"targetGroupInfoList": [{"name": tg}]},
        blueGreenDeploymentConfiguration={
            "greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"},
            "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 30},
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 1}})
    load = Load(lb["url"], 40, traffic.tmp)
    started = traffic.deploy(group, app_files("2"), wait=False)
    ready = traffic.wait(started["deploymentId"], statuses=("Ready", "Failed", "Stopped", "Succeeded"))
    assert ready["status"] == "Ready", explain(ready)
    traffic.client.post(f"/deployments/{started['deploymentId']}/continue", {"deploymentWaitType": "READY_WAIT"})
    doc = traffic.wait(started["deploymentId"])
    report = load.report()
    assert doc["status"] == "Succeeded", explain(doc)
    labels = {t["instanceId"]: t.get("instanceLabel") for t in doc["targets"]}
    original_ids = {i["instanceId"] for i in originals}
    assert {labels[i] for i in original_ids} == {"Blue"}
    replacements = [i for i, label in labels.items() if label == "Green"]
    assert len(replacements) == 2 and not original_ids & set(replacements)
    by_instance = {t["instanceId"]: [e["lifecycleEventName"] for e in t["lifecycleEvents"]] for t in doc["targets"]}
    for instance_id in original_ids:
        assert by_instance[instance_id] == ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
    for instance_id in replacements:
        assert by_instance[instance_id][-3:] == ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
        assert by_instance[instance_id][:2] == ["ApplicationStop", "DownloadBundle"]
    assert doc.get("instanceTerminationWaitTimeStarted") is True
    # Every request was answered, first by the originals, then by the replacements.
    assert report["sent"] > 30 and report["failed"] == 0, report
    assert set(report["versions"]) == {"version 1", "version 2"}, report["versions"]
    states = {i["instanceId"]: i["state"] for i in traffic.client.get("/instances", all="true")["instances"]}
    assert {states[i] for i in original_ids} == {"terminated"}
    registered = {t["instanceId"] for t in traffic.client.get(f"/elb/target-groups/{tg}/health")["targets"]
                  if t["state"] == "healthy"}
    assert registered == set(replacements)


def test_blue_green_onto_discovered_instances_waits_for_a_continue_and_keeps_the_originals(traffic):
    originals = traffic.launch(2, "discover-blue")
    replacements = traffic.launch(2, "discover-green")
    tg, lb = traffic.behind_load_balancer(originals, "1")
    group = traffic.group(
        "discover-blue", deploymentConfigName="CodeDeployDefault.OneAtATime",
        deploymentStyle=BLUE_GREEN,
        loadBalancerInfo={"targetGroupInfoList": [{"name": tg}]},
        blueGreenDeploymentConfiguration={
            "greenFleetProvisioningOption": {"action": "DISCOVER_EXISTING"},
            "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 1},
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "KEEP_ALIVE"}})
    target = {"tagFilters": [{"Key": TAG, "Value": "discover-green", "Type": "KEY_AND_VALUE"}]}
    # Nobody continues within the (emulated) minute: Stopped, and the originals never stopped serving.
    load = Load(lb["url"], 40, traffic.tmp)
    timed_out = traffic.deploy(group, app_files("2"), targetInstances=target)
    assert timed_out["status"] == "Stopped" and "wait time" in timed_out["errorInformation"]["message"], \
        explain(timed_out)
    # Continued: traffic moves to the discovered instances one at a time; the originals keep running.
    started = traffic.deploy(group, app_files("3"), wait=False, targetInstances=target)
    assert traffic.wait(started["deploymentId"], statuses=("Ready",))["status"] == "Ready"
    traffic.client.post(f"/deployments/{started['deploymentId']}/continue", {})
    doc = traffic.wait(started["deploymentId"])
    report = load.report()
    assert doc["status"] == "Succeeded", explain(doc)
    assert report["failed"] == 0 and set(report["versions"]) == {"version 1", "version 3"}, report
    green = {t["instanceId"] for t in doc["targets"] if t.get("instanceLabel") == "Green"}
    assert green == {i["instanceId"] for i in replacements}
    healthy = {t["instanceId"] for t in traffic.wait_healthy(tg, 2) if t["state"] == "healthy"}
    assert healthy == green
    states = {i["instanceId"]: i["state"] for i in traffic.client.get("/instances")["instances"]}
    assert all(states.get(i["instanceId"]) == "running" for i in originals)  # KEEP_ALIVE
    with pytest.raises(Exception) as info:
        traffic.client.post(f"/deployments/{started['deploymentId']}/continue", {})
    assert "not waiting" in str(info.value)


def test_a_replacement_that_fails_its_health_checks_behind_a_classic_load_balancer_is_rolled_back(traffic):
    originals = traffic.launch(1, "classic")
    traffic.serve_first_version(originals, "1")
    name = f"clb-{uuid.uuid4().hex[:6]}"
    lb = traffic.client.post("/elb/load-balancers", {"name": name, "classic": True})
    traffic.register(name, originals)  # a classic load balancer's instances sit in its own target group
    group = traffic.group(
        "classic", deploymentConfigName="CodeDeployDefault.AllAtOnce", deploymentStyle=BLUE_GREEN,
        loadBalancerInfo={"elbInfoList": [{"name": name}]},
        blueGreenDeploymentConfiguration={"greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"}},
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]})
    load = Load(lb["url"], 40, traffic.tmp)
    failed = traffic.deploy(group, app_files("2", broken=True))  # its pages answer 500: so does "/"
    assert failed["status"] == "Failed" and failed["errorInformation"]["code"] == "HEALTH_CONSTRAINTS", explain(failed)
    copy = next(t for t in failed["targets"] if t.get("instanceLabel") == "Green")
    allow = next(e for e in copy["lifecycleEvents"] if e["lifecycleEventName"] == "AllowTraffic")
    assert allow["status"] == "Failed" and "Target.ResponseCodeMismatch" in allow["diagnostics"]["message"], \
        explain(failed)
    rollback = traffic.wait(failed["rollbackInfo"]["rollbackDeploymentId"])
    report = load.report()
    assert rollback["status"] == "Succeeded", explain(rollback)
    assert report["failed"] == 0 and set(report["versions"]) == {"version 1"}, report
    states = {i["instanceId"]: i["state"] for i in traffic.client.get("/instances", all="true")["instances"]}
    assert states[copy["instanceId"]] == "terminated"
    assert [t["instanceId"] for t in traffic.client.get(f"/elb/target-groups/{name}/health")["targets"]] == [
        originals[0]["instanceId"]]


def test_the_next_release_starts_from_the_environment_the_last_one_moved_traffic_to(traffic):
    originals = traffic.launch(2, "second")
    tg, lb = traffic.behind_load_balancer(originals, "1")
    group = traffic.group(
        "second", deploymentConfigName="CodeDeployDefault.HalfAtATime", deploymentStyle=BLUE_GREEN,
        loadBalancerInfo={"targetGroupInfoList": [{"name": tg}]},
        blueGreenDeploymentConfiguration={"greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"},
                                          "terminateBlueInstancesOnDeploymentSuccess": {"action": "KEEP_ALIVE"}})
    load = Load(lb["url"], 40, traffic.tmp)
    first = traffic.deploy(group, app_files("2"))
    second = traffic.deploy(group, app_files("3"))
    report = load.report()
    assert first["status"] == "Succeeded" and second["status"] == "Succeeded", explain(first) + explain(second)
    side = lambda doc, label: {t["instanceId"] for t in doc["targets"] if t.get("instanceLabel") == label}  # noqa: E731
    # The kept-alive originals still carry the group's tags, but traffic left them: they are not the next "blue".
    assert side(second, "Blue") == side(first, "Green") and not side(second, "Blue") & {i["instanceId"] for i in originals}
    assert report["failed"] == 0 and set(report["versions"]) == {"version 1", "version 2", "version 3"}, report
    targets = traffic.client.get(f"/elb/target-groups/{tg}/health")["targets"]
    assert {t["instanceId"] for t in targets if t["state"] == "healthy"} == side(second, "Green")
    assert {t["state"] for t in targets if t["instanceId"] not in side(second, "Green")} <= {"draining"}


# ---------------------------------------------------------------- canary between two target groups


def test_canary_completes_and_a_bad_canary_is_aborted_by_an_alarm(traffic, cloudwatch):
    originals = traffic.launch(2, "canary")
    blue, green, lb = traffic.behind_two_target_groups(originals, "1", path="/health.txt")
    alarm = f"canary-5xx-{uuid.uuid4().hex[:6]}"
    lb_dimension = lb["loadBalancerArn"].split(":loadbalancer/", 1)[1]
    cloudwatch.put_metric_alarm(AlarmName=alarm, Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count",
                                Dimensions=[{"Name": "LoadBalancer", "Value": lb_dimension}], Statistic="Sum",
                                Period=60, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
                                TreatMissingData="notBreaching")
    group = traffic.group(
        "canary", deploymentConfigName="CodeDeployDefault.ECSCanary10Percent5Minutes",
        deploymentStyle=BLUE_GREEN,
        loadBalancerInfo={"targetGroupPairInfoList": [{"targetGroups": [{"name": blue}, {"name": green}]}]},
        blueGreenDeploymentConfiguration={"greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"},
                                          "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE"}},
        alarmConfiguration={"enabled": True, "alarms": [{"name": alarm}]},
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_FAILURE"]})

    # A good canary: 10 % for five (emulated) minutes, then the rest; nobody sees an error.
    load = Load(lb["url"], 40, traffic.tmp)
    good = traffic.deploy(group, app_files("2"))
    report = load.report()
    assert good["status"] == "Succeeded", explain(good)
    assert any("10% of traffic" in m for m in good["deploymentStatusMessages"]), good["deploymentStatusMessages"]
    assert report["sent"] > 30 and report["failed"] == 0, report
    assert set(report["versions"]) == {"version 1", "version 2"}, report["versions"]
    assert traffic.client.get(f"/elb/load-balancers/{lb['loadBalancerName']}")["weights"] == {blue: 0, green: 100}

    # A bad canary: its 10 % answer 500, the alarm fires, traffic goes back to version 2.
    load = Load(lb["url"], 40, traffic.tmp)
    bad = traffic.deploy(group, app_files("3", broken=True))
    rollback_id = (bad.get("rollbackInfo") or {}).get("rollbackDeploymentId")
    assert bad["status"] == "Stopped" and bad["errorInformation"]["code"] == "ALARM_ACTIVE", explain(bad)
    assert rollback_id, explain(bad)
    rollback = traffic.wait(rollback_id)
    assert rollback["status"] == "Succeeded" and rollback["creator"] == "codeDeployRollback", explain(rollback)
    during = load.report()
    assert during["statuses"].get("500", 0) > 0, during  # the canary really took traffic
    assert traffic.client.get(f"/elb/load-balancers/{lb['loadBalancerName']}")["weights"] == {blue: 0, green: 100}
    after = Load(lb["url"], 40, traffic.tmp)
    time.sleep(3)
    settled = after.report()
    assert settled["sent"] > 50 and settled["failed"] == 0, settled
    assert set(settled["versions"]) == {"version 2"}, settled["versions"]
    cloudwatch.delete_alarms(AlarmNames=[alarm])


def test_a_linear_release_stopped_by_request_shifts_back_and_rolls_back(traffic, codedeploy):
    originals = traffic.launch(1, "linear")
    blue, green, lb = traffic.behind_two_target_groups(originals, "1")
    config = f"linear-20-{uuid.uuid4().hex[:6]}"
    codedeploy.create_deployment_config(deploymentConfigName=config, computePlatform="Server", trafficRoutingConfig={
        "type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": 20, "linearInterval": 1}})
    group = traffic.group(
        "linear", deploymentConfigName=config, deploymentStyle=BLUE_GREEN,
        loadBalancerInfo={"targetGroupPairInfoList": [{"targetGroups": [{"name": blue}, {"name": green}]}]},
        blueGreenDeploymentConfiguration={"greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"}})
    load = Load(lb["url"], 40, traffic.tmp)
    started = traffic.deploy(group, app_files("2"), wait=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # 20 %, then 40 %, one emulated minute (1 s) apart
        messages = traffic.client.get(f"/deployments/{started['deploymentId']}").get("deploymentStatusMessages") or []
        if any("40% of traffic" in m for m in messages):
            break
        time.sleep(0.1)
    assert any("20% of traffic" in m for m in messages) and any("40% of traffic" in m for m in messages), \
        explain(traffic.client.get(f"/deployments/{started['deploymentId']}"))
    codedeploy.stop_deployment(deploymentId=started["deploymentId"], autoRollbackEnabled=True)
    stopped = traffic.wait(started["deploymentId"])
    assert stopped["status"] == "Stopped" and stopped["errorInformation"]["code"] == "DEPLOYMENT_STOPPED", \
        explain(stopped)
    rollback = traffic.wait(stopped["rollbackInfo"]["rollbackDeploymentId"])
    report = load.report()
    assert rollback["status"] == "Succeeded", explain(rollback)
    assert traffic.client.get(f"/elb/load-balancers/{lb['loadBalancerName']}")["weights"] == {blue: 100, green: 0}
    assert report["failed"] == 0 and set(report["versions"]) == {"version 1", "version 2"}, report
    copies = [t["instanceId"] for t in stopped["targets"] if t.get("instanceLabel") == "Green"]
    states = {i["instanceId"]: i["state"] for i in traffic.client.get("/instances", all="true")["instances"]}
    assert copies and all(states[i] == "terminated" for i in copies)
    info = codedeploy.get_deployment(deploymentId=rollback["deploymentId"])["deploymentInfo"]
    assert info["creator"] == "codeDeployRollback"
    assert info["rollbackInfo"]["rollbackTriggeringDeploymentId"] == started["deploymentId"]


# ---------------------------------------------------------------- the ELBv2 API (query protocol)


def test_elbv2_api_drives_the_load_balancer_with_boto3_and_the_aws_cli(traffic, control_plane):
    import urllib.request

    elbv2 = boto3.client("elbv2", endpoint_url=control_plane.settings.control_url, region_name="us-east-1",
                         aws_access_key_id="any", aws_secret_access_key="thing")
    instances = traffic.launch(1, "elbv2")
    traffic.serve_first_version(instances, "api")
    name = f"api-{uuid.uuid4().hex[:6]}"
    group = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId="vpc-1", HealthCheckPath="/",
                                      HealthCheckIntervalSeconds=10, HealthyThresholdCount=2,
                                      Matcher={"HttpCode": "200"})["TargetGroups"][0]
    assert group["TargetGroupName"] == name and group["HealthCheckIntervalSeconds"] == 10
    arn = group["TargetGroupArn"]
    assert arn.startswith("arn:aws:elasticloadbalancing:us-east-1:") and f":targetgroup/{name}/" in arn
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": instances[0]["instanceId"], "Port": 80}])
    balancer = elbv2.create_load_balancer(Name=name, Subnets=["subnet-1"], Type="application")["LoadBalancers"][0]
    listener = elbv2.create_listener(LoadBalancerArn=balancer["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                     DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}])["Listeners"][0]
    dns = elbv2.describe_load_balancers(Names=[name])["LoadBalancers"][0]["DNSName"]
    waiter_deadline = time.monotonic() + 30
    while time.monotonic() < waiter_deadline:
        health = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        if health and health[0]["TargetHealth"]["State"] == "healthy":
            break
        time.sleep(0.2)
    assert health[0]["Target"]["Id"] == instances[0]["instanceId"] and health[0]["TargetHealth"]["State"] == "healthy"
    with urllib.request.urlopen(f"http://{dns}/", timeout=10) as answer:
        assert answer.read().decode().strip() == "version api"
    # Weights through ModifyListener, read back through DescribeListeners.
    other = elbv2.create_target_group(Name=f"{name}-b", Protocol="HTTP", Port=80, VpcId="vpc-1")["TargetGroups"][0]
    elbv2.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=[{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": arn, "Weight": 90}, {"TargetGroupArn": other["TargetGroupArn"],
                                                                "Weight": 10}]}}])
    described = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"][0]
    weights = {g["TargetGroupArn"]: g["Weight"] for g in described["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]}
    assert weights == {arn: 90, other["TargetGroupArn"]: 10}
    # AWS's error names, through the SDK's own exception classes.
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.describe_target_groups(Names=["no-such-group"])
    again = elbv2.create_load_balancer(Name=name, Subnets=["subnet-1"])["LoadBalancers"][0]  # idempotent, as AWS
    assert again["LoadBalancerArn"] == balancer["LoadBalancerArn"]
    with pytest.raises(elbv2.exceptions.TooManyListenersException):
        elbv2.create_listener(LoadBalancerArn=balancer["LoadBalancerArn"], Protocol="HTTP", Port=81,
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}])
    with pytest.raises(elbv2.exceptions.ResourceInUseException):
        elbv2.delete_target_group(TargetGroupArn=arn)
    # The aws CLI reads the same state.
    out = subprocess.run([str(Path(sys.executable).with_name("aws")), "elbv2", "describe-target-groups",
                          "--names", name, "--endpoint-url", control_plane.settings.control_url,
                          "--region", "us-east-1", "--output", "json"],
                         env={"AWS_ACCESS_KEY_ID": "any", "AWS_SECRET_ACCESS_KEY": "thing", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["TargetGroups"][0]["TargetGroupArn"] == arn
    elbv2.delete_listener(ListenerArn=listener["ListenerArn"])
    elbv2.delete_load_balancer(LoadBalancerArn=balancer["LoadBalancerArn"])
    elbv2.delete_target_group(TargetGroupArn=other["TargetGroupArn"])
    assert name not in {b["LoadBalancerName"] for b in elbv2.describe_load_balancers()["LoadBalancers"]}


# ---------------------------------------------------------------- a restart in the middle of a canary


def test_a_restart_during_a_canary_sends_all_traffic_back(traffic, control_plane):
    originals = traffic.launch(1, "restart")
    blue, green, lb = traffic.behind_two_target_groups(originals, "1")
    group = traffic.group(
        "restart", deploymentConfigName="CodeDeployDefault.ECSCanary10Percent15Minutes", deploymentStyle=BLUE_GREEN,
        loadBalancerInfo={"targetGroupPairInfoList": [{"targetGroups": [{"name": blue}, {"name": green}]}]},
        blueGreenDeploymentConfiguration={"greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"}})
    started = traffic.deploy(group, app_files("2"), wait=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        doc = traffic.client.get(f"/deployments/{started['deploymentId']}")
        if any("10% of traffic" in m for m in doc.get("deploymentStatusMessages") or []):
            break
        time.sleep(0.2)
    assert traffic.client.get(f"/elb/load-balancers/{lb['loadBalancerName']}")["weights"] == {blue: 90, green: 10}
    control_plane.restart()
    traffic.client.post("/cloudwatch/settings", {"timeScale": SCALE})
    doc = traffic.client.get(f"/deployments/{started['deploymentId']}")
    assert doc["status"] == "Failed" and "interrupted" in doc["errorInformation"]["message"], explain(doc)
    assert traffic.client.get(f"/elb/load-balancers/{lb['loadBalancerName']}")["weights"] == {blue: 100, green: 0}
    settled = Load(lb["url"], 20, traffic.tmp)
    time.sleep(2)
    report = settled.report()
    assert report["failed"] == 0 and set(report["versions"]) == {"version 1"}, report
