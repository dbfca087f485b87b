"""CloudWatch's management routes for the CLI and console: metrics, alarms and their history,
the time scale and traffic rate, and the "why it rolled back" report."""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Body

from emulator.control_plane import ControlPlane
from emulator.domain.alarm_evaluation import STATISTICS, percentile_of, statistic_value, validate_period
from emulator.services.cloudwatch.rollback_report import rollback_report


def _dimensions(text: str) -> list[dict]:
    """`Name=Value,Name=Value` as CloudWatch dimensions."""
    dims = [dict(zip(("Name", "Value"), d.split("=", 1))) for d in text.split(",") if d]
    if any(len(d) != 2 for d in dims):
        raise ValueError(f"dimensions {text!r}: expected Name=Value pairs separated by commas")
    return dims


def cloudwatch_router(cp: ControlPlane) -> APIRouter:
    r = APIRouter(prefix="/api/cloudwatch")

    def settings() -> dict:
        return {"timeScale": cp.time_scale.as_dict(), "trafficRate": cp.traffic.rate,
                "deployBakeSeconds": cp.alarm_monitor.bake_seconds,
                "deployBake": cp.time_scale.describe(cp.alarm_monitor.bake_seconds)}

    @r.get("/settings")
    def get_settings():
        return settings()

    @r.post("/settings")
    def change_settings(payload: dict = Body(...)):
        """Changes the time scale and traffic rate of the running control plane (until restart)."""
        unknown = set(payload) - {"timeScale", "trafficRate", "deployBakeSeconds"}
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))}: expected timeScale, trafficRate "
                             f"or deployBakeSeconds")
        if "timeScale" in payload:
            cp.time_scale.set(payload["timeScale"])
        if "trafficRate" in payload:
            cp.traffic.set_rate(payload["trafficRate"])
        if "deployBakeSeconds" in payload:
            value = payload["deployBakeSeconds"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"deployBakeSeconds {value!r}: expected a number of seconds, 0 or more")
            cp.alarm_monitor.bake_seconds = float(value)
        return settings()

    @r.get("/metrics")
    def list_metrics(namespace: str | None = None, name: str | None = None):
        return {"metrics": cp.metrics.list_metrics(namespace, name)}

    @r.get("/statistics")
    def statistics(namespace: str, name: str, dimensions: str = "", period: int = 60, minutes: float = 10,
                   statistics: str = "Average,Sum,Maximum,SampleCount", extended: str = ""):
        """`dimensions` as Name=Value,Name=Value; `minutes` of emulated time back from now."""
        dims = [dict(zip(("Name", "Value"), d.split("=", 1))) for d in dimensions.split(",") if d]
        if any(len(d) != 2 for d in dims):
            raise ValueError(f"dimensions {dimensions!r}: expected Name=Value pairs separated by commas")
        now = time.time()
        out = cp.metrics.statistics({"Namespace": namespace, "MetricName": name, "Dimensions": dims,
                                     "StartTime": now - cp.time_scale.real(minutes * 60), "EndTime": now,
                                     "Period": period, "Statistics": [s for s in statistics.split(",") if s],
                                     "ExtendedStatistics": [s for s in extended.split(",") if s]})
        return {**out, "period": cp.time_scale.describe(period), "timeScale": cp.time_scale.factor}

    @r.get("/alarms")
    def list_alarms():
        alarms = cp.alarms.describe({})
        for a in alarms:
            a["periodShown"] = cp.time_scale.describe(a["Period"])
        return {"alarms": alarms, "timeScale": cp.time_scale.factor}

    @r.post("/alarms")
    def put_alarm(payload: dict = Body(...)):
        return cp.alarms.put_metric_alarm(payload)

    @r.get("/alarms/{name}")
    def get_alarm(name: str):
        return {**cp.alarms.get(name), "periodShown": cp.time_scale.describe(cp.alarms.get(name)["Period"])}

    @r.get("/alarms/{name}/history")
    def alarm_history(name: str):
        cp.alarms.get(name)
        items = cp.alarms.history({"AlarmName": name, "MaxRecords": 1000})
        return {"items": [{**i, "HistoryData": json.loads(i["HistoryData"])} for i in items]}

    @r.post("/alarms/{name}/state")
    def set_state(name: str, payload: dict = Body(...)):
        cp.alarms.set_state(name, payload["state"], payload.get("reason") or "set by the user")
        return cp.alarms.get(name)

    @r.delete("/alarms/{name}")
    def delete_alarm(name: str):
        cp.alarms.delete([name])
        return {"deleted": name}

    @r.post("/deployment-groups/{app}/{group}/alarms")
    def watch_alarms(app: str, group: str, payload: dict = Body(...)):
        """Sets a group's alarmConfiguration and whether DEPLOYMENT_STOP_ON_ALARM rolls back."""
        from emulator.services.codedeploy.applications import alarm_configuration

        config = alarm_configuration(payload.get("alarmConfiguration"))
        doc = cp.apps.get_group(app, group)
        rollback = dict(doc.get("autoRollbackConfiguration") or {"enabled": False, "events": []})
        events = [e for e in rollback.get("events") or [] if e != "DEPLOYMENT_STOP_ON_ALARM"]
        if payload.get("rollbackOnAlarm"):
            events.append("DEPLOYMENT_STOP_ON_ALARM")
            rollback["enabled"] = True
        rollback["events"] = events
        return cp.apps.update_group(app, group, alarmConfiguration=config, autoRollbackConfiguration=rollback)

    @r.get("/why-rollback/{deployment_id}")
    def why_rollback(deployment_id: str):
        return rollback_report(deployment_id, cp.deployments, cp.apps, cp.fleet, cp.alarms, cp.alarm_monitor)

    @r.get("/series")
    def series(namespace: str, name: str, dimensions: str = "", stat: str = "Average", period: int = 60,
               minutes: float = 30):
        """One chart's worth: a statistic per period over the last `minutes` of emulated time, the
        alarms on the same metric and dimensions (their thresholds), and their state changes."""
        dims = _dimensions(dimensions)
        validate_period(period)
        if stat not in STATISTICS and percentile_of(stat) is None:
            raise ValueError(f"stat {stat!r}: expected one of {', '.join(STATISTICS)} or pNN (for example p99)")
        if not 0 < minutes <= 14 * 24 * 60:
            raise ValueError(f"minutes {minutes:g}: expected more than 0 and at most two weeks (20160)")
        now = time.time()
        start = now - cp.time_scale.real(minutes * 60)
        buckets = cp.metrics.periods(namespace, name, dims, start, now, period)
        points = [{"t": t, "v": v} for t, v in ((t, statistic_value(s, stat)) for t, s in sorted(buckets.items()))
                  if v is not None]
        alarms = cp.alarms.for_metric({"Namespace": namespace, "MetricName": name, "Dimensions": dims})
        changes = []
        for a in alarms:
            for item in cp.alarms.history({"AlarmName": a["AlarmName"], "HistoryItemType": "StateUpdate",
                                           "StartDate": start, "MaxRecords": 1000}):
                data = json.loads(item["HistoryData"])
                changes.append({"t": item["Timestamp"], "alarm": a["AlarmName"],
                                "from": data["oldState"]["stateValue"], "to": data["newState"]["stateValue"],
                                "reason": data["newState"]["stateReason"]})
        return {"namespace": namespace, "name": name, "dimensions": dims, "stat": stat, "period": period,
                "start": start, "end": now, "points": points, "timeScale": cp.time_scale.factor,
                "alarms": [{"name": a["AlarmName"], "state": a["StateValue"], "reason": a.get("StateReason"),
                            "statistic": a.get("Statistic") or a.get("ExtendedStatistic"),
                            "threshold": a["Threshold"], "comparison": a["ComparisonOperator"],
                            "period": a["Period"]} for a in alarms],
                "alarmChanges": sorted(changes, key=lambda c: c["t"])}

    return r
