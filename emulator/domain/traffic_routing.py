"""Traffic routing configurations (TimeBasedCanary, TimeBasedLinear, AllAtOnce) and the weight
steps they become, plus the checks on a deployment group's traffic settings.

AWS offers these shapes for Lambda and ECS; pipelocal applies them to blue/green deployments on
its EC2 stand-in by moving the load balancer's weights between two target groups, so a release can
be rehearsed the way Argo Rollouts or Flagger run one.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.domain.errors import InvalidField

ROUTING_TYPES = ("TimeBasedCanary", "TimeBasedLinear", "AllAtOnce")


def _canary(percent: int, minutes: int) -> dict:
    return {"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": percent, "canaryInterval": minutes}}


def _linear(percent: int, minutes: int) -> dict:
    return {"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": percent, "linearInterval": minutes}}


# AWS's predefined names (deployment-configurations.md), with the routing each one means.
PREDEFINED = {
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": _linear(10, 1),
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": _linear(10, 3),
    "CodeDeployDefault.ECSCanary10Percent5Minutes": _canary(10, 5),
    "CodeDeployDefault.ECSCanary10Percent15Minutes": _canary(10, 15),
    "CodeDeployDefault.ECSAllAtOnce": {"type": "AllAtOnce"},
    "CodeDeployDefault.LambdaCanary10Percent5Minutes": _canary(10, 5),
    "CodeDeployDefault.LambdaCanary10Percent10Minutes": _canary(10, 10),
    "CodeDeployDefault.LambdaCanary10Percent15Minutes": _canary(10, 15),
    "CodeDeployDefault.LambdaCanary10Percent30Minutes": _canary(10, 30),
    "CodeDeployDefault.LambdaLinear10PercentEvery1Minute": _linear(10, 1),
    "CodeDeployDefault.LambdaLinear10PercentEvery2Minutes": _linear(10, 2),
    "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes": _linear(10, 3),
    "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes": _linear(10, 10),
    "CodeDeployDefault.LambdaAllAtOnce": {"type": "AllAtOnce"},
}


@dataclass(frozen=True)
class Step:
    """Send `percent` of traffic to the replacement environment, then wait `wait_minutes`."""

    percent: int
    wait_minutes: int


def validate(config) -> dict:
    """A trafficRoutingConfig as stored; InvalidField("trafficRoutingConfig") says what to change."""
    if not isinstance(config, dict):
        raise InvalidField("trafficRoutingConfig", "trafficRoutingConfig: expected an object with a type")
    kind = config.get("type")
    if kind not in ROUTING_TYPES:
        raise InvalidField("trafficRoutingConfig", f"trafficRoutingConfig.type {kind!r}: expected one of "
                                                   f"{', '.join(ROUTING_TYPES)}")
    if kind == "AllAtOnce":
        return {"type": "AllAtOnce"}
    key, percent_key, interval_key = (("timeBasedCanary", "canaryPercentage", "canaryInterval")
                                      if kind == "TimeBasedCanary" else
                                      ("timeBasedLinear", "linearPercentage", "linearInterval"))
    body = config.get(key)
    if not isinstance(body, dict):
        raise InvalidField("trafficRoutingConfig", f"trafficRoutingConfig.{key}: required for type {kind}, "
                                                   f"with {percent_key} and {interval_key}")
    percent, interval = body.get(percent_key), body.get(interval_key)
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 99:
        raise InvalidField("trafficRoutingConfig", f"trafficRoutingConfig.{key}.{percent_key} {percent!r}: "
                                                   "expected a whole percentage from 1 to 99")
    if isinstance(interval, bool) or not isinstance(interval, int) or not 1 <= interval <= 2880:
        raise InvalidField("trafficRoutingConfig", f"trafficRoutingConfig.{key}.{interval_key} {interval!r}: "
                                                   "expected whole minutes from 1 to 2880")
    return {"type": kind, key: {percent_key: percent, interval_key: interval}}


def steps(config: dict | None) -> list[Step]:
    """The weight steps a routing makes; the last one always sends everything to the replacement."""
    if not config or config.get("type") == "AllAtOnce":
        return [Step(100, 0)]
    if config["type"] == "TimeBasedCanary":
        body = config["timeBasedCanary"]
        return [Step(body["canaryPercentage"], body["canaryInterval"]), Step(100, 0)]
    body = config["timeBasedLinear"]
    percent, interval = body["linearPercentage"], body["linearInterval"]
    result, current = [], percent
    while current < 100:
        result.append(Step(current, interval))
        current += percent
    return result + [Step(100, 0)]


def describe(config: dict | None) -> str:
    """One line a user reads to know what the release will do."""
    if not config or config.get("type") == "AllAtOnce":
        return "all traffic moves to the replacement environment at once"
    if config["type"] == "TimeBasedCanary":
        body = config["timeBasedCanary"]
        return (f"canary: {body['canaryPercentage']}% of traffic to the replacement environment, then the rest "
                f"after {body['canaryInterval']} minute(s)")
    body = config["timeBasedLinear"]
    return f"linear: {body['linearPercentage']}% more traffic every {body['linearInterval']} minute(s)"
