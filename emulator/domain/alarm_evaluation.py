"""CloudWatch metric alarm semantics, pure: statistics, definition checks and the M-of-N decision.

Follows AWS's documented rules (see /docs/cloudwatch.md): the most recent N real datapoints decide
when there are at least N in the evaluation range; otherwise the shortfall is filled according
to TreatMissingData, with the premature-alarm rule for `missing`. No clocks, no I/O: callers hand
in the datapoints per period, so every case is a table row in a unit test.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

OK, ALARM, INSUFFICIENT_DATA = "OK", "ALARM", "INSUFFICIENT_DATA"
STATES = (OK, ALARM, INSUFFICIENT_DATA)
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
TREAT_MISSING = ("missing", "ignore", "breaching", "notBreaching")
# operator -> (test, words AWS uses in the reason text)
COMPARISONS = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
ANOMALY_OPERATORS = ("LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold",
                     "GreaterThanUpperThreshold")
MAX_EVALUATION_SECONDS = 86_400
# Extra periods fetched beyond N, so recent gaps can be skipped over (AWS's "evaluation range").
EXTRA_RANGE = 2


class AlarmDefinitionError(ValueError):
    """A PutMetricAlarm request AWS would refuse; `code` is AWS's error name."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class Samples:
    """What was published into one period: a statistic set plus the raw values (for percentiles)."""
    count: float = 0.0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    values: list[float] = field(default_factory=list)

    def add_value(self, value: float, count: float = 1.0) -> None:
        self.count += count
        self.total += value * count
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        self.values.extend([value] * int(count) if count == int(count) and count <= 10_000 else [value])

    def add_set(self, count: float, total: float, minimum: float, maximum: float) -> None:
        self.count += count
        self.total += total
        self.minimum = min(self.minimum, minimum)
        self.maximum = max(self.maximum, maximum)


def percentile_of(statistic: str) -> float | None:
    """95.5 for "p95.5"; None for anything that is not a pN extended statistic."""
    if not statistic.startswith("p"):
        return None
    try:
        value = float(statistic[1:])
    except ValueError:
        return None
    return value if 0 <= value <= 100 else None


def statistic_value(samples: Samples, statistic: str) -> float | None:
    """The value of one statistic over one period; None when the period has no usable data."""
    if samples.count <= 0:
        return None
    if statistic == "SampleCount":
        return samples.count
    if statistic == "Sum":
        return samples.total
    if statistic == "Average":
        return samples.total / samples.count
    if statistic == "Minimum":
        return samples.minimum
    if statistic == "Maximum":
        return samples.maximum
    p = percentile_of(statistic)
    if p is None:
        raise ValueError(f"unknown statistic {statistic!r}: expected one of {', '.join(STATISTICS)} or pNN")
    if not samples.values:  # published only as statistic sets: AWS has no percentile for them either
        return None
    ordered = sorted(samples.values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))  # nearest rank
    return ordered[rank - 1]


@dataclass(frozen=True)
class AlarmRule:
    statistic: str  # a Statistic or an ExtendedStatistic such as p99
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing: str = "missing"

    @property
    def evaluation_range(self) -> int:
        return self.evaluation_periods + EXTRA_RANGE

    def breaches(self, value: float) -> bool:
        return COMPARISONS[self.comparison][0](value, self.threshold)


def validate_period(period: object, what: str = "Period") -> int:
    if not isinstance(period, int) or isinstance(period, bool) or period <= 0:
        raise AlarmDefinitionError("InvalidParameterValue", f"{what} must be a positive whole number of seconds")
    if period not in (1, 5, 10, 20, 30) and period % 60:
        raise AlarmDefinitionError("InvalidParameterValue",
                                   f"{what} {period} is not allowed: expected 10, 20, 30 or a multiple of 60 seconds")
    return period


def rule_from_request(p: dict) -> AlarmRule:
    """Checks a PutMetricAlarm request the way CloudWatch does and returns the rule it defines."""
    statistic, extended = p.get("Statistic"), p.get("ExtendedStatistic")
    if statistic and extended:
        raise AlarmDefinitionError("InvalidParameterCombination",
                                   "Statistic and ExtendedStatistic are mutually exclusive: give one of them")
    if p.get("Metrics"):
        raise AlarmDefinitionError("InvalidParameterValue",
                                   "metric math alarms (Metrics) are not supported by pipelocal; "
                                   "give MetricName, Namespace and Statistic instead")
    for key in ("MetricName", "Namespace"):
        if not p.get(key):
            raise AlarmDefinitionError("MissingParameter", f"The parameter {key} is required.")
    if not statistic and not extended:
        raise AlarmDefinitionError("MissingParameter", "One of Statistic or ExtendedStatistic is required.")
    if statistic and statistic not in STATISTICS:
        raise AlarmDefinitionError("InvalidParameterValue",
                                   f"Statistic {statistic!r}: expected one of {', '.join(STATISTICS)}")
    if extended and percentile_of(extended) is None:
        raise AlarmDefinitionError("InvalidParameterValue",
                                   f"ExtendedStatistic {extended!r}: expected a percentile such as p90 or p99.9")
    if p.get("Period") is None:
        raise AlarmDefinitionError("MissingParameter", "The parameter Period is required.")
    period = validate_period(p["Period"])
    if period < 10:
        raise AlarmDefinitionError("InvalidParameterValue",
                                   f"Period {period} is not allowed for an alarm: expected 10, 20, 30 or a multiple of 60")
    n = p.get("EvaluationPeriods")
    if not isinstance(n, int) or n < 1:
        raise AlarmDefinitionError("InvalidParameterValue", "EvaluationPeriods must be at least 1")
    m = p.get("DatapointsToAlarm", n)
    if not isinstance(m, int) or m < 1:
        raise AlarmDefinitionError("InvalidParameterValue", "DatapointsToAlarm must be at least 1")
    if m > n:
        raise AlarmDefinitionError("InvalidParameterCombination",
                                   f"DatapointsToAlarm ({m}) must be less than or equal to EvaluationPeriods ({n})")
    if period * n > MAX_EVALUATION_SECONDS:
        raise AlarmDefinitionError("InvalidParameterCombination",
                                   f"Period ({period}) * EvaluationPeriods ({n}) = {period * n} s must not exceed "
                                   f"{MAX_EVALUATION_SECONDS} s (one day)")
    operator = p.get("ComparisonOperator")
    if operator in ANOMALY_OPERATORS:
        raise AlarmDefinitionError("InvalidParameterValue",
                                   f"ComparisonOperator {operator}: anomaly detection is not supported by pipelocal")
    if operator not in COMPARISONS:
        raise AlarmDefinitionError("InvalidParameterValue",
                                   f"ComparisonOperator {operator!r}: expected one of {', '.join(COMPARISONS)}")
    if p.get("Threshold") is None:
        raise AlarmDefinitionError("MissingParameter", "The parameter Threshold is required.")
    treat = p.get("TreatMissingData", "missing")
    if treat not in TREAT_MISSING:
        raise AlarmDefinitionError("InvalidParameterValue",
                                   f"TreatMissingData {treat!r}: expected one of {', '.join(TREAT_MISSING)}")
    return AlarmRule(statistic or extended, period, n, m, float(p["Threshold"]), operator, treat)


