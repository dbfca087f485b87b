"""The console's metrics and alarms in a real browser against the real control plane: datapoints
and an alarm published through the AWS API show up as a chart with the alarm's dashed threshold and
a labelled ALARM marker; a deployment an alarm stopped links to its "why it rolled back" timeline.
Screenshots go to test-artifacts/console-metrics*.png."""

from __future__ import annotations

import io
import tarfile
import time
import uuid

import pytest

from tests.integration.test_console import browser, click, full_shot, go, js, js_errors, text, until  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
NAMESPACE = "Pipelocal/App"
TAG = "ConsoleMetrics"
BUCKET = "console-metrics"


@pytest.fixture(scope="module")
def minute_per_second(control_plane):
    """One emulated minute per real second (a 60 s period lasts a second); the settings come back after."""
    before = control_plane.client.get("/cloudwatch/settings")
    control_plane.client.post("/cloudwatch/settings", {"timeScale": 60, "deployBakeSeconds": 120})
    yield
    control_plane.client.post("/cloudwatch/settings", {"timeScale": before["timeScale"]["factor"],
                                                      "deployBakeSeconds": before["deployBakeSeconds"]})


def wait_for(get, done, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = get()
        if done(value):
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} not reached in {timeout} s; last: {str(value)[:1500]}")


def publish(cloudwatch, group: str, error_rate: float, seconds: range) -> None:
    """One datapoint per real second (an emulated minute) for each chart of the group."""
    now = time.time()
    dims = [{"Name": "DeploymentGroupName", "Value": group}]
    data = []
    for s in seconds:
        t = now + s
        data += [{"MetricName": "RequestCount", "Dimensions": dims, "Value": 300 + 10 * (s % 3), "Timestamp": t},
                 {"MetricName": "HTTPCode_Target_5XX_Count", "Dimensions": dims, "Value": 3 * error_rate, "Timestamp": t},
                 {"MetricName": "ErrorRate", "Dimensions": dims, "Value": error_rate, "Timestamp": t},
                 {"MetricName": "TargetResponseTime", "Dimensions": dims, "Values": [0.004, 0.006, 0.02 + 0.001 * (s % 5)],
                  "Timestamp": t}]
    for i in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data[i:i + 500])


def test_metrics_page_draws_the_threshold_and_the_alarm_marker(control_plane, cloudwatch, minute_per_second, browser):
    group = f"cm-{uuid.uuid4().hex[:6]}"
    alarm = f"{group}-errors"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm, Namespace=NAMESPACE, MetricName="ErrorRate", Statistic="Average", Period=60,
        EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching",
        Dimensions=[{"Name": "DeploymentGroupName", "Value": group}])
    publish(cloudwatch, group, 1.0, range(-20, -4))
    publish(cloudwatch, group, 40.0, range(-4, 4))
    wait_for(lambda: cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"],
             lambda s: s == "ALARM", timeout=30, what="the alarm in ALARM")

    base = control_plane.settings.control_url
    go(browser, base, "#/metrics")
    figure = f'article[data-group="{group}"] figure[data-metric="ErrorRate"]'
    until(browser, lambda d: js(d, "return document.querySelectorAll(arguments[0] + ' g.marker[data-kind=alarm]').length",
                                figure), 30, "the alarm marker on the error-rate chart")
    chart = js(browser, """
        const f = document.querySelector(arguments[0]);
        const path = f.querySelector('svg path.series');
        return {d: path && path.getAttribute('d'), points: path && Number(path.dataset.points),
                thresholds: [...f.querySelectorAll('g.threshold')].map(g => ({value: g.dataset.value,
                    dash: g.querySelector('line').getAttribute('stroke-dasharray'), text: g.querySelector('text').textContent})),
                markers: [...f.querySelectorAll('g.marker')].map(g => g.querySelector('text').textContent),
                header: document.getElementById('time-scale').textContent};""", figure)
    assert chart["d"] and chart["d"].startswith("M") and chart["points"] >= 10, chart
    assert [(t["value"], t["dash"]) for t in chart["thresholds"]] == [("5", "6 4")], chart
    assert alarm in chart["thresholds"][0]["text"] and "> 5" in chart["thresholds"][0]["text"], chart
    assert f"{alarm} → ALARM" in chart["markers"], chart
    assert "time ×60" in chart["header"], chart
    for metric in ("RequestCount", "HTTPCode_Target_5XX_Count", "TargetResponseTime"):
        assert js(browser, "return document.querySelector(arguments[0]) !== null",
                  f'article[data-group="{group}"] figure[data-metric="{metric}"] svg path.series'), metric
    row = f'table.alarms tr[data-alarm="{alarm}"]'
    until(browser, lambda d: "ALARM" in text(d, row) and "Threshold Crossed" in text(d, row), 20, "the alarm row")
    js(browser, "document.querySelector(arguments[0]).scrollIntoView()", f'article[data-group="{group}"]')
    full_shot(browser, "metrics")
    full_shot(browser, "metrics-phone", 390)
    assert js_errors(browser) == []
    cloudwatch.delete_alarms(AlarmNames=[alarm])


