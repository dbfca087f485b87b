"""CloudWatch on a real control plane: the API through boto3 and the aws CLI (also from inside an
instance), and end to end on real agent containers: a bad release that answers 500 is stopped by
the group's alarm, rolled back, and the previous index.html is served again."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration
AWS = str(Path(sys.executable).with_name("aws"))
BUCKET = "cw-alarms"
TAG = "CwAlarms"


@pytest.fixture(scope="module")
def compressed_time(control_plane):
    """One emulated minute per real second for this module; the control plane's settings come back after."""
    before = control_plane.client.get("/cloudwatch/settings")
    control_plane.client.post("/cloudwatch/settings", {"timeScale": 60, "deployBakeSeconds": 600})
    yield
    control_plane.client.post("/cloudwatch/settings", {"timeScale": before["timeScale"]["factor"],
                                                      "deployBakeSeconds": before["deployBakeSeconds"]})


def test_metrics_and_alarms_through_boto3(cloudwatch, compressed_time):
    ns = f"Test/{uuid.uuid4().hex[:6]}"
    now = time.time()
    cloudwatch.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}], "Values": [1, 2, 3, 100],
         "Unit": "Milliseconds", "Timestamp": now - 0.5},
        {"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}],
         "StatisticValues": {"SampleCount": 2, "Sum": 10, "Minimum": 4, "Maximum": 6}, "Timestamp": now - 0.5},
        {"MetricName": "Errors", "Value": 1},
    ])
    metrics = cloudwatch.list_metrics(Namespace=ns)["Metrics"]
    assert sorted(m["MetricName"] for m in metrics) == ["Errors", "Latency"]
    stats = cloudwatch.get_metric_statistics(
        Namespace=ns, MetricName="Latency", Dimensions=[{"Name": "Host", "Value": "a"}], StartTime=now - 60,
        EndTime=now + 60, Period=60, Statistics=["SampleCount", "Sum", "Maximum"], ExtendedStatistics=["p50"])
    assert sum(p["SampleCount"] for p in stats["Datapoints"]) == 6
    assert sum(p["Sum"] for p in stats["Datapoints"]) == 116
    data = cloudwatch.get_metric_data(StartTime=now - 60, EndTime=now + 60, MetricDataQueries=[
        {"Id": "m1", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Latency",
                                               "Dimensions": [{"Name": "Host", "Value": "a"}]},
                                    "Period": 60, "Stat": "Maximum"}}])["MetricDataResults"][0]
    assert max(data["Values"]) == 100 and data["StatusCode"] == "Complete"

    with pytest.raises(ClientError) as err:
        cloudwatch.put_metric_data(Namespace="AWS/EC2", MetricData=[{"MetricName": "x", "Value": 1}])
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
    base = {"MetricName": "Errors", "Namespace": ns, "Statistic": "Sum", "Threshold": 0.0,
            "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"}
    for bad, code in (({"Period": 45, "EvaluationPeriods": 1}, "InvalidParameterValue"),
                      ({"Period": 60, "EvaluationPeriods": 2, "DatapointsToAlarm": 3}, "InvalidParameterCombination"),
                      ({"Period": 3600, "EvaluationPeriods": 25}, "InvalidParameterCombination")):
        with pytest.raises(ClientError) as err:
            cloudwatch.put_metric_alarm(AlarmName=f"{ns}-bad", **base, **bad)
        assert err.value.response["Error"]["Code"] == code, bad

    name = f"{ns}-errors"
    cloudwatch.put_metric_alarm(AlarmName=name, Period=60, EvaluationPeriods=1, **base)
    alarm = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    assert alarm["StateValue"] in ("INSUFFICIENT_DATA", "OK", "ALARM")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="checking the history")
    history = cloudwatch.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]
    assert any(h["HistoryItemType"] == "ConfigurationUpdate" for h in history)
    assert any("to ALARM" in h["HistorySummary"] and "checking the history" in h["HistoryData"] for h in history)
    with pytest.raises(ClientError) as err:
        cloudwatch.set_alarm_state(AlarmName=f"{ns}-none", StateValue="OK", StateReason="x")
    assert err.value.response["Error"]["Code"] == "ResourceNotFound"
    cloudwatch.delete_alarms(AlarmNames=[name])
    assert cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []


