"""CodeDeploy's EC2/on-premises deployment configurations and their success arithmetic.

Minimum healthy hosts decide both how many instances deploy at once (the rest must stay
healthy) and whether the deployment succeeded. OneAtATime has its own documented rule: any
failure fails the deployment, except a failure on the last instance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PREDEFINED = {
    "CodeDeployDefault.OneAtATime": {"type": "MOST_CONCURRENCY", "value": 1},
    "CodeDeployDefault.HalfAtATime": {"type": "FLEET_PERCENT", "value": 50},
    "CodeDeployDefault.AllAtOnce": {"type": "HOST_COUNT", "value": 0},
}
DEFAULT_CONFIG = "CodeDeployDefault.OneAtATime"


@dataclass(frozen=True)
class Plan:
    concurrency: int
    min_healthy: int
    one_at_a_time: bool


def plan(minimum_healthy_hosts: dict, instance_count: int) -> Plan:
    kind = minimum_healthy_hosts["type"]
    value = int(minimum_healthy_hosts["value"])
    n = instance_count
    if kind == "MOST_CONCURRENCY":
        return Plan(concurrency=1, min_healthy=n, one_at_a_time=True)
    if kind == "FLEET_PERCENT":
        min_healthy = math.ceil(n * value / 100)
    elif kind == "HOST_COUNT":
        min_healthy = value
    else:
        raise ValueError(f"minimumHealthyHosts.type {kind!r}: expected HOST_COUNT or FLEET_PERCENT")
    return Plan(concurrency=max(1, n - min_healthy), min_healthy=min_healthy, one_at_a_time=False)


def should_stop(p: Plan, total: int, failed: int, last_failed_was_final: bool) -> bool:
    """True once the deployment can no longer succeed, so remaining instances are skipped."""
    if failed == 0:
        return False
    if p.one_at_a_time:
        return not last_failed_was_final
    return total - failed < max(p.min_healthy, 1)


def succeeded(p: Plan, total: int, succeeded_count: int, failed_last_only: bool) -> bool:
    if total == 0:
        return False
    if p.one_at_a_time:
        if total == 1:
            return succeeded_count == 1
        return succeeded_count == total or (succeeded_count == total - 1 and failed_last_only)
    return succeeded_count >= max(p.min_healthy, 1)


def explain(config_name: str, p: Plan, total: int) -> str:
    """One line a user reads to understand why the deployment passed or failed."""
    if p.one_at_a_time:
        return (f"{config_name}: one instance at a time over {total}; every instance must succeed, "
                "except that a failure on the last one still counts as success")
    return (f"{config_name}: up to {p.concurrency} of {total} instances at a time; "
            f"succeeds when at least {max(p.min_healthy, 1)} succeed")
