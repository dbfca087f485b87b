"""CloudWatch metric alarms: definitions, state (through the Orchestrator), history, and the
evaluator thread that re-evaluates each alarm on AWS's schedule, compressed by the time scale."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
import time

from emulator.domain import alarm_evaluation as ev
from emulator.domain.errors import NotFound
from emulator.domain.statuses import METRIC_ALARM
from emulator.orchestration import Orchestrator
from emulator.services.cloudwatch.metric_store import MetricStore, dims_key, invalid, timestamp
from emulator.services.cloudwatch.time_scale import TimeScale

HISTORY = "metric-alarm-history"
CONFIG_KEYS = ("AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions", "InsufficientDataActions",
               "MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit",
               "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData",
               "EvaluateLowSampleCountPercentile")
log = logging.getLogger(__name__)


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Alarms:
    def __init__(self, orch: Orchestrator, metrics: MetricStore, scale: TimeScale):
        self.orch = orch
        self.db = orch.db
        self.metrics = metrics
        self.scale = scale
        self._due: dict[str, float] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ API

    def put_metric_alarm(self, p: dict) -> dict:
        name = p.get("AlarmName")
        if not name or len(name) > 255:
            raise invalid("AlarmName is required and at most 255 characters", "MissingParameter")
        ev.rule_from_request(p)
        if len(p.get("Dimensions") or []) > 30:
            raise invalid("Dimensions: at most 30 per alarm")
        now = time.time()
        config = {k: p[k] for k in CONFIG_KEYS if p.get(k) is not None}
        config.setdefault("ActionsEnabled", True)
        config.setdefault("TreatMissingData", "missing")
        config.setdefault("DatapointsToAlarm", config["EvaluationPeriods"])
        config.setdefault("Dimensions", [])
        for key in ("OKActions", "AlarmActions", "InsufficientDataActions"):
            config.setdefault(key, [])
        with self._lock:
            existing = self.db.get(METRIC_ALARM, name)
            doc = {"AlarmName": name, "AlarmArn": f"arn:aws:cloudwatch:{self.db.region}:{self.db.account}:alarm:{name}",
                   **config, "AlarmConfigurationUpdatedTimestamp": now}
            if existing:  # AWS: the state is kept, the whole configuration is replaced
                keep = ("status", "StateValue", "StateReason", "StateReasonData", "StateUpdatedTimestamp",
                        "StateTransitionedTimestamp", "createdAt")
                doc.update({k: existing[k] for k in keep if k in existing})
                self.db.put(METRIC_ALARM, name, doc)
                self._history(name, "ConfigurationUpdate", f'Alarm "{name}" updated',
                              {"type": "Update", "updatedAlarm": config})
            else:
                doc.update({"StateValue": ev.INSUFFICIENT_DATA, "StateReason": "Unchecked: Initial alarm creation",
                            "StateUpdatedTimestamp": now, "StateTransitionedTimestamp": now})
                self.orch.create(METRIC_ALARM, name, doc)
                self._history(name, "ConfigurationUpdate", f'Alarm "{name}" created',
                              {"type": "Create", "createdAlarm": config})
            self._due[name] = 0.0
        return self.get(name)

    def get(self, name: str) -> dict:
        doc = self.db.get(METRIC_ALARM, name)
        if doc is None:
            raise NotFound("Alarm", name)
        return doc

    def describe(self, p: dict) -> list[dict]:
        alarms = self.db.list(METRIC_ALARM)
        if p.get("AlarmNames"):
            alarms = [a for a in alarms if a["AlarmName"] in p["AlarmNames"]]
        if p.get("AlarmNamePrefix"):
            alarms = [a for a in alarms if a["AlarmName"].startswith(p["AlarmNamePrefix"])]
        if p.get("StateValue"):
            alarms = [a for a in alarms if a["StateValue"] == p["StateValue"]]
        if p.get("ActionPrefix"):
            alarms = [a for a in alarms if any(x.startswith(p["ActionPrefix"]) for key in
                                               ("OKActions", "AlarmActions", "InsufficientDataActions")
                                               for x in a.get(key, []))]
        return sorted(alarms, key=lambda a: a["AlarmName"])

    def for_metric(self, p: dict) -> list[dict]:
        want = dims_key(p.get("Dimensions"))
        return [a for a in self.db.list(METRIC_ALARM) if a["MetricName"] == p["MetricName"]
                and a["Namespace"] == p["Namespace"] and dims_key(a.get("Dimensions")) == want
                and (not p.get("Statistic") or a.get("Statistic") == p["Statistic"])
                and (not p.get("ExtendedStatistic") or a.get("ExtendedStatistic") == p["ExtendedStatistic"])
                and (not p.get("Period") or a.get("Period") == p["Period"])]

    def delete(self, names: list[str]) -> None:
        missing = [n for n in names if self.db.get(METRIC_ALARM, n) is None]
        if missing:
            raise NotFound("Alarm", ", ".join(missing))
        with self._lock:
            for name in names:
                self.db.delete(METRIC_ALARM, name)
                self._due.pop(name, None)
                for item in self.db.list(HISTORY, parent=name):
                    self.db.delete(HISTORY, item["id"])

    def set_actions_enabled(self, names: list[str], enabled: bool) -> None:
        for name in names:
            if self.db.get(METRIC_ALARM, name):
                self.orch.update(METRIC_ALARM, name, event=False, ActionsEnabled=enabled)

    def set_state(self, name: str, state: str, reason: str, reason_data: str | None = None) -> None:
        """SetAlarmState: the state holds until the next evaluation says otherwise, as on AWS."""
        if state not in ev.STATES:
            raise invalid(f"StateValue {state!r}: expected one of {', '.join(ev.STATES)}")
        if reason_data:
            try:
                json.loads(reason_data)
            except ValueError:
                raise invalid("StateReasonData is not valid JSON", "InvalidFormat") from None
        self.get(name)
        self._change(name, state, reason, json.loads(reason_data) if reason_data else None, evaluated=[])

    def history(self, p: dict) -> list[dict]:
        items = self.db.list(HISTORY, parent=p["AlarmName"]) if p.get("AlarmName") else self.db.list(HISTORY)
        if p.get("AlarmNamePrefix"):
            items = [i for i in items if i["AlarmName"].startswith(p["AlarmNamePrefix"])]
        if p.get("HistoryItemType"):
            items = [i for i in items if i["HistoryItemType"] == p["HistoryItemType"]]
        if p.get("StartDate") is not None:
            items = [i for i in items if i["Timestamp"] >= timestamp(p["StartDate"])]
        if p.get("EndDate") is not None:
            items = [i for i in items if i["Timestamp"] <= timestamp(p["EndDate"])]
        items.sort(key=lambda i: (i["Timestamp"], i["seq"]), reverse=p.get("ScanBy") != "TimestampAscending")
        return items[: p.get("MaxRecords") or 100]

    # ------------------------------------------------------------ evaluation

    def evaluate(self, name: str, now: float | None = None) -> ev.Decision:
        """Evaluates one alarm now over its evaluation range of complete periods."""
        now = time.time() if now is None else now
        doc = self.get(name)
        rule = ev.rule_from_request(doc)
        length = self.scale.real(rule.period)
        newest = math.floor(now / length) * length - length  # the last complete period
        oldest = newest - (rule.evaluation_range - 1) * length
        buckets = self.metrics.periods(doc["Namespace"], doc["MetricName"], doc.get("Dimensions"), oldest,
                                       newest + length, rule.period, doc.get("Unit"))
        points = []
        for i in range(rule.evaluation_range):
            start = oldest + i * length
            samples = next((s for b, s in buckets.items() if abs(b - start) < length / 2), None)
            points.append((start, ev.statistic_value(samples, rule.statistic) if samples else None))
        decision = ev.evaluate(rule, points, doc["StateValue"])
        if decision.state and decision.state != doc["StateValue"]:
            data = {"version": "1.0", "queryDate": _iso(now), "startDate": _iso(oldest),
                    "statistic": rule.statistic, "period": rule.period, "threshold": rule.threshold,
                    "evaluatedDatapoints": [{"timestamp": _iso(t), "value": v} for t, v in decision.datapoints],
                    "recentDatapoints": [v for _t, v in reversed(decision.datapoints)],
                    "timeScale": self.scale.factor}
            self._change(name, decision.state, decision.reason, data, evaluated=decision.breaching)
        return decision

    def _change(self, name: str, state: str, reason: str, data: dict | None, evaluated) -> None:
        with self._lock:
            doc = self.get(name)
            old = doc["StateValue"]
            now = time.time()
            changes = {"StateValue": state, "StateReason": reason, "StateUpdatedTimestamp": now,
                       "StateReasonData": json.dumps(data) if data is not None else None}
            if old != state:
                changes["StateTransitionedTimestamp"] = now
                self.orch.transition(METRIC_ALARM, name, state, **changes)
            else:
                self.orch.update(METRIC_ALARM, name, **changes)
            self._history(name, "StateUpdate", f"Alarm updated from {old} to {state}", {
                "version": "1.0", "oldState": {"stateValue": old, "stateReason": doc.get("StateReason")},
                "newState": {"stateValue": state, "stateReason": reason,
                             "stateReasonData": data or {}},
                "breachingDatapoints": [{"timestamp": t, "value": v} for t, v in evaluated]})

    def _history(self, name: str, kind: str, summary: str, data: dict) -> None:
        seq = self.db.next_number("metric-alarm-history")
        item_id = f"{name}#{seq:010d}"
        self.db.put(HISTORY, item_id, {"id": item_id, "seq": seq, "AlarmName": name, "AlarmType": "MetricAlarm",
                                       "Timestamp": time.time(), "HistoryItemType": kind,
                                       "HistorySummary": summary, "HistoryData": json.dumps(data)}, parent=name)

    # ------------------------------------------------------------ the evaluator thread

    def interval(self, doc: dict) -> float:
        """AWS evaluates every minute (every 10 s for high-resolution periods), in scaled time."""
        return self.scale.real(10 if doc.get("Period", 60) < 60 else 60)

    def tick(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for doc in self.db.list(METRIC_ALARM):
            name = doc["AlarmName"]
            if self._due.get(name, 0.0) > now:
                continue
            self._due[name] = now + self.interval(doc)
            try:
                self.evaluate(name, now)
            except Exception:  # one broken alarm must not stop the others
                log.exception("evaluating alarm %s failed", name)

    def start(self) -> None:
        if self._thread:
            return
        self._thread = threading.Thread(target=self._loop, name="alarm-evaluator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the evaluator outlives a bad moment of the database
                log.exception("alarm evaluation round failed")
            self._stop.wait(max(0.05, min(1.0, self.scale.real(10) / 2)))
