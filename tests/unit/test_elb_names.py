"""Names, ARNs, dimensions and health check settings as Elastic Load Balancing checks them."""

import pytest

from emulator.services.elb import arns
from emulator.services.elb.health_check import DEFAULTS, deregistration_delay, health_check


def test_arns_and_their_cloudwatch_dimensions():
    lb = arns.load_balancer_arn("us-east-1", "000000000000", "web", "0123456789abcdef")
    tg = arns.target_group_arn("us-east-1", "000000000000", "blue", "fedcba9876543210")
    assert lb == "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/0123456789abcdef"
    assert tg == "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/blue/fedcba9876543210"
    assert arns.dimension(lb) == "app/web/0123456789abcdef"
    assert arns.dimension(tg) == "targetgroup/blue/fedcba9876543210"
    assert len(arns.new_id()) == 16 and arns.new_id() != arns.new_id()


@pytest.mark.parametrize("name", ["a", "web-1", "A" * 32, "blue-green"])
def test_good_names(name):
    assert arns.check_name("target group", name) == name


@pytest.mark.parametrize("name", ["", "-web", "web-", "a" * 33, "web_1", "web 1", None, 7])
def test_bad_names_say_what_is_expected(name):
    with pytest.raises(ValueError, match="1 to 32 letters, digits or hyphens"):
        arns.check_name("target group", name)


def test_a_load_balancer_name_may_not_start_with_internal():
    with pytest.raises(ValueError, match='must not start with "internal-"'):
        arns.check_name("load balancer", "internal-web")
    assert arns.check_name("target group", "internal-web")


def test_health_check_defaults_are_albs():
    check = health_check(None)
    assert check.as_dict() == DEFAULTS == {"path": "/", "intervalSeconds": 30, "timeoutSeconds": 5,
                                           "healthyThresholdCount": 5, "unhealthyThresholdCount": 2,
                                           "matcher": "200"}
    assert deregistration_delay(None) == 300
    assert health_check({"path": "/health", "intervalSeconds": 5, "timeoutSeconds": 2}).path == "/health"


@pytest.mark.parametrize("options, message", [
    ({"intervalSeconds": 4}, "intervalSeconds 4: expected a whole number from 5 to 300"),
    ({"timeoutSeconds": 30}, "must be less than intervalSeconds"),
    ({"healthyThresholdCount": 11}, "from 2 to 10"),
    ({"unhealthyThresholdCount": 1}, "from 2 to 10"),
    ({"path": "health"}, 'starting with "/"'),
    ({"matcher": "600"}, "from 200 to 499"),
    ({"matcher": "2xx"}, "expected codes like"),
    ({"intervall": 5}, "intervall: expected any of"),
])
def test_bad_health_checks_are_refused_with_what_to_change(options, message):
    with pytest.raises(ValueError, match=message):
        health_check(options)


@pytest.mark.parametrize("value", [-1, 3601, 1.5, "10"])
def test_bad_deregistration_delay(value):
    with pytest.raises(ValueError, match="0 to 3600"):
        deregistration_delay(value)
