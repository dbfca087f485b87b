"""The console's chart data route, /api/cloudwatch/series, against a real metric store and alarms."""

from __future__ import annotations

import time
from unittest.mock import MagicMock

import pytest
from fastapi.testclient import TestClient

from emulator.api.app import create_app
from emulator.orchestration import Orchestrator
from emulator.services.cloudwatch.alarms import Alarms
from emulator.services.cloudwatch.metric_store import MetricStore
from emulator.services.cloudwatch.time_scale import TimeScale
from emulator.state.database import Database

DIMS = [{"Name": "DeploymentGroupName", "Value": "web"}]
Q = {"namespace": "Pipelocal/App", "name": "ErrorRate", "dimensions": "DeploymentGroupName=web"}


@pytest.fixture
def parts(tmp_path):
    db = Database(tmp_path / "s.sqlite3", "000000000000", "us-east-1")
    scale = TimeScale(60)
    metrics = MetricStore(db, scale)
    cp = MagicMock()
    cp.time_scale, cp.metrics, cp.alarms = scale, metrics, Alarms(Orchestrator(db), metrics, scale)
    return cp, TestClient(create_app(cp))


def test_points_per_period_with_the_statistic_asked_for(parts):
    cp, client = parts
    now = time.time()
    # at time ×60 a 60-second period is one real second: two periods, two values each
    first = (now // 1) - 3
    cp.metrics.put_metric_data("Pipelocal/App", [
        {"MetricName": "ErrorRate", "Dimensions": DIMS, "Value": v, "Timestamp": t}
        for v, t in ((10, first + 0.1), (30, first + 0.6), (50, first + 1.2), (70, first + 1.7))])
    cp.metrics.put_metric_data("Pipelocal/App", [{"MetricName": "ErrorRate", "Value": 999, "Timestamp": first + 0.2,
                                                  "Dimensions": [{"Name": "DeploymentGroupName", "Value": "other"}]}])
    answer = client.get("/api/cloudwatch/series", params={**Q, "stat": "Average", "period": 60, "minutes": 10}).json()
    assert [p["v"] for p in answer["points"]] == [20, 60]
    assert [p["t"] for p in answer["points"]] == [first, first + 1]
    assert answer["start"] < first < answer["end"] and answer["timeScale"] == 60
    maximum = client.get("/api/cloudwatch/series", params={**Q, "stat": "p99", "minutes": 10}).json()
    assert [p["v"] for p in maximum["points"]] == [30, 70]


def test_alarms_on_the_metric_bring_their_threshold_and_state_changes(parts):
    cp, client = parts
    base = {"Namespace": "Pipelocal/App", "MetricName": "ErrorRate", "Statistic": "Average", "Period": 60,
            "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold"}
    cp.alarms.put_metric_alarm({**base, "AlarmName": "web-errors", "Dimensions": DIMS, "Threshold": 5})
    cp.alarms.put_metric_alarm({**base, "AlarmName": "elsewhere", "Threshold": 1,
                                "Dimensions": [{"Name": "DeploymentGroupName", "Value": "other"}]})
    cp.alarms.set_state("web-errors", "ALARM", "too many errors")
    answer = client.get("/api/cloudwatch/series", params=Q).json()
    assert [(a["name"], a["threshold"], a["state"]) for a in answer["alarms"]] == [("web-errors", 5, "ALARM")]
    assert [(c["alarm"], c["from"], c["to"], c["reason"]) for c in answer["alarmChanges"]] == [
        ("web-errors", "INSUFFICIENT_DATA", "ALARM", "too many errors")]
    assert answer["points"] == []


@pytest.mark.parametrize("params,needle", [
    ({"dimensions": "DeploymentGroupName"}, "Name=Value"),
    ({"stat": "Median"}, "pNN"),
    ({"period": 45}, "Period 45"),
    ({"minutes": 0}, "minutes"),
])
def test_bad_questions_are_refused_with_what_was_expected(parts, params, needle):
    _, client = parts
    response = client.get("/api/cloudwatch/series", params={**Q, **params})
    assert response.status_code == 400
    assert needle in response.json()["message"]
