"""A target's health state machine: AWS's states, reason codes and thresholds."""

import pytest

from emulator.domain import statuses
from emulator.services.elb.health_check import HealthCheck
from emulator.services.elb.target_health import (
    DRAINING, HEALTHY, INITIAL, UNHEALTHY, UNUSED, CheckResult, TargetHealth,
)

CHECK = HealthCheck(healthyThresholdCount=3, unhealthyThresholdCount=2)
OK = CheckResult(True)
MISMATCH = CheckResult.status(503, CHECK)


def run(health: TargetHealth, *results: CheckResult) -> list[str]:
    states = []
    for result in results:
        before = health.state
        health.observe(result, CHECK)
        if health.state != before:
            statuses.check_transition(statuses.ELB_TARGET, before, health.state)  # every move is in the table
        states.append(health.state)
    return states


def test_a_new_target_starts_registering_and_one_passing_check_makes_it_healthy():
    health = TargetHealth()
    assert (health.state, health.reason) == (INITIAL, "Elb.RegistrationInProgress")
    assert run(health, OK) == [HEALTHY]
    assert (health.reason, health.description) == ("", "")


def test_a_new_target_that_keeps_failing_becomes_unhealthy_after_the_threshold():
    health = TargetHealth()
    assert run(health, MISMATCH) == [INITIAL]
    assert health.reason == "Elb.InitialHealthChecking"
    assert run(health, MISMATCH) == [UNHEALTHY]
    assert (health.reason, health.description) == ("Target.ResponseCodeMismatch",
                                                   "Health checks failed with these codes: [503]")


def test_healthy_needs_consecutive_failures_and_unhealthy_needs_consecutive_passes():
    health = TargetHealth()
    run(health, OK)
    assert run(health, MISMATCH, OK, MISMATCH) == [HEALTHY] * 3  # never two failures in a row
    assert run(health, OK, CheckResult.timeout(), CheckResult.timeout()) == [HEALTHY, HEALTHY, UNHEALTHY]
    assert health.reason == "Target.Timeout"
    assert run(health, OK, OK, CheckResult.connection_failed("refused"), OK, OK) == [UNHEALTHY] * 5
    assert health.reason == "Target.FailedHealthChecks"  # the latest failure's reason
    assert run(health, OK) == [HEALTHY]


def test_draining_and_unused_targets_ignore_checks():
    for state in (DRAINING, UNUSED):
        health = TargetHealth(state, "r", "d")
        assert not health.observe(OK, CHECK)
        assert health.state == state


def test_matcher_ranges_and_lists():
    check = HealthCheck(matcher="200-299,302")
    assert check.matches(204) and check.matches(302) and not check.matches(301) and not check.matches(500)
    assert CheckResult.status(404, check).reason == "Target.ResponseCodeMismatch"


@pytest.mark.parametrize("before, after", [(None, "initial"), (None, "unused"), ("initial", "healthy"),
                                           ("healthy", "draining"), ("draining", "unused"), ("draining", "initial"),
                                           ("unused", "initial")])
def test_transition_table_allows_the_lifecycle(before, after):
    statuses.check_transition(statuses.ELB_TARGET, before, after)


@pytest.mark.parametrize("before, after", [(None, "healthy"), ("draining", "healthy"), ("unused", "healthy")])
def test_transition_table_refuses_shortcuts(before, after):
    with pytest.raises(statuses.TransitionRefused):
        statuses.check_transition(statuses.ELB_TARGET, before, after)
