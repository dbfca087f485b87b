"""Custom metrics in the control plane's SQLite file: PutMetricData's checks, and statistics per
period for GetMetricStatistics, GetMetricData and the alarm evaluator.

One row per published datum (a value, a statistic set or a values/counts array), keyed by
account and region; periods are computed at read time, so datapoints that arrive late or out of
order land in the right period.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from typing import Iterable

from emulator.domain.alarm_evaluation import AlarmDefinitionError, Samples, statistic_value, validate_period
from emulator.services.cloudwatch.time_scale import TimeScale
from emulator.state.database import Database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS metric_data (
    account TEXT NOT NULL, region TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    dims TEXT NOT NULL, ts REAL NOT NULL, count REAL NOT NULL, total REAL NOT NULL,
    minimum REAL NOT NULL, maximum REAL NOT NULL, vals TEXT, unit TEXT
);
CREATE INDEX IF NOT EXISTS metric_data_key ON metric_data (account, region, namespace, name, dims, ts);
"""
MAX_DATUMS = 1000
MAX_VALUES = 150
MAX_DIMENSIONS = 30
LIMIT = 2.0 ** 360
PAST_LIMIT = 14 * 86_400
FUTURE_LIMIT = 2 * 3_600
UNITS = ("Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
         "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
         "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
         "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None")


def invalid(message: str, code: str = "InvalidParameterValue") -> AlarmDefinitionError:
    return AlarmDefinitionError(code, message)


def dims_key(dimensions: Iterable[dict] | None) -> str:
    """Dimensions in one canonical order: a metric is the same whatever order they were sent in."""
    return json.dumps(sorted([d["Name"], d["Value"]] for d in dimensions or []))


def dims_list(key: str) -> list[dict]:
    return [{"Name": n, "Value": v} for n, v in json.loads(key)]


