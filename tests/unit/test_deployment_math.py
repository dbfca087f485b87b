"""CodeDeploy EC2/on-premises configuration arithmetic (aws-semantics.md section 3.1)."""

from __future__ import annotations

import pytest

from emulator.domain import deployment_math as dm
from emulator.domain.deployment_math import PREDEFINED, Plan, explain, plan, should_stop, succeeded

ONE = PREDEFINED["CodeDeployDefault.OneAtATime"]
HALF = PREDEFINED["CodeDeployDefault.HalfAtATime"]
ALL = PREDEFINED["CodeDeployDefault.AllAtOnce"]


def simulate(p: Plan, outcomes: list[bool]) -> tuple[bool, int]:
    """Runs instances in order (as OneAtATime would) and returns (succeeded, how many ran)."""
    results: list[bool] = []
    total = len(outcomes)
    for i, ok in enumerate(outcomes):
        results.append(ok)
        failed_idx = [j for j, r in enumerate(results) if not r]
        if failed_idx and should_stop(p, total, len(failed_idx), last_failed_was_final=failed_idx == [total - 1]):
            break
    ran = len(results)
    failed_idx = [j for j, r in enumerate(results) if not r]
    failed_last_only = ran == total and failed_idx == [total - 1]
    return succeeded(p, total, sum(results), failed_last_only), ran


def test_predefined_configurations_match_aws():
    assert ONE == {"type": "MOST_CONCURRENCY", "value": 1}
    assert HALF == {"type": "FLEET_PERCENT", "value": 50}
    assert ALL == {"type": "HOST_COUNT", "value": 0}
    assert dm.DEFAULT_CONFIG == "CodeDeployDefault.OneAtATime"


# ---------------------------------------------------------------- HalfAtATime


def test_half_at_a_time_nine_instances_four_at_a_time_needs_five():
    p = plan(HALF, 9)
    assert p.concurrency == 4
    assert p.min_healthy == 5
    assert not p.one_at_a_time
    assert succeeded(p, 9, 5, False)
    assert not succeeded(p, 9, 4, False)


@pytest.mark.parametrize("n,concurrency,needed", [(1, 1, 1), (2, 1, 1), (3, 1, 2), (4, 2, 2), (10, 5, 5), (11, 5, 6)])
def test_half_at_a_time_rounds_concurrency_down_and_success_up(n, concurrency, needed):
    p = plan(HALF, n)
    assert p.concurrency == concurrency
    assert max(p.min_healthy, 1) == needed
    assert succeeded(p, n, needed, False)
    assert not succeeded(p, n, needed - 1, False)


def test_half_at_a_time_stops_once_success_is_impossible():
    p = plan(HALF, 9)
    assert not should_stop(p, 9, 0, False)
    assert not should_stop(p, 9, 4, False)  # 5 can still succeed
    assert should_stop(p, 9, 5, False)  # at most 4 can succeed


# ---------------------------------------------------------------- AllAtOnce


def test_all_at_once_deploys_everything_and_needs_one_success():
    p = plan(ALL, 9)
    assert p.concurrency == 9
    assert succeeded(p, 9, 1, False)
    assert not succeeded(p, 9, 0, False)


def test_all_at_once_fails_only_if_all_fail():
    p = plan(ALL, 9)
    for failed in range(1, 9):
        assert not should_stop(p, 9, failed, False), failed
    assert should_stop(p, 9, 9, False)


# ---------------------------------------------------------------- OneAtATime


def test_one_at_a_time_plan():
    p = plan(ONE, 5)
    assert p.concurrency == 1
    assert p.one_at_a_time


def test_one_at_a_time_all_succeed():
    assert simulate(plan(ONE, 4), [True] * 4) == (True, 4)


def test_one_at_a_time_failure_on_the_last_instance_still_succeeds():
    assert simulate(plan(ONE, 4), [True, True, True, False]) == (True, 4)
    assert succeeded(plan(ONE, 4), 4, 3, failed_last_only=True)


