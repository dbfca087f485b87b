"""Traffic routing steps and the deployment group traffic settings checks (pure domain code)."""

from __future__ import annotations

import pytest

from emulator.domain import deployment_style, traffic_routing
from emulator.domain.errors import InvalidField


def test_canary_is_one_step_then_the_rest():
    config = traffic_routing.validate({"type": "TimeBasedCanary",
                                       "timeBasedCanary": {"canaryPercentage": 20, "canaryInterval": 3}})
    assert traffic_routing.steps(config) == [traffic_routing.Step(20, 3), traffic_routing.Step(100, 0)]


def test_linear_adds_the_same_share_every_interval_and_ends_at_100():
    config = traffic_routing.validate({"type": "TimeBasedLinear",
                                       "timeBasedLinear": {"linearPercentage": 30, "linearInterval": 2}})
    assert [(s.percent, s.wait_minutes) for s in traffic_routing.steps(config)] == [
        (30, 2), (60, 2), (90, 2), (100, 0)]


def test_all_at_once_and_predefined_names():
    assert traffic_routing.steps({"type": "AllAtOnce"}) == [traffic_routing.Step(100, 0)]
    assert traffic_routing.steps(traffic_routing.PREDEFINED["CodeDeployDefault.ECSCanary10Percent5Minutes"]) == [
        traffic_routing.Step(10, 5), traffic_routing.Step(100, 0)]
    linear = traffic_routing.steps(traffic_routing.PREDEFINED["CodeDeployDefault.LambdaLinear10PercentEvery1Minute"])
    assert len(linear) == 10 and linear[-1].percent == 100


@pytest.mark.parametrize("config, words", [
    ({"type": "Sideways"}, "TimeBasedCanary, TimeBasedLinear, AllAtOnce"),
    ({"type": "TimeBasedCanary"}, "timeBasedCanary: required"),
    ({"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 0, "canaryInterval": 5}}, "1 to 99"),
    ({"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": 101, "linearInterval": 5}}, "1 to 99"),
    ({"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": 10, "linearInterval": 0}}, "1 to 2880"),
    ({"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": True, "canaryInterval": 5}}, "1 to 99"),
])
def test_bad_routing_names_the_field(config, words):
    with pytest.raises(InvalidField) as info:
        traffic_routing.validate(config)
    assert info.value.field == "trafficRoutingConfig" and words in str(info.value)


def test_group_checks():
    style = deployment_style.deployment_style({"deploymentType": "BLUE_GREEN",
                                               "deploymentOption": "WITH_TRAFFIC_CONTROL"})
    with pytest.raises(InvalidField) as info:
        deployment_style.check_group(style, None)
    assert info.value.field == "loadBalancerInfo"
    no_lb = deployment_style.deployment_style({"deploymentType": "BLUE_GREEN"})
    with pytest.raises(InvalidField) as info:
        deployment_style.check_group(no_lb, {"targetGroupInfoList": [{"name": "tg"}]})
    assert info.value.field == "deploymentStyle"
    pair = deployment_style.load_balancer_info({"targetGroupPairInfoList": [
        {"targetGroups": [{"name": "a"}, {"name": "b"}]}]})
    in_place = deployment_style.deployment_style({"deploymentOption": "WITH_TRAFFIC_CONTROL"})
    with pytest.raises(InvalidField) as info:
        deployment_style.check_group(in_place, pair)
    assert "blue/green" in str(info.value)
    with pytest.raises(InvalidField):
        deployment_style.load_balancer_info({"targetGroupPairInfoList": [{"targetGroups": [{"name": "a"},
                                                                                            {"name": "a"}]}]})


def test_blue_green_defaults_and_limits():
    config = deployment_style.blue_green_configuration(None)
    assert config["terminateBlueInstancesOnDeploymentSuccess"] == {"action": "TERMINATE",
                                                                   "terminationWaitTimeInMinutes": 0}
    assert config["deploymentReadyOption"]["actionOnTimeout"] == "CONTINUE_DEPLOYMENT"
    assert config["greenFleetProvisioningOption"]["action"] == "DISCOVER_EXISTING"
    with pytest.raises(InvalidField) as info:
        deployment_style.blue_green_configuration({"terminateBlueInstancesOnDeploymentSuccess": {
            "terminationWaitTimeInMinutes": 2881}})
    assert "0 to 2880" in str(info.value)
