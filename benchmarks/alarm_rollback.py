"""Time from a bad release's first failing request to its rollback deployment starting, per time
scale; and the ingest rate of PutMetricData.

Usage: .venv/bin/python benchmarks/alarm_rollback.py [--port 5580] [--scales 60,1] [--ingest-calls 20]
Starts its own control plane (temporary PIPELOCAL_HOME) with two instances and removes them after.
The alarm: Pipelocal/App HTTPCode_Target_5XX_Count, Sum > 0 for 2 of 3 periods of 60 s,
missing data notBreaching; deployment bake time 300 emulated seconds. At time scale 1 one round
takes several minutes, as it would on AWS.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.test_cloudwatch_alarms import BAD_SERVER, GOOD_PAGE, GOOD_SERVER, bundle  # noqa: E402

BUCKET = "bench-alarm-rollback"


class ControlPlane:
    def __init__(self, port: int):
        self.home = tempfile.mkdtemp(prefix="pipelocal-bench-")
        self.env = {**os.environ, "PIPELOCAL_HOME": self.home, "PIPELOCAL_PORT": str(port),
                    "PIPELOCAL_S3_PORT": str(port + 1), "PIPELOCAL_INSTANCES": "0"}
        self.url = f"http://127.0.0.1:{port}"
        self.api = httpx.Client(base_url=self.url + "/api", timeout=60)
        log = open(os.path.join(self.home, "server.log"), "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "emulator.server"], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(open(os.path.join(self.home, "server.log")).read()[-3000:])
            try:
                self.api.get("/health").raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        self.cloudwatch = boto3.client("cloudwatch", endpoint_url=self.url, region_name="us-east-1",
                                       aws_access_key_id="any", aws_secret_access_key="thing")

    def s3(self):
        secret = open(os.path.join(self.home, "store-secret")).read().strip()
        return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.env['PIPELOCAL_S3_PORT']}",
                            aws_access_key_id="pipelocal", aws_secret_access_key=secret, region_name="us-east-1")

    def call(self, method: str, path: str, payload: dict | None = None) -> dict:
        response = self.api.request(method, path, json=payload)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        for inst in self.call("GET", "/instances")["instances"]:
            self.call("DELETE", f"/instances/{inst['instanceId']}")
        self.process.terminate()
        self.process.wait(60)
        shutil.rmtree(self.home, ignore_errors=True)


def ingest(cp: ControlPlane, calls: int) -> list[tuple[str, int, float]]:
    rows = []
    ns = f"Bench/{uuid.uuid4().hex[:6]}"
    shapes = {
        "1000 datums x Value": [{"MetricName": f"m{i % 10}", "Value": float(i),
                                 "Dimensions": [{"Name": "Host", "Value": f"h{i % 7}"}]} for i in range(1000)],
        "20 datums x 150 Values": [{"MetricName": "lat", "Values": [float(v) for v in range(150)],
                                    "Dimensions": [{"Name": "Host", "Value": f"h{i}"}]} for i in range(20)],
    }
    for label, data in shapes.items():
        points = sum(len(d.get("Values", [0])) for d in data)
        started = time.perf_counter()
        for _ in range(calls):
            cp.cloudwatch.put_metric_data(Namespace=ns, MetricData=data)
        elapsed = time.perf_counter() - started
        rows.append((label, points * calls, points * calls / elapsed))
    return rows


def ingest_in_process(calls: int) -> float:
    """The store alone (SQLite, same checks), without HTTP, the protocol layer or an SDK."""
    from emulator.services.cloudwatch.metric_store import MetricStore
    from emulator.services.cloudwatch.time_scale import TimeScale
    from emulator.state.database import Database

    home = tempfile.mkdtemp(prefix="pipelocal-bench-store-")
    try:
        store = MetricStore(Database(Path(home) / "s.sqlite3", "000000000000", "us-east-1"), TimeScale())
        data = [{"MetricName": f"m{i % 10}", "Value": float(i), "Dimensions": [{"Name": "Host", "Value": f"h{i % 7}"}]}
                for i in range(1000)]
        started = time.perf_counter()
        for _ in range(calls):
            store.put_metric_data("Bench", data)
        return 1000 * calls / (time.perf_counter() - started)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def fetch_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, http.client.HTTPException):  # the server restarting mid-answer
        return None


def setup_group(cp: ControlPlane) -> tuple[str, str, str]:
    """One application, group and alarm for every round, so each round's ApplicationStop stops the
    server the previous round left running."""
    app = f"bench-{uuid.uuid4().hex[:6]}"
    group, alarm = f"{app}-web", f"{app}-5xx"
    cp.cloudwatch.put_metric_alarm(
        AlarmName=alarm, Namespace="Pipelocal/App", MetricName="HTTPCode_Target_5XX_Count",
        Dimensions=[{"Name": "DeploymentGroupName", "Value": group}], Statistic="Sum", Period=60,
        EvaluationPeriods=3, DatapointsToAlarm=2, Threshold=0, ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching")
    cp.call("POST", "/applications", {"applicationName": app})
    cp.call("POST", f"/applications/{app}/deployment-groups", {
        "deploymentGroupName": group, "deploymentConfigName": "CodeDeployDefault.AllAtOnce",
        "ec2TagFilters": [{"Key": "BenchAlarm", "Type": "KEY_ONLY"}],
        "alarmConfiguration": {"enabled": True, "alarms": [{"name": alarm}]},
        "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]}})
    return app, group, alarm


def rollback_round(cp: ControlPlane, scale: float, instances: list[dict], app: str, group: str, alarm: str) -> dict:
    cp.call("POST", "/cloudwatch/settings", {"timeScale": scale, "deployBakeSeconds": 300})
    deadline = time.monotonic() + 600  # the previous round's alarm must have recovered first
    while cp.cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == "ALARM":
        if time.monotonic() > deadline:
            return {"scale": scale, "error": f"{alarm} still in ALARM before the round"}
        time.sleep(0.5)

    def deploy(server: str) -> str:
        key = f"rev/{uuid.uuid4().hex}.tgz"
        cp.s3().put_object(Bucket=BUCKET, Key=key, Body=bundle(GOOD_PAGE, server))
        return cp.call("POST", "/deployments", {"applicationName": app, "deploymentGroupName": group, "revision": {
            "revisionType": "S3", "s3Location": {"bucket": BUCKET, "key": key, "bundleType": "tgz"}}})["deploymentId"]

    def finished(deployment_id: str) -> dict:
        while True:
            doc = cp.call("GET", f"/deployments/{deployment_id}")
            if doc["status"] in ("Succeeded", "Failed", "Stopped"):
                return doc
            time.sleep(0.2)

    good = finished(deploy(GOOD_SERVER))
    assert good["status"] == "Succeeded", good
    urls = [cp.call("GET", f"/instances/{i['instanceId']}")["appUrl"] for i in instances]
    first_failure: list[float] = []
    stop_watch = threading.Event()

    def watch() -> None:
        while not stop_watch.is_set() and not first_failure:
            if any((fetch_status(u) or 0) >= 500 for u in urls):
                first_failure.append(time.time())
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    bad = finished(deploy(BAD_SERVER))
    stop_watch.set()
    watcher.join()
    rollback_id = (bad.get("rollbackInfo") or {}).get("rollbackDeploymentId")
    if bad["status"] != "Stopped" or not rollback_id or not first_failure:
        return {"scale": scale, "error": f"{bad['deploymentId']} {bad['status']} {bad.get('errorInformation')}"}
    rollback = cp.call("GET", f"/deployments/{rollback_id}")
    history = cp.cloudwatch.describe_alarm_history(AlarmName=alarm, HistoryItemType="StateUpdate",
                                                   ScanBy="TimestampAscending")["AlarmHistoryItems"]
    alarm_at = next(h["Timestamp"].timestamp() for h in history if h["HistorySummary"].endswith("to ALARM")
                    and h["Timestamp"].timestamp() >= first_failure[0])
    done = finished(rollback_id)
    return {"scale": scale, "to_alarm": alarm_at - first_failure[0],
            "to_rollback_start": rollback["createTime"] - first_failure[0],
            "to_rollback_done": (done.get("completeTime") or time.time()) - first_failure[0],
            "rollback_status": done["status"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5580)
    parser.add_argument("--scales", default="60,1")
    parser.add_argument("--ingest-calls", type=int, default=20)
    args = parser.parse_args()
    cp = ControlPlane(args.port)
    try:
        print("PutMetricData ingest through boto3 (one client, sequential calls)")
        print(f"{'request shape':<26}{'points':>10}{'points/s':>12}")
        for label, points, rate in ingest(cp, args.ingest_calls):
            print(f"{label:<26}{points:>10}{rate:>12.0f}")
        print(f"{'(store alone, 1000 x Value)':<26}{1000 * args.ingest_calls:>10}"
              f"{ingest_in_process(args.ingest_calls):>12.0f}")
        cp.s3().create_bucket(Bucket=BUCKET)
        instances = cp.call("POST", "/instances", {"count": 2, "tags": {"BenchAlarm": "yes"}})["instances"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                cp.call("GET", f"/instances/{i['instanceId']}").get("agentRegistered") for i in instances):
            time.sleep(0.3)
        print()
        print("Bad release (HTTP 500) -> alarm -> rollback; alarm Sum(5xx) > 0, 2 of 3 periods of 60 s")
        print(f"{'time scale':>10}{'to ALARM s':>12}{'to rollback start s':>21}{'to rollback done s':>20}  rollback")
        app, group, alarm = setup_group(cp)
        for scale in [float(s) for s in args.scales.split(",")]:
            r = rollback_round(cp, scale, instances, app, group, alarm)
            if "error" in r:
                print(f"{scale:>10g}  failed: {r['error']}")
                continue
            print(f"{scale:>10g}{r['to_alarm']:>12.1f}{r['to_rollback_start']:>21.1f}{r['to_rollback_done']:>20.1f}  "
                  f"{r['rollback_status']}")
    finally:
        cp.stop()


if __name__ == "__main__":
    main()