def test_aws_cli_on_the_host_and_inside_an_instance(control_plane, cloudwatch):
    ns = f"Cli/{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "AWS_ENDPOINT_URL": control_plane.settings.control_url, "AWS_ACCESS_KEY_ID": "any",
           "AWS_SECRET_ACCESS_KEY": "thing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": ""}
    done = subprocess.run([AWS, "cloudwatch", "put-metric-data", "--namespace", ns, "--metric-name", "Host",
                           "--value", "3"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    refused = subprocess.run([AWS, "cloudwatch", "put-metric-data", "--namespace", "AWS/Nope", "--metric-name",
                              "x", "--value", "1"], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "InvalidParameterValue" in refused.stderr
    container = control_plane.client.get("/instances")["instances"][0]["containerName"]
    inside = subprocess.run(["docker", "exec", container, "aws", "cloudwatch", "put-metric-data", "--namespace", ns,
                             "--metric-name", "Hook", "--value", "7", "--dimensions", "Stage=AfterInstall"],
                            capture_output=True, text=True, timeout=60)
    assert inside.returncode == 0, inside.stderr
    names = {m["MetricName"]: m["Dimensions"] for m in cloudwatch.list_metrics(Namespace=ns)["Metrics"]}
    assert names == {"Host": [], "Hook": [{"Name": "Stage", "Value": "AfterInstall"}]}


# ---------------------------------------------------------------- the bad release, end to end

GOOD_PAGE = "<html><head><title>good release v1</title></head><body>v1</body></html>\n"
START = """#!/bin/bash
set -e
mkdir -p /var/www/html
nohup python3 /opt/cwapp/server.py >/var/log/webserver.log 2>&1 &
echo $! > /var/run/webserver.pid
for _ in $(seq 50); do
  python3 -c "import urllib.request as u, urllib.error as e
try: u.urlopen('http://127.0.0.1/')
except e.HTTPError: pass" 2>/dev/null && exit 0
  sleep 0.1
done
exit 1
"""
STOP = """#!/bin/bash
if [ -f /var/run/webserver.pid ]; then kill "$(cat /var/run/webserver.pid)" 2>/dev/null || true; fi
for _ in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1', 80), 0.2)" 2>/dev/null || exit 0; sleep 0.1; done
"""
GOOD_SERVER = "import functools, http.server\n" \
              "h = functools.partial(http.server.SimpleHTTPRequestHandler, directory='/var/www/html')\n" \
              "http.server.ThreadingHTTPServer(('', 80), h).serve_forever()\n"
BAD_SERVER = """import http.server
class Broken(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500)
        self.end_headers()
        self.wfile.write(b"release v2 is broken")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", 80), Broken).serve_forever()
"""
APPSPEC = """version: 0.0
os: linux
files:
  - source: site/index.html
    destination: /var/www/html/
  - source: server.py
    destination: /opt/cwapp/
file_exists_behavior: OVERWRITE
hooks:
  ApplicationStop:
    - location: stop.sh
  ApplicationStart:
    - location: start.sh
"""


def bundle(page: str, server: str) -> bytes:
    files = {"appspec.yml": APPSPEC, "site/index.html": page, "server.py": server, "start.sh": START, "stop.sh": STOP}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            data = text.encode()
            info.size, info.mode = len(data), 0o755 if name.endswith(".sh") else 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def fleet(control_plane):
    cp = control_plane
    cp.store.ensure_bucket(BUCKET)
    launched = cp.client.post("/instances", {"count": 2, "tags": {TAG: "yes"}})["instances"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(
            cp.client.get(f"/instances/{i['instanceId']}").get("agentRegistered") for i in launched):
        time.sleep(0.3)
    yield launched
    for inst in launched:
        cp.client.delete(f"/instances/{inst['instanceId']}")


def wait_for(get, done, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = get()
        if done(value):
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} not reached in {timeout} s; last: {json.dumps(value, default=str)[:2000]}")


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_bad_release_is_stopped_by_the_alarm_and_the_previous_page_is_served_again(
        control_plane, cloudwatch, compressed_time, fleet):
    cp = control_plane
    app = f"cw-{uuid.uuid4().hex[:6]}"
    group = f"{app}-web"
    alarm = f"{app}-5xx"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm, Namespace="Pipelocal/App", MetricName="HTTPCode_Target_5XX_Count",
        Dimensions=[{"Name": "DeploymentGroupName", "Value": group}], Statistic="Sum", Period=60,
        EvaluationPeriods=3, DatapointsToAlarm=2, Threshold=0, ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching")
    cp.client.post("/applications", {"applicationName": app})
    cp.client.post(f"/applications/{app}/deployment-groups", {
        "deploymentGroupName": group, "deploymentConfigName": "CodeDeployDefault.AllAtOnce",
        "ec2TagFilters": [{"Key": TAG, "Type": "KEY_ONLY"}],
        "alarmConfiguration": {"enabled": True, "alarms": [{"name": alarm}]},
        "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]}})

    def deploy(page: str, server: str) -> str:
        key = f"rev/{uuid.uuid4().hex}.tgz"
        cp.store.put_bytes(BUCKET, key, bundle(page, server))
        return cp.client.post("/deployments", {"applicationName": app, "deploymentGroupName": group, "revision": {
            "revisionType": "S3", "s3Location": {"bucket": BUCKET, "key": key, "bundleType": "tgz"}}})["deploymentId"]

    def finished(deployment_id: str) -> dict:
        return wait_for(lambda: cp.client.get(f"/deployments/{deployment_id}"),
                        lambda d: d["status"] in ("Succeeded", "Failed", "Stopped"), what=f"{deployment_id} ends")

    good = finished(deploy(GOOD_PAGE, GOOD_SERVER))
    assert good["status"] == "Succeeded", good
    urls = [cp.client.get(f"/instances/{i['instanceId']}")["appUrl"] for i in fleet]
    assert all(fetch(u) == (200, GOOD_PAGE) for u in urls)
    wait_for(lambda: cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"],
             lambda s: s == "OK", timeout=30, what="alarm OK on the good release")
    first = fleet[0]["instanceId"]
    per_instance = wait_for(lambda: {m["MetricName"] for m in cloudwatch.list_metrics(
        Namespace="Pipelocal/App", Dimensions=[{"Name": "InstanceId", "Value": first}])["Metrics"]},
        lambda names: {"RequestCount", "HTTPCode_Target_5XX_Count", "ErrorRate", "TargetResponseTime"} <= names,
        timeout=30, what="fleet metrics per instance")
    assert "TargetResponseTime" in per_instance
    latency = cloudwatch.get_metric_statistics(
        Namespace="Pipelocal/App", MetricName="TargetResponseTime", Dimensions=[{"Name": "DeploymentGroupName",
                                                                                 "Value": group}],
        StartTime=time.time() - 30, EndTime=time.time(), Period=60, Statistics=["Average"],
        ExtendedStatistics=["p99"])["Datapoints"]
    assert latency and all(0 < p["Average"] < 5 and 0 < p["ExtendedStatistics"]["p99"] < 5 for p in latency)
    assert cloudwatch.list_metrics(Namespace="CWAgent", MetricName="mem_used_percent",
                                   Dimensions=[{"Name": "InstanceId", "Value": first}])["Metrics"]

    bad = finished(deploy("<html><head><title>bad release v2</title></head></html>\n", BAD_SERVER))
    assert bad["status"] == "Stopped", bad
    assert bad["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert alarm in bad["errorInformation"]["message"]
    rollback = finished(bad["rollbackInfo"]["rollbackDeploymentId"])
    assert rollback["status"] == "Succeeded", rollback
    assert rollback["revision"] == good["revision"]
    assert all(fetch(u) == (200, GOOD_PAGE) for u in urls)

    report = cp.client.get(f"/cloudwatch/why-rollback/{rollback['deploymentId']}")
    assert report["deploymentId"] == bad["deploymentId"]
    assert report["rollbackDeploymentId"] == rollback["deploymentId"]
    texts = [f"{e['source']}: {e['text']}" for e in report["timeline"]]
    assert any(t.startswith(f"alarm {alarm}: Alarm updated from OK to ALARM: Threshold Crossed") for t in texts), texts
    assert any("Rollback deployment Succeeded" in t for t in texts), texts
    assert report["breachingDatapoints"] and all(p["value"] > 0 for p in report["breachingDatapoints"])
    assert {(s["status"], s["title"]) for s in report["servedNow"]} == {(200, "good release v1")}
    cli = subprocess.run([sys.executable, "-m", "emulator.cli.main", "why-rollback", bad["deploymentId"]],
                         env={**cp.env, "COLUMNS": "200"},
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert rollback["deploymentId"] in cli.stdout and "good release v1" in cli.stdout
    cloudwatch.delete_alarms(AlarmNames=[alarm])
