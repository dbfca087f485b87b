"""CloudWatch service on a real SQLite file: PutMetricData checks, statistics, alarm state changes
and history, bursts and out-of-order datapoints, deployment alarm checks."""

import json
import math

import pytest

from emulator.domain.alarm_evaluation import AlarmDefinitionError
from emulator.orchestration import Orchestrator
from emulator.services.cloudwatch.alarms import Alarms
from emulator.services.cloudwatch.deployment_alarms import DeploymentAlarmMonitor
from emulator.services.cloudwatch.metric_store import MetricStore
from emulator.services.cloudwatch.time_scale import TimeScale
from emulator.state.database import Database

NOW = 1_800_000_000.0  # a multiple of 60: period boundaries are easy to read


@pytest.fixture
def cw(tmp_path):
    db = Database(tmp_path / "state.sqlite3", "000000000000", "us-east-1")
    scale = TimeScale(1.0)
    metrics = MetricStore(db, scale)
    return db, scale, metrics, Alarms(Orchestrator(db), metrics, scale)


def put(metrics, value, ts, name="Errors", dims=None):
    metrics.put_metric_data("App", [{"MetricName": name, "Value": value, "Timestamp": ts,
                                     "Dimensions": dims or [{"Name": "Group", "Value": "g"}]}], now=NOW)


ALARM = {"AlarmName": "errors", "MetricName": "Errors", "Namespace": "App", "Statistic": "Sum", "Period": 60,
         "EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Threshold": 5, "ComparisonOperator": "GreaterThanThreshold",
         "Dimensions": [{"Name": "Group", "Value": "g"}]}


def test_statistics_per_period_including_late_and_out_of_order_points(cw):
    _db, _s, metrics, _a = cw
    for ts, v in [(NOW - 50, 1.0), (NOW - 170, 7.0), (NOW - 110, 2.0), (NOW - 55, 3.0), (NOW - 175, 1.0)]:
        put(metrics, v, ts)
    out = metrics.statistics({"Namespace": "App", "MetricName": "Errors", "Dimensions": [{"Name": "Group", "Value": "g"}],
                              "StartTime": NOW - 180, "EndTime": NOW, "Period": 60,
                              "Statistics": ["Sum", "Maximum", "SampleCount"], "ExtendedStatistics": ["p50"]})
    rows = [(p["Timestamp"] - NOW, p["Sum"], p["Maximum"], p["SampleCount"]) for p in out["Datapoints"]]
    assert rows == [(-180, 8.0, 7.0, 2), (-120, 2.0, 2.0, 1), (-60, 4.0, 3.0, 2)]
    assert out["Datapoints"][0]["ExtendedStatistics"] == {"p50": 1.0}


@pytest.mark.parametrize("namespace,datum,code", [
    ("AWS/EC2", {"MetricName": "m", "Value": 1}, "InvalidParameterValue"),
    ("App", {"MetricName": "m", "Value": math.nan}, "InvalidParameterValue"),
    ("App", {"MetricName": "m", "Value": 1, "Timestamp": NOW - 15 * 86400}, "InvalidParameterValue"),
    ("App", {"MetricName": "m", "Value": 1, "Timestamp": NOW + 3 * 3600}, "InvalidParameterValue"),
    ("App", {"MetricName": "m", "Value": 1, "Values": [1]}, "InvalidParameterCombination"),
    ("App", {"MetricName": "m"}, "MissingParameter"),
    ("App", {"MetricName": "m", "Values": [1, 2], "Counts": [1]}, "InvalidParameterCombination"),
    ("App", {"MetricName": "m", "Value": 1, "Unit": "Furlongs"}, "InvalidParameterValue"),
])
def test_put_metric_data_refusals_store_nothing(cw, namespace, datum, code):
    _db, _s, metrics, _a = cw
    with pytest.raises(AlarmDefinitionError) as err:
        metrics.put_metric_data(namespace, [{"MetricName": "ok", "Value": 1}, datum], now=NOW)
    assert err.value.code == code
    assert metrics.list_metrics() == []


