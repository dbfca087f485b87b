"""CloudWatch's API (GraniteServiceVersion20100801, json-1.0): custom metrics and metric alarms.

Errors use CloudWatch's query-compatible codes (InvalidParameterValue, MissingParameter,
InvalidParameterCombination, ResourceNotFound), which botocore maps to its modeled exceptions.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from emulator.api.aws_protocol import AwsError
from emulator.domain.alarm_evaluation import AlarmDefinitionError
from emulator.services.cloudwatch.alarms import Alarms
from emulator.services.cloudwatch.metric_store import MetricStore


def _aws_errors(method):
    @wraps(method)
    def wrapper(self, p: dict) -> dict:
        try:
            return method(self, p)
        except AlarmDefinitionError as exc:
            raise AwsError(exc.code, str(exc)) from None
    return wrapper


class CloudWatchProvider:
    NOT_FOUND = {"Alarm": "ResourceNotFound"}
    INVALID = "InvalidParameterValue"

    def __init__(self, metrics: MetricStore, alarms: Alarms):
        self.metrics = metrics
        self.alarms = alarms

    @_aws_errors
    def PutMetricData(self, p: dict) -> dict:
        self.metrics.put_metric_data(p["Namespace"], p.get("MetricData") or [])
        return {}

    @_aws_errors
    def GetMetricStatistics(self, p: dict) -> dict:
        return self.metrics.statistics(p)

    @_aws_errors
    def GetMetricData(self, p: dict) -> dict:
        return self.metrics.metric_data(p)

    @_aws_errors
    def ListMetrics(self, p: dict) -> dict:
        return {"Metrics": self.metrics.list_metrics(p.get("Namespace"), p.get("MetricName"), p.get("Dimensions"))}

    @_aws_errors
    def PutMetricAlarm(self, p: dict) -> dict:
        self.alarms.put_metric_alarm(p)
        return {}

    def DescribeAlarms(self, p: dict) -> dict:
        types = p.get("AlarmTypes") or ["MetricAlarm"]
        metric = self.alarms.describe(p) if "MetricAlarm" in types else []
        return {"MetricAlarms": [_alarm(a) for a in metric], "CompositeAlarms": []}  # paged by the protocol

    def DescribeAlarmsForMetric(self, p: dict) -> dict:
        return {"MetricAlarms": [_alarm(a) for a in self.alarms.for_metric(p)]}

    def DescribeAlarmHistory(self, p: dict) -> dict:
        # the whole history: the protocol layer cuts the page of MaxRecords items at NextToken
        return {"AlarmHistoryItems": self.alarms.history({**p, "MaxRecords": 1_000_000})}

    @_aws_errors
    def SetAlarmState(self, p: dict) -> dict:
        self.alarms.set_state(p["AlarmName"], p["StateValue"], p["StateReason"], p.get("StateReasonData"))
        return {}

    def DeleteAlarms(self, p: dict) -> dict:
        self.alarms.delete(p["AlarmNames"])
        return {}

    def EnableAlarmActions(self, p: dict) -> dict:
        self.alarms.set_actions_enabled(p["AlarmNames"], True)
        return {}

    def DisableAlarmActions(self, p: dict) -> dict:
        self.alarms.set_actions_enabled(p["AlarmNames"], False)
        return {}


def _alarm(doc: dict) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k[0].isupper()}
