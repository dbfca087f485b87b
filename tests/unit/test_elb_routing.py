"""Weighted choice between target groups and round robin among a group's targets."""

from collections import Counter

import pytest

from emulator.services.elb.routing import Target, TargetPool, WeightedChoice, check_weights
from emulator.services.elb.target_health import DRAINING, HEALTHY, INITIAL, UNHEALTHY, UNUSED, TargetHealth


def picks(weights: dict[str, int], n: int) -> Counter:
    choice = WeightedChoice(weights)
    return Counter(choice.next() for _ in range(n))


def test_weights_are_met_exactly_over_each_round():
    assert picks({"blue": 90, "green": 10}, 100) == {"blue": 90, "green": 10}
    assert picks({"blue": 1, "green": 1}, 10) == {"blue": 5, "green": 5}
    assert picks({"a": 3, "b": 2, "c": 5}, 1000) == {"a": 300, "b": 200, "c": 500}


def test_equal_weights_alternate_and_a_zero_weight_gets_nothing():
    choice = WeightedChoice({"blue": 1, "green": 1})
    assert [choice.next() for _ in range(4)] in (["blue", "green"] * 2, ["green", "blue"] * 2)
    assert picks({"blue": 100, "green": 0}, 50) == {"blue": 50}


def test_small_weight_is_spread_not_bunched():
    choice = WeightedChoice({"blue": 9, "green": 1})
    sequence = [choice.next() for _ in range(20)]
    assert sequence.count("green") == 2
    first, second = [i for i, name in enumerate(sequence) if name == "green"]
    assert second - first == 10


@pytest.mark.parametrize("weights, message", [
    ({}, "at least one target group"),
    ({"a": 0, "b": 0}, "all 0"),
    ({"a": 1000}, "0 to 999"),
    ({"a": -1}, "0 to 999"),
    ({"a": 1.5}, "whole number"),
    ({"a": True}, "whole number"),
    ({f"g{i}": 1 for i in range(6)}, "at most 5"),
])
def test_bad_weights_are_refused_with_what_to_change(weights, message):
    with pytest.raises(ValueError, match=message):
        check_weights(weights)


def pool(*states: str) -> TargetPool:
    p = TargetPool()
    for i, state in enumerate(states):
        p.targets[f"i-{i}"] = Target(f"i-{i}", f"http://127.0.0.1:{8000 + i}/", TargetHealth(state, "", ""))
    return p


def test_round_robin_over_healthy_targets_only():
    p = pool(HEALTHY, INITIAL, HEALTHY, UNHEALTHY, DRAINING)
    assert Counter(p.next().instance_id for _ in range(10)) == {"i-0": 5, "i-2": 5}


def test_fail_open_when_no_target_is_healthy_but_never_to_draining_or_unused():
    p = pool(UNHEALTHY, INITIAL, DRAINING, UNUSED)
    assert Counter(p.next().instance_id for _ in range(10)) == {"i-0": 5, "i-1": 5}


def test_no_target_when_all_are_draining():
    assert pool(DRAINING, DRAINING).next() is None
    assert TargetPool().next() is None


def test_host_counts_and_drained():
    p = pool(HEALTHY, UNHEALTHY, INITIAL, HEALTHY, DRAINING)
    assert p.counts() == (2, 1)
    assert p.drained("i-4") and not p.drained("i-0") and p.drained("i-missing")
    p.targets["i-4"].in_flight = 1
    assert not p.drained("i-4")