def test_list_metrics_filters_on_dimensions(cw):
    _db, _s, metrics, _a = cw
    put(metrics, 1, NOW - 5, dims=[{"Name": "InstanceId", "Value": "i-1"}])
    put(metrics, 1, NOW - 5, dims=[{"Name": "InstanceId", "Value": "i-2"}])
    put(metrics, 1, NOW - 5, name="Latency")
    assert len(metrics.list_metrics(namespace="App")) == 3
    assert [m["Dimensions"] for m in metrics.list_metrics(dimensions=[{"Name": "InstanceId", "Value": "i-2"}])] == \
        [[{"Name": "InstanceId", "Value": "i-2"}]]
    assert len(metrics.list_metrics(dimensions=[{"Name": "InstanceId"}])) == 2


def test_alarm_goes_insufficient_ok_alarm_with_history(cw):
    db, _s, metrics, alarms = cw
    alarms.put_metric_alarm(ALARM)
    assert alarms.get("errors")["StateValue"] == "INSUFFICIENT_DATA"
    for ts, v in [(NOW - 170, 1), (NOW - 110, 0), (NOW - 50, 2)]:
        put(metrics, v, ts)
    alarms.evaluate("errors", now=NOW + 1)
    assert alarms.get("errors")["StateValue"] == "OK"
    for ts, v in [(NOW + 10, 9), (NOW + 70, 8)]:  # a burst of breaching points in two new periods
        for _ in range(5):
            put(metrics, v, ts)
    decision = alarms.evaluate("errors", now=NOW + 121)
    doc = alarms.get("errors")
    assert doc["StateValue"] == "ALARM", decision.reason
    assert doc["StateReason"].startswith("Threshold Crossed: 2 out of the last 3 datapoints [40 (")
    history = alarms.history({"AlarmName": "errors"})
    summaries = [h["HistorySummary"] for h in history]
    assert summaries[:2] == ["Alarm updated from OK to ALARM", "Alarm updated from INSUFFICIENT_DATA to OK"]
    assert summaries[-1] == 'Alarm "errors" created'
    breaching = json.loads(history[0]["HistoryData"])["breachingDatapoints"]
    assert sorted(p["value"] for p in breaching) == [40.0, 45.0]


def test_update_keeps_state_and_set_state_is_overruled_by_next_evaluation(cw):
    _db, _s, metrics, alarms = cw
    alarms.put_metric_alarm(ALARM)
    for ts in (NOW - 170, NOW - 110, NOW - 50):
        put(metrics, 0, ts)
    alarms.evaluate("errors", now=NOW + 1)
    alarms.put_metric_alarm({**ALARM, "Threshold": 10})
    assert alarms.get("errors")["StateValue"] == "OK"
    assert alarms.get("errors")["Threshold"] == 10
    alarms.set_state("errors", "ALARM", "testing the deployment stop")
    assert alarms.get("errors")["StateReason"] == "testing the deployment stop"
    alarms.evaluate("errors", now=NOW + 1)
    assert alarms.get("errors")["StateValue"] == "OK"


def test_time_scale_shortens_periods(cw):
    _db, scale, metrics, alarms = cw
    scale.set(60)  # one 60 s period is one real second
    alarms.put_metric_alarm({**ALARM, "DatapointsToAlarm": 3})
    for i in range(3):
        put(metrics, 9, NOW + i + 0.5)
    alarms.evaluate("errors", now=NOW + 3.01)
    assert alarms.get("errors")["StateValue"] == "ALARM"
    with pytest.raises(ValueError):
        scale.set(0)


def test_deployment_monitor_names_alarms_in_alarm_and_unreadable_ones(cw):
    db, scale, _m, alarms = cw
    alarms.put_metric_alarm(ALARM)
    monitor = DeploymentAlarmMonitor(db, scale, bake_seconds=120)
    group = {"alarmConfiguration": {"enabled": True, "alarms": [{"name": "errors"}, {"name": "gone"}]}}
    assert monitor.alarms_in_alarm(group) == ["gone (does not exist)"]
    alarms.set_state("errors", "ALARM", "test")
    group["alarmConfiguration"]["ignorePollAlarmFailure"] = True
    assert monitor.alarms_in_alarm(group) == ["errors"]
    assert monitor.bake_time(group) == 120
    assert monitor.alarms_in_alarm({"alarmConfiguration": {"enabled": False, "alarms": [{"name": "errors"}]}}) == []