@pytest.mark.parametrize("fail_at", [0, 1, 2])
def test_one_at_a_time_stops_at_the_first_non_last_failure(fail_at):
    outcomes = [True] * 4
    outcomes[fail_at] = False
    ok, ran = simulate(plan(ONE, 4), outcomes)
    assert not ok
    assert ran == fail_at + 1


def test_one_at_a_time_should_stop_rules():
    p = plan(ONE, 3)
    assert not should_stop(p, 3, 0, False)
    assert should_stop(p, 3, 1, last_failed_was_final=False)
    assert not should_stop(p, 3, 1, last_failed_was_final=True)


def test_one_at_a_time_non_last_failure_fails_even_if_counts_look_right():
    # 3 of 4 succeeded, but the failure was not on the last instance
    assert not succeeded(plan(ONE, 4), 4, 3, failed_last_only=False)
    assert not succeeded(plan(ONE, 4), 4, 2, failed_last_only=True)


def test_one_at_a_time_single_instance_must_succeed():
    p = plan(ONE, 1)
    assert succeeded(p, 1, 1, False)
    # the single instance is also "the last" one, but it must still succeed
    assert not succeeded(p, 1, 0, failed_last_only=True)
    assert simulate(p, [False]) == (False, 1)


def test_no_instances_never_succeeds():
    for config in (ONE, HALF, ALL):
        assert not succeeded(plan(config, 0), 0, 0, False)


# ---------------------------------------------------------------- custom configurations


def test_host_count_six_of_nine():
    p = plan({"type": "HOST_COUNT", "value": 6}, 9)
    assert (p.concurrency, p.min_healthy) == (3, 6)
    assert succeeded(p, 9, 6, False)
    assert not succeeded(p, 9, 5, False)
    assert not should_stop(p, 9, 3, False)
    assert should_stop(p, 9, 4, False)


def test_fleet_percent_forty_of_nine_rounds_up():
    p = plan({"type": "FLEET_PERCENT", "value": 40}, 9)
    assert p.min_healthy == 4  # ceil(3.6)
    assert p.concurrency == 5
    assert succeeded(p, 9, 4, False)
    assert not succeeded(p, 9, 3, False)


def test_values_given_as_strings_are_accepted():
    assert plan({"type": "HOST_COUNT", "value": "6"}, 9) == plan({"type": "HOST_COUNT", "value": 6}, 9)


@pytest.mark.parametrize("config", [{"type": "HOST_COUNT", "value": 0}, {"type": "FLEET_PERCENT", "value": 0}])
def test_minimum_zero_still_needs_one_success(config):
    p = plan(config, 4)
    assert p.concurrency == 4
    assert not succeeded(p, 4, 0, False)
    assert succeeded(p, 4, 1, False)
    assert not should_stop(p, 4, 3, False)
    assert should_stop(p, 4, 4, False)


def test_host_count_at_least_fleet_size_deploys_one_at_a_time_and_needs_all():
    p = plan({"type": "HOST_COUNT", "value": 9}, 9)
    assert p.concurrency == 1
    assert not succeeded(p, 9, 8, False)
    assert succeeded(p, 9, 9, False)


def test_unknown_type_is_refused():
    with pytest.raises(ValueError, match="HOST_COUNT or FLEET_PERCENT"):
        plan({"type": "PERCENT", "value": 1}, 3)


# ---------------------------------------------------------------- explain


def test_explain_states_the_numbers():
    text = explain("CodeDeployDefault.HalfAtATime", plan(HALF, 9), 9)
    assert "CodeDeployDefault.HalfAtATime" in text
    assert "up to 4 of 9" in text
    assert "at least 5" in text
    assert "at least 1 succeed" in explain("CodeDeployDefault.AllAtOnce", plan(ALL, 3), 3)


def test_explain_one_at_a_time_mentions_last_instance_rule():
    text = explain("CodeDeployDefault.OneAtATime", plan(ONE, 3), 3)
    assert "one instance at a time over 3" in text
    assert "last" in text