@dataclass(frozen=True)
class Decision:
    """The state the datapoints call for (None: keep the current state), and AWS-style reason."""
    state: str | None
    reason: str
    datapoints: list[tuple[float, float]]  # (period start, value) that were evaluated, newest first
    breaching: list[tuple[float, float]]


def evaluate(rule: AlarmRule, points: list[tuple[float, float | None]], current: str) -> Decision:
    """`points`: (period start, statistic value or None) for the evaluation range, oldest first,
    ending with the most recent complete period."""
    window = points[-rule.evaluation_range:]
    n, m = rule.evaluation_periods, rule.datapoints_to_alarm
    real = [(t, v) for t, v in window if v is not None]
    if len(real) >= n:
        used = list(reversed(real[-n:]))
        hits = [(t, v) for t, v in used if rule.breaches(v)]
        state = ALARM if len(hits) >= m else OK
        return Decision(state, _reason(rule, state, used, hits, 0), used, hits)

    last_n = window[-n:]
    missing = n - len(real)
    used = list(reversed(real))
    hits = [(t, v) for t, v in used if rule.breaches(v)]
    treat = rule.treat_missing
    if treat in ("breaching", "notBreaching"):
        filled_hits = len(hits) + (missing if treat == "breaching" else 0)
        state = ALARM if filled_hits >= m else OK
        return Decision(state, _reason(rule, state, used, hits, missing), used, hits)
    if not real:
        if treat == "ignore":
            return Decision(None, "no datapoints in the evaluation range; missing data ignored, state kept", [], [])
        return Decision(INSUFFICIENT_DATA, f"Insufficient Data: {len(window)} datapoints were unknown.", [], [])
    if len(hits) >= m:
        return Decision(ALARM, _reason(rule, ALARM, used, hits, 0), used, hits)
    not_breaching = len(used) - len(hits)
    if not_breaching > n - m:  # no way left to reach M of N: the real points already say OK
        return Decision(OK, _reason(rule, OK, used, hits, 0), used, hits)
    if treat == "missing" and _premature_alarm(rule, last_n):
        recent = [(t, v) for t, v in reversed(last_n) if v is not None]
        return Decision(ALARM, _reason(rule, ALARM, recent, recent, 0), recent, recent)
    return Decision(None, f"{len(real)} of {n} datapoints present and undecided; state kept "
                          f"(TreatMissingData {treat})", used, hits)


def _premature_alarm(rule: AlarmRule, last_n: list[tuple[float, float | None]]) -> bool:
    """AWS: ALARM if the oldest breaching point in the last N is at least M periods old and every
    more recent point is breaching or missing."""
    oldest_breach_age = None
    for age, (_t, v) in enumerate(reversed(last_n), start=1):
        if v is None:
            continue
        if not rule.breaches(v):
            return False
        oldest_breach_age = age
    return oldest_breach_age is not None and oldest_breach_age >= rule.datapoints_to_alarm


def _stamp(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%d/%m/%y %H:%M:%S")


def _reason(rule: AlarmRule, state: str, used, hits, filled: int) -> str:
    words = COMPARISONS[rule.comparison][1]
    threshold = f"{rule.threshold:g}"
    listed = ", ".join(f"{v:g} ({_stamp(t)})" for t, v in used)
    treated = "Breaching" if rule.treat_missing == "breaching" else "NotBreaching"
    if not used and filled:
        return (f"Threshold Crossed: no datapoints were received for {filled} periods and {filled} missing "
                f"datapoints were treated as [{treated}].")
    extra = f" and {filled} missing datapoints were treated as [{treated}]" if filled else ""
    if state == ALARM:
        return (f"Threshold Crossed: {len(hits)} out of the last {len(used)} datapoints [{listed}] were {words} "
                f"the threshold ({threshold}){extra} (minimum {rule.datapoints_to_alarm} datapoints for OK -> "
                f"ALARM transition).")
    if len(used) == 1:
        return f"Threshold Crossed: 1 datapoint [{listed}] was not {words} the threshold ({threshold}){extra}."
    return (f"Threshold Crossed: {len(used) - len(hits)} out of the last {len(used)} datapoints [{listed}] were "
            f"not {words} the threshold ({threshold}){extra}.")