def bundle() -> bytes:
    files = {"appspec.yml": "version: 0.0\nos: linux\nfiles:\n  - source: note.txt\n    destination: /opt/console-metrics/\n"
                            "file_exists_behavior: OVERWRITE\n",
             "note.txt": f"{uuid.uuid4()}\n"}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body.encode())
            archive.addfile(info, io.BytesIO(body.encode()))
    return buffer.getvalue()


def test_why_it_rolled_back_from_the_deployment_page(control_plane, cloudwatch, minute_per_second, browser):
    cp = control_plane
    app = f"cm-{uuid.uuid4().hex[:6]}"
    group, watched, alarm = f"{app}-web", f"{app}-watched", f"{app}-errors"
    cp.store.ensure_bucket(BUCKET)
    instance = cp.client.post("/instances", {"count": 1, "tags": {TAG: app}})["instances"][0]["instanceId"]
    try:
        # the alarm watches a metric only this test publishes, so the fleet's own traffic cannot move it
        cloudwatch.put_metric_alarm(
            AlarmName=alarm, Namespace=NAMESPACE, MetricName="ErrorRate", Statistic="Average", Period=60,
            EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching", Dimensions=[{"Name": "DeploymentGroupName", "Value": watched}])
        cp.client.post("/applications", {"applicationName": app})
        cp.client.post(f"/applications/{app}/deployment-groups", {
            "deploymentGroupName": group, "deploymentConfigName": "CodeDeployDefault.AllAtOnce",
            "ec2TagFilters": [{"Key": TAG, "Value": app, "Type": "KEY_AND_VALUE"}],
            "alarmConfiguration": {"enabled": True, "alarms": [{"name": alarm}]},
            "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]}})
        wait_for(lambda: cp.client.get(f"/instances/{instance}").get("agentRegistered"), bool, what="agent registered")

        def deploy() -> dict:
            key = f"rev/{uuid.uuid4().hex}.tgz"
            cp.store.put_bytes(BUCKET, key, bundle())
            started = cp.client.post("/deployments", {"applicationName": app, "deploymentGroupName": group, "revision": {
                "revisionType": "S3", "s3Location": {"bucket": BUCKET, "key": key, "bundleType": "tgz"}}})["deploymentId"]
            return wait_for(lambda: cp.client.get(f"/deployments/{started}"),
                            lambda d: d["status"] in ("Succeeded", "Failed", "Stopped"), what=f"{started} ends")

        assert deploy()["status"] == "Succeeded"
        publish(cloudwatch, watched, 50.0, range(-3, 30))
        wait_for(lambda: cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"],
                 lambda s: s == "ALARM", timeout=30, what="the alarm in ALARM")
        bad = deploy()
        assert bad["status"] == "Stopped" and bad["errorInformation"]["code"] == "ALARM_ACTIVE", bad
        bad = wait_for(lambda: cp.client.get(f"/deployments/{bad['deploymentId']}"),
                       lambda d: (d.get("rollbackInfo") or {}).get("rollbackDeploymentId"), what="the rollback")
        rollback = bad["rollbackInfo"]["rollbackDeploymentId"]

        go(browser, cp.settings.control_url, f"#/deployments/{bad['deploymentId']}")
        click(browser, "css selector", "a[data-why-rollback]")
        until(browser, lambda d: js(d, "return document.getElementById('main').dataset.route") ==
              f"#/why-rollback/{bad['deploymentId']}", 20, "the why-rollback page")
        until(browser, lambda d: f"Rollback deployment" in text(d, "ol.timeline"), 60, "the rollback on the timeline")
        rows = js(browser, "return [...document.querySelectorAll('ol.timeline li')].map(li => [li.dataset.kind, li.innerText])")
        kinds = [k for k, _ in rows]
        assert "alarm" in kinds and "deployment" in kinds, rows
        assert any(k == "alarm" and "to ALARM" in t for k, t in rows), rows
        assert kinds.index("alarm") < max(i for i, (k, t) in enumerate(rows) if "Stopped" in t), rows
        assert rollback in text(browser, "dl.facts")
        full_shot(browser, "metrics-why-rollback")

        # the deployment group's own charts mark the stopped deployment and its rollback in words
        publish(cloudwatch, group, 0.0, range(-3, 1))
        go(browser, cp.settings.control_url, "#/metrics")
        markers = f'article[data-group="{group}"] figure[data-metric="RequestCount"] g.marker'
        wanted = {f"Deployment {bad['deploymentId']} Stopped", f"Rollback {rollback} Succeeded"}
        until(browser, lambda d: wanted <= set(js(d, "return [...document.querySelectorAll(arguments[0])]"
                                                      ".map(g => g.querySelector('text').textContent)", markers)),
              20, f"markers {wanted}")
        assert js_errors(browser) == []
    finally:
        cloudwatch.delete_alarms(AlarmNames=[alarm])
        cp.client.delete(f"/instances/{instance}")