def timestamp(value) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.timestamp()
    text = str(value)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"timestamp {text!r}: expected ISO 8601 or epoch seconds") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)).timestamp()


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(f"{where}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or abs(value) > LIMIT:
        raise invalid(f"The value {value} for parameter {where} is invalid: NaN, Infinity and values beyond "
                      f"±2^360 are not accepted.")
    return value


class MetricStore:
    def __init__(self, db: Database, scale: TimeScale):
        self.db = db
        self.scale = scale
        db.execute_script(_SCHEMA)

    # ------------------------------------------------------------ PutMetricData

    def put_metric_data(self, namespace: str, data: list[dict], now: float | None = None,
                        internal: bool = False) -> int:
        """Stores every datum or none; returns how many values were stored. `internal`: published
        by pipelocal itself in AWS's own namespaces (AWS/EC2), which PutMetricData refuses to users."""
        now = time.time() if now is None else now
        if not namespace or (namespace.startswith("AWS/") and not internal):
            raise invalid(f"The value {namespace!r} for parameter Namespace is invalid: namespaces starting "
                          f"with AWS/ are reserved for AWS services.")
        if not data:
            raise invalid("The parameter MetricData is required.", "MissingParameter")
        if len(data) > MAX_DATUMS:
            raise invalid(f"MetricData holds {len(data)} datums: at most {MAX_DATUMS} per request.")
        rows = []
        for i, datum in enumerate(data, start=1):
            rows.append(self._row(namespace, datum, f"MetricData.member.{i}", now))
        self.db.execute_many("INSERT INTO metric_data VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        return len(rows)

    def _row(self, namespace: str, datum: dict, where: str, now: float) -> tuple:
        name = datum.get("MetricName")
        if not name:
            raise invalid(f"The parameter {where}.MetricName is required.", "MissingParameter")
        dims = datum.get("Dimensions") or []
        if len(dims) > MAX_DIMENSIONS:
            raise invalid(f"{where}.Dimensions: at most {MAX_DIMENSIONS} dimensions")
        unit = datum.get("Unit")
        if unit is not None and unit not in UNITS:
            raise invalid(f"{where}.Unit {unit!r}: expected one of {', '.join(UNITS)}")
        ts = timestamp(datum["Timestamp"]) if datum.get("Timestamp") is not None else now
        if ts < now - PAST_LIMIT or ts > now + FUTURE_LIMIT:
            raise invalid(f"{where}.Timestamp {dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat()} is "
                          f"outside the accepted range: at most 2 weeks in the past and 2 hours in the future.")
        forms = [k for k in ("Value", "StatisticValues", "Values") if datum.get(k) is not None]
        if len(forms) > 1:
            raise invalid(f"{where}: give one of Value, StatisticValues or Values, not {' and '.join(forms)}",
                          "InvalidParameterCombination")
        if not forms:
            raise invalid(f"{where}: one of Value, StatisticValues or Values is required", "MissingParameter")
        samples = Samples()
        if forms[0] == "Value":
            samples.add_value(_number(datum["Value"], f"{where}.Value"))
        elif forms[0] == "StatisticValues":
            sv = datum["StatisticValues"]
            count = _number(sv.get("SampleCount"), f"{where}.StatisticValues.SampleCount")
            if count <= 0:
                raise invalid(f"{where}.StatisticValues.SampleCount must be greater than 0")
            lo = _number(sv.get("Minimum"), f"{where}.StatisticValues.Minimum")
            hi = _number(sv.get("Maximum"), f"{where}.StatisticValues.Maximum")
            if lo > hi:
                raise invalid(f"{where}.StatisticValues: Minimum ({lo:g}) is greater than Maximum ({hi:g})")
            samples.add_set(count, _number(sv.get("Sum"), f"{where}.StatisticValues.Sum"), lo, hi)
        else:
            values = datum["Values"]
            counts = datum.get("Counts") or [1.0] * len(values)
            if len(values) > MAX_VALUES:
                raise invalid(f"{where}.Values holds {len(values)} values: at most {MAX_VALUES}")
            if len(counts) != len(values):
                raise invalid(f"{where}: Counts has {len(counts)} entries but Values has {len(values)}",
                              "InvalidParameterCombination")
            for j, (v, c) in enumerate(zip(values, counts), start=1):
                samples.add_value(_number(v, f"{where}.Values.member.{j}"), _number(c, f"{where}.Counts.member.{j}"))
        vals = json.dumps(samples.values) if samples.values else None
        return (self.db.account, self.db.region, namespace, name, dims_key(dims), ts, samples.count, samples.total,
                samples.minimum, samples.maximum, vals, unit)

    # ------------------------------------------------------------ reading

    def list_metrics(self, namespace: str | None = None, name: str | None = None,
                     dimensions: list[dict] | None = None) -> list[dict]:
        sql = "SELECT DISTINCT namespace, name, dims FROM metric_data WHERE account=? AND region=?"
        args: list = [self.db.account, self.db.region]
        if namespace:
            sql += " AND namespace=?"
            args.append(namespace)
        if name:
            sql += " AND name=?"
            args.append(name)
        out = []
        for ns, metric, dims in self.db.execute(sql + " ORDER BY namespace, name, dims", tuple(args)):
            have = dict(json.loads(dims))
            if all(f["Name"] in have and (f.get("Value") is None or have[f["Name"]] == f["Value"])
                   for f in dimensions or []):
                out.append({"Namespace": ns, "MetricName": metric, "Dimensions": dims_list(dims)})
        return out

    def periods(self, namespace: str, name: str, dimensions: list[dict] | None, start: float, end: float,
                period: int, unit: str | None = None) -> dict[float, Samples]:
        """Period start (real time) -> what was published in it, for periods overlapping [start, end)."""
        length = self.scale.real(period)
        sql = ("SELECT ts, count, total, minimum, maximum, vals FROM metric_data WHERE account=? AND region=?"
               " AND namespace=? AND name=? AND dims=? AND ts>=? AND ts<?")
        args: list = [self.db.account, self.db.region, namespace, name, dims_key(dimensions), start, end]
        if unit:
            sql += " AND unit=?"
            args.append(unit)
        out: dict[float, Samples] = {}
        for ts, count, total, lo, hi, vals in self.db.execute(sql, tuple(args)):
            bucket = math.floor(ts / length) * length
            samples = out.setdefault(bucket, Samples())
            samples.add_set(count, total, lo, hi)
            if vals:
                samples.values.extend(json.loads(vals))
        return out

    def statistics(self, p: dict) -> dict:
        """GetMetricStatistics."""
        stats, extended = p.get("Statistics") or [], p.get("ExtendedStatistics") or []
        if not stats and not extended:
            raise invalid("One of Statistics or ExtendedStatistics is required.", "MissingParameter")
        period = validate_period(p.get("Period"))
        start, end = timestamp(p["StartTime"]), timestamp(p["EndTime"])
        if end <= start:
            raise invalid("EndTime must be after StartTime")
        buckets = self.periods(p["Namespace"], p["MetricName"], p.get("Dimensions"), start, end, period,
                               p.get("Unit"))
        points = []
        for bucket, samples in sorted(buckets.items()):
            point: dict = {"Timestamp": bucket}
            for stat in stats:
                point[stat] = statistic_value(samples, stat)
            if extended:
                point["ExtendedStatistics"] = {e: statistic_value(samples, e) for e in extended
                                               if statistic_value(samples, e) is not None}
            if p.get("Unit"):
                point["Unit"] = p["Unit"]
            points.append(point)
        return {"Label": p["MetricName"], "Datapoints": points}

    def metric_data(self, p: dict) -> dict:
        """GetMetricData for MetricStat queries (metric math expressions are refused)."""
        start, end = timestamp(p["StartTime"]), timestamp(p["EndTime"])
        descending = p.get("ScanBy", "TimestampDescending") == "TimestampDescending"
        results = []
        for q in p.get("MetricDataQueries") or []:
            if q.get("Expression"):
                raise invalid(f"MetricDataQueries {q.get('Id')}: metric math expressions are not supported "
                              f"by pipelocal; use MetricStat")
            stat = q.get("MetricStat")
            if not stat:
                raise invalid(f"MetricDataQueries {q.get('Id')}: MetricStat is required", "MissingParameter")
            metric = stat["Metric"]
            period = validate_period(stat.get("Period"), "MetricStat.Period")
            buckets = self.periods(metric.get("Namespace"), metric.get("MetricName"), metric.get("Dimensions"),
                                   start, end, period, stat.get("Unit"))
            rows = [(t, statistic_value(s, stat["Stat"])) for t, s in sorted(buckets.items(), reverse=descending)]
            rows = [(t, v) for t, v in rows if v is not None]
            if q.get("ReturnData", True):
                results.append({"Id": q["Id"], "Label": q.get("Label") or metric.get("MetricName"),
                                "Timestamps": [t for t, _ in rows], "Values": [v for _, v in rows],
                                "StatusCode": "Complete"})
        return {"MetricDataResults": results, "Messages": []}

    def prune(self, older_than: float) -> None:
        self.db.execute("DELETE FROM metric_data WHERE ts<?", (older_than,))
