"""Alarm evaluation as AWS documents it: M of N, gaps, each TreatMissingData mode, bad definitions."""

import pytest

from emulator.domain.alarm_evaluation import (ALARM, INSUFFICIENT_DATA, OK, AlarmDefinitionError, AlarmRule,
                                              Samples, evaluate, rule_from_request, statistic_value)


def series(pattern: str, breach=10.0, ok=0.0):
    """'0 - X' -> oldest-first points: X breaches, 0 does not, - is missing."""
    values = {"X": breach, "0": ok, "-": None}
    return [(1_000_000.0 + 60 * i, values[c]) for i, c in enumerate(pattern.split())]


def rule(m=3, n=3, treat="missing", op="GreaterThanThreshold", threshold=5.0):
    return AlarmRule("Average", 60, n, m, threshold, op, treat)


# AWS's documented table for 3 out of 3 (evaluation range 5), one column per TreatMissingData mode;
# None means "the current state is kept".
AWS_TABLE = [
    ("0 - X - X", OK, OK, OK, OK),
    ("0 - - - -", OK, OK, OK, OK),
    ("- - - - -", INSUFFICIENT_DATA, None, ALARM, OK),
    ("0 X X - X", ALARM, ALARM, ALARM, ALARM),
    ("- - X - -", ALARM, None, ALARM, OK),
]


@pytest.mark.parametrize("pattern,missing,ignore,breaching,not_breaching", AWS_TABLE)
def test_documented_missing_data_table(pattern, missing, ignore, breaching, not_breaching):
    for treat, expected in (("missing", missing), ("ignore", ignore), ("breaching", breaching),
                            ("notBreaching", not_breaching)):
        got = evaluate(rule(treat=treat), series(pattern), current="OK").state
        assert got == expected, f"{pattern} treated as {treat}: got {got}, expected {expected}"


@pytest.mark.parametrize("pattern,m,n,expected", [
    ("0 X 0 X X", 3, 5, ALARM),       # breaching points need not be consecutive
    ("0 X 0 X 0", 3, 5, OK),
    ("X X X X 0", 4, 5, ALARM),
    ("X X X X X 0 0", 2, 3, OK),      # only the last 3 count: X 0 0 -> 1 of 3
    ("X X 0 0 0", 1, 1, OK),
    ("0 0 0 0 X", 1, 1, ALARM),
])
def test_m_of_n_with_enough_real_points(pattern, m, n, expected):
    assert evaluate(rule(m=m, n=n), series(pattern), current=OK).state == expected


@pytest.mark.parametrize("pattern,treat,expected", [
    ("X - X - X", "missing", ALARM),          # gaps skipped: the 3 most recent real points all breach
    ("X - X - -", "breaching", ALARM),
    ("X - X - -", "notBreaching", OK),        # last 3: X + 2 filled as notBreaching
    ("- - - - X", "missing", None),           # too recent to alarm early, nothing says OK
    ("- - - X X", "missing", None),
    ("- - X X -", "missing", ALARM),          # premature-alarm rule
    ("- - 0 X -", "missing", OK),             # one real non-breaching point already rules ALARM out
])
def test_gaps(pattern, treat, expected):
    assert evaluate(rule(treat=treat), series(pattern), current=OK).state == expected


@pytest.mark.parametrize("op,value,expected", [
    ("GreaterThanOrEqualToThreshold", 5.0, ALARM), ("GreaterThanThreshold", 5.0, OK),
    ("LessThanThreshold", 4.9, ALARM), ("LessThanOrEqualToThreshold", 5.0, ALARM),
    ("LessThanThreshold", 5.0, OK),
])
def test_comparison_operators(op, value, expected):
    points = [(1_000_000.0, value)]
    assert evaluate(rule(m=1, n=1, op=op), points, current=OK).state == expected


def test_reason_text_names_points_threshold_and_m():
    decision = evaluate(rule(), series("X X X"), current=OK)
    assert decision.reason.startswith("Threshold Crossed: 3 out of the last 3 datapoints [10 (")
    assert "were greater than the threshold (5)" in decision.reason
    assert "(minimum 3 datapoints for OK -> ALARM transition)" in decision.reason
    assert len(decision.breaching) == 3


def test_percentiles_and_statistic_sets():
    s = Samples()
    for v in range(1, 101):
        s.add_value(float(v))
    assert statistic_value(s, "p99") == 99.0
    assert statistic_value(s, "p50") == 50.0
    assert statistic_value(s, "Average") == 50.5
    sets = Samples()
    sets.add_set(4, 40.0, 1.0, 20.0)
    assert statistic_value(sets, "Maximum") == 20.0
    assert statistic_value(sets, "SampleCount") == 4
    assert statistic_value(sets, "p90") is None  # no raw values, no percentile
    assert statistic_value(Samples(), "Sum") is None


GOOD = {"AlarmName": "a", "MetricName": "m", "Namespace": "n", "Statistic": "Average", "Period": 60,
        "EvaluationPeriods": 3, "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold"}


@pytest.mark.parametrize("change,code,fragment", [
    ({"Period": 45}, "InvalidParameterValue", "Period 45"),
    ({"DatapointsToAlarm": 4}, "InvalidParameterCombination", "DatapointsToAlarm (4)"),
    ({"ComparisonOperator": "Bigger"}, "InvalidParameterValue", "ComparisonOperator 'Bigger'"),
    ({"Period": 3600, "EvaluationPeriods": 25}, "InvalidParameterCombination", "86400"),
    ({"ExtendedStatistic": "p99"}, "InvalidParameterCombination", "mutually exclusive"),
    ({"TreatMissingData": "sometimes"}, "InvalidParameterValue", "TreatMissingData"),
    ({"Statistic": "Median"}, "InvalidParameterValue", "Statistic 'Median'"),
])
def test_invalid_definitions_use_aws_error_names(change, code, fragment):
    with pytest.raises(AlarmDefinitionError) as err:
        rule_from_request({**GOOD, **change})
    assert err.value.code == code
    assert fragment in str(err.value)


def test_valid_definition_defaults_m_to_n():
    r = rule_from_request({**GOOD, "Statistic": None, "ExtendedStatistic": "p99", "Period": 10})
    assert (r.statistic, r.period, r.datapoints_to_alarm, r.treat_missing) == ("p99", 10, 3, "missing")
