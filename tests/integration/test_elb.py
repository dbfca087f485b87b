"""The load balancer stand-in on real agent containers: two instances serve `python3 -m
http.server` (started by a deployment's ApplicationStart hook), a real listener proxies to them,
and a `pipelocal load` process measures what answered while targets drain and fail."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest

from emulator.runtime.docker_engine import DockerEngine
from tests.integration.test_codedeploy_conformance import bundle, script

pytestmark = pytest.mark.integration

BUCKET = "elb-test"
TAG = "ElbTest"
PIPELOCAL = str(Path(sys.executable).with_name("pipelocal"))
TIME_SCALE = 10  # 5 s health check interval = 0.5 s real
FAST = {"intervalSeconds": 5, "timeoutSeconds": 2, "healthyThresholdCount": 2, "unhealthyThresholdCount": 2}
START = script(
    "mkdir -p /srv/elb",
    'echo "<p>version $(hostname)</p>" > /srv/elb/index.html',
    "if [ -f /run/elb-www.pid ]; then kill \"$(cat /run/elb-www.pid)\" 2>/dev/null || true; sleep 0.2; fi",
    "cd /srv/elb",
    "nohup python3 -m http.server 80 >/dev/null 2>&1 &",
    "echo $! > /run/elb-www.pid",
    "for _ in $(seq 50); do python3 -c \"import urllib.request as u; u.urlopen('http://127.0.0.1/')\" 2>/dev/null"
    " && exit 0; sleep 0.1; done",
    "exit 1",
)


def wait_for(probe, ok, timeout: float = 20, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value!r} after {timeout} s")
        time.sleep(0.1)


def get(url: str) -> tuple[int, str | None, str | None, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return (r.status, r.headers.get("X-Pipelocal-Target-Group"), r.headers.get("X-Pipelocal-Target"),
                    r.read().decode())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-Pipelocal-Target-Group"), exc.headers.get("X-Pipelocal-Target"), ""


@pytest.fixture(scope="module")
def served(control_plane):
    """Two instances of our own serving "version <hostname>" on port 80, at time scale 10."""
    cp = control_plane
    cp.store.ensure_bucket(BUCKET)
    launched = cp.client.post("/instances", {"count": 2, "tags": {TAG: "yes"}, "namePrefix": "elb"})["instances"]
    app = f"elb-{uuid.uuid4().hex[:6]}"
    cp.client.post("/applications", {"applicationName": app})
    cp.client.post(f"/applications/{app}/deployment-groups", {
        "deploymentGroupName": "web", "deploymentConfigName": "CodeDeployDefault.AllAtOnce",
        "ec2TagFilters": [{"Key": TAG, "Type": "KEY_ONLY"}]})
    wait_for(lambda: [cp.client.get(f"/instances/{i['instanceId']}").get("agentRegistered") for i in launched],
             all, 60, "agents registered")
    key = f"rev/{uuid.uuid4().hex}.tgz"
    cp.store.put_bytes(BUCKET, key, bundle({
        "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: start.sh\n",
        "start.sh": START}))
    deployment = cp.client.post("/deployments", {"applicationName": app, "deploymentGroupName": "web", "revision": {
        "revisionType": "S3", "s3Location": {"bucket": BUCKET, "key": key, "bundleType": "tgz"}}})["deploymentId"]
    done = wait_for(lambda: cp.client.get(f"/deployments/{deployment}"),
                    lambda d: d["status"] in ("Succeeded", "Failed", "Stopped"), 120, "deployment")
    assert done["status"] == "Succeeded", done
    before = cp.client.get("/cloudwatch/settings")["timeScale"]["factor"]
    cp.client.post("/cloudwatch/settings", {"timeScale": TIME_SCALE})
    instances = [cp.client.get(f"/instances/{i['instanceId']}") for i in launched]
    yield {"cp": cp, "a": instances[0], "b": instances[1]}
    cp.client.post("/cloudwatch/settings", {"timeScale": before})
    for lb in {"rr", "split"} & {b["loadBalancerName"] for b in cp.client.get("/elb/load-balancers")["loadBalancers"]}:
        cp.client.delete(f"/elb/load-balancers/{lb}")
    for tg in {"both", "only-a", "only-b"} & {g["targetGroupName"] for g in
                                             cp.client.get("/elb/target-groups")["targetGroups"]}:
        cp.client.delete(f"/elb/target-groups/{tg}")
    for inst in launched:
        cp.client.delete(f"/instances/{inst['instanceId']}")


def healthy(cp, group: str, count: int) -> None:
    wait_for(lambda: [t["state"] for t in cp.client.get(f"/elb/target-groups/{group}/health")["targets"]],
             lambda states: states.count("healthy") == count, 20, f"{count} healthy in {group}")


def test_round_robin_weights_and_cli(served):
    cp, a, b = served["cp"], served["a"], served["b"]
    cp.client.post("/elb/target-groups", {"name": "both", "healthCheck": FAST, "deregistrationDelaySeconds": 5})
    both = cp.client.post("/elb/load-balancers", {"name": "rr", "targetGroups": ["both"]})
    assert both["loadBalancerArn"].startswith("arn:aws:elasticloadbalancing:us-east-1:")
    assert ":loadbalancer/app/rr/" in both["loadBalancerArn"]
    port = int(os.environ.get("PIPELOCAL_TEST_PORT", "4850"))
    assert port + 20 <= both["port"] < port + 70 and both["url"] == f"http://127.0.0.1:{both['port']}/"
    cp.client.post("/elb/target-groups/both/register", {"instanceIds": [a["instanceId"], b["name"]]})
    healthy(cp, "both", 2)
    answers = [get(both["url"]) for _ in range(20)]
    assert {status for status, *_ in answers} == {200}
    assert Counter(target for _, _, target, _ in answers) == {a["instanceId"]: 10, b["instanceId"]: 10}
    assert {body.strip() for *_, body in answers} == {f"<p>version {a['name']}</p>", f"<p>version {b['name']}</p>"}

    for name, inst in (("only-a", a), ("only-b", b)):
        cp.client.post("/elb/target-groups", {"name": name, "healthCheck": FAST, "deregistrationDelaySeconds": 5})
    split = cp.client.post("/elb/load-balancers", {"name": "split", "weights": {"only-a": 100, "only-b": 0}})
    cp.client.post("/elb/target-groups/only-a/register", {"instanceIds": [a["instanceId"]]})
    cp.client.post("/elb/target-groups/only-b/register", {"instanceIds": [b["instanceId"]]})
    healthy(cp, "only-a", 1)
    healthy(cp, "only-b", 1)  # weight 0 is still forwarded to, so its targets are checked
    assert Counter(get(split["url"])[1] for _ in range(20)) == {"only-a": 20}

    env = {**cp.env, "PIPELOCAL_HOME": str(cp.settings.home)}
    shown = subprocess.run([PIPELOCAL, "lb", "set-weights", "split", "only-a=50", "only-b=50"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "only-a 50 (50%)" in shown.stdout and split["url"] in shown.stdout
    groups = Counter(get(split["url"])[1] for _ in range(40))
    assert 15 <= groups["only-a"] <= 25 and groups["only-a"] + groups["only-b"] == 40, groups

    refused = subprocess.run([PIPELOCAL, "lb", "set-weights", "split", "only-a=1000"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 1 and "0 to 999" in refused.stdout


def test_draining_and_a_stopped_server_lose_no_requests(served, tmp_path):
    cp, a, b = served["cp"], served["a"], served["b"]
    url = cp.client.get("/elb/load-balancers/rr")["url"]
    report_path = tmp_path / "load.json"
    load = subprocess.Popen([PIPELOCAL, "load", url, "--rate", "50", "--duration", "120", "--json", str(report_path)],
                            env=cp.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.5)
        drained = cp.client.post("/elb/target-groups/both/deregister", {"instanceIds": [b["instanceId"]]})
        assert [t["state"] for t in drained["targets"] if t["instanceId"] == b["instanceId"]] == ["draining"]
        wait_for(lambda: [t["instanceId"] for t in cp.client.get("/elb/target-groups/both/health")["targets"]],
                 lambda ids: ids == [a["instanceId"]], 10, "the drained target removed")
        engine = DockerEngine(installation=str(cp.settings.home))
        assert engine.exec(b["containerName"], ["sh", "-c", "kill $(cat /run/elb-www.pid)"]) == 0
        time.sleep(0.5)
        cp.client.post("/elb/target-groups/both/register", {"instanceIds": [b["instanceId"]]})
        unhealthy = wait_for(lambda: {t["instanceId"]: t for t in cp.client.get(
            "/elb/target-groups/both/health")["targets"]}[b["instanceId"]], lambda t: t["state"] == "unhealthy", 20,
            "the stopped server's target unhealthy")
        assert unhealthy["reason"] in ("Target.FailedHealthChecks", "Target.Timeout"), unhealthy
        time.sleep(1.0)  # load keeps running while the unhealthy target is left out
    finally:
        load.send_signal(signal.SIGTERM)
        output = load.communicate(timeout=30)[0]
    assert load.returncode == 0, output
    report = json.loads(report_path.read_text())
    assert report["stoppedBy"] == "signal"
    assert report["sent"] >= 150 and report["failed"] == 0, output
    assert report["answered2xx"] == report["sent"], output
    assert set(report["targets"]) == {a["instanceId"], b["instanceId"]}  # b answered before it was drained
    assert report["versions"] == {f"version {a['name']}": report["targets"][a["instanceId"]],
                                  f"version {b['name']}": report["targets"][b["instanceId"]]}
    assert report["targets"][a["instanceId"]] > report["targets"][b["instanceId"]]


def test_metrics_reach_cloudwatch(served, cloudwatch):
    cp = served["cp"]
    lb = cp.client.get("/elb/load-balancers/rr")
    tg = cp.client.get("/elb/target-groups/both")
    lb_dim = {"Name": "LoadBalancer", "Value": lb["loadBalancerArn"].split(":loadbalancer/")[1]}
    tg_dim = {"Name": "TargetGroup", "Value": tg["targetGroupArn"].split(":", 5)[5]}
    names = wait_for(lambda: {m["MetricName"] for m in cloudwatch.list_metrics(
        Namespace="AWS/ApplicationELB", Dimensions=[lb_dim, tg_dim])["Metrics"]},
        lambda found: {"RequestCount", "HTTPCode_Target_2XX_Count", "TargetResponseTime", "HealthyHostCount",
                       "UnHealthyHostCount"} <= found, 20, "per target group metrics")
    assert "HTTPCode_Target_5XX_Count" not in names  # counts are published only when non-zero, as AWS does
    now = time.time()
    window = dict(StartTime=now - 3600, EndTime=now + 60, Period=60)
    wait_for(lambda: sum(p["Sum"] for p in cloudwatch.get_metric_statistics(
        Namespace="AWS/ApplicationELB", MetricName="RequestCount", Dimensions=[lb_dim], Statistics=["Sum"],
        **window)["Datapoints"]), lambda total: total >= 170, 10, "requests counted")  # 20 round robin + the load run
    unhealthy = cloudwatch.get_metric_statistics(Namespace="AWS/ApplicationELB", MetricName="UnHealthyHostCount",
                                                 Dimensions=[lb_dim, tg_dim], Statistics=["Maximum"],
                                                 **window)["Datapoints"]
    assert max(p["Maximum"] for p in unhealthy) == 1
    latency = cloudwatch.get_metric_statistics(Namespace="AWS/ApplicationELB", MetricName="TargetResponseTime",
                                               Dimensions=[lb_dim], ExtendedStatistics=["p99"], **window)["Datapoints"]
    assert latency and all(0 < p["ExtendedStatistics"]["p99"] < 5 for p in latency)


def test_a_restart_keeps_load_balancers_ports_weights_and_registrations(served):
    cp, a, b = served["cp"], served["a"], served["b"]
    before = cp.client.get("/elb/load-balancers/split")
    cp.restart()
    after = cp.client.get("/elb/load-balancers/split")
    assert (after["port"], after["weights"], after["loadBalancerArn"]) == (
        before["port"], {"only-a": 50, "only-b": 50}, before["loadBalancerArn"])  # the port was freed and bound again
    assert [[t["instanceId"] for t in g["targets"]] for g in after["targetGroups"]] == [[a["instanceId"]],
                                                                                       [b["instanceId"]]]
    assert cp.client.get("/elb/target-groups/both")["healthCheck"] == {**FAST, "path": "/", "matcher": "200"}
    cp.client.post("/cloudwatch/settings", {"timeScale": TIME_SCALE})
    healthy(cp, "only-a", 1)
    answers = Counter(get(after["url"])[:2] for _ in range(10))
    assert answers[(200, "only-a")] == 5, answers  # b's server was stopped: only-b answers 502 or fails open
