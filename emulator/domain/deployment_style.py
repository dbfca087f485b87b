"""A deployment group's style, load balancer and blue/green settings, checked together.

They depend on one another (traffic control needs a load balancer, blue/green needs traffic
control on EC2), so one function checks the combination and fills AWS's defaults once.
"""

from __future__ import annotations

from emulator.domain.errors import InvalidField

DEPLOYMENT_TYPES = ("IN_PLACE", "BLUE_GREEN")
DEPLOYMENT_OPTIONS = ("WITH_TRAFFIC_CONTROL", "WITHOUT_TRAFFIC_CONTROL")
READY_ACTIONS = ("CONTINUE_DEPLOYMENT", "STOP_DEPLOYMENT")
TERMINATION_ACTIONS = ("TERMINATE", "KEEP_ALIVE")
PROVISIONING_ACTIONS = ("DISCOVER_EXISTING", "COPY_AUTO_SCALING_GROUP")
MAX_WAIT_MINUTES = 2880


def deployment_style(style) -> dict:
    style = style or {}
    kind = style.get("deploymentType", "IN_PLACE")
    option = style.get("deploymentOption", "WITHOUT_TRAFFIC_CONTROL")
    if kind not in DEPLOYMENT_TYPES:
        raise InvalidField("deploymentStyle", f"deploymentStyle.deploymentType {kind!r}: expected "
                                              f"{' or '.join(DEPLOYMENT_TYPES)}")
    if option not in DEPLOYMENT_OPTIONS:
        raise InvalidField("deploymentStyle", f"deploymentStyle.deploymentOption {option!r}: expected "
                                              f"{' or '.join(DEPLOYMENT_OPTIONS)}")
    return {"deploymentType": kind, "deploymentOption": option}


def load_balancer_info(info) -> dict | None:
    """elbInfoList (classic load balancers), targetGroupInfoList, or targetGroupPairInfoList (the two
    target groups whose weights a canary or linear release moves)."""
    if not info:
        return None
    if not isinstance(info, dict):
        raise InvalidField("loadBalancerInfo", "loadBalancerInfo: expected an object")
    result = {}
    for key in ("elbInfoList", "targetGroupInfoList"):
        items = info.get(key) or []
        if not isinstance(items, list) or any(not isinstance(i, dict) or not i.get("name") for i in items):
            raise InvalidField("loadBalancerInfo", f"loadBalancerInfo.{key}: expected a list of {{\"name\": ...}}")
        if items:
            result[key] = [{"name": i["name"]} for i in items]
    pairs = info.get("targetGroupPairInfoList") or []
    if pairs:
        if not isinstance(pairs, list) or len(pairs) != 1:
            raise InvalidField("loadBalancerInfo", "loadBalancerInfo.targetGroupPairInfoList: expected exactly "
                                                   "one pair")
        groups = pairs[0].get("targetGroups") if isinstance(pairs[0], dict) else None
        if not isinstance(groups, list) or len(groups) != 2 or \
                any(not isinstance(g, dict) or not g.get("name") for g in groups):
            raise InvalidField("loadBalancerInfo", "loadBalancerInfo.targetGroupPairInfoList[0].targetGroups: "
                                                   "expected two target groups, each {\"name\": ...}")
        if groups[0]["name"] == groups[1]["name"]:
            raise InvalidField("loadBalancerInfo", "loadBalancerInfo.targetGroupPairInfoList[0].targetGroups: "
                                                   "the two target groups must differ")
        result["targetGroupPairInfoList"] = [{k: v for k, v in pairs[0].items()
                                              if k in ("targetGroups", "prodTrafficRoute", "testTrafficRoute")}]
    if "targetGroupPairInfoList" in result and len(result) > 1:
        raise InvalidField("loadBalancerInfo", "loadBalancerInfo: give either targetGroupPairInfoList or "
                                               "elbInfoList/targetGroupInfoList, not both")
    return result or None


def blue_green_configuration(config) -> dict:
    config = config or {}
    if not isinstance(config, dict):
        raise InvalidField("blueGreenDeploymentConfiguration", "blueGreenDeploymentConfiguration: expected an object")
    terminate = config.get("terminateBlueInstancesOnDeploymentSuccess") or {}
    ready = config.get("deploymentReadyOption") or {}
    green = config.get("greenFleetProvisioningOption") or {}
    checks = (
        (terminate.get("action", "TERMINATE"), TERMINATION_ACTIONS, "terminateBlueInstancesOnDeploymentSuccess.action"),
        (ready.get("actionOnTimeout", "CONTINUE_DEPLOYMENT"), READY_ACTIONS, "deploymentReadyOption.actionOnTimeout"),
        (green.get("action", "DISCOVER_EXISTING"), PROVISIONING_ACTIONS, "greenFleetProvisioningOption.action"),
    )
    for value, allowed, where in checks:
        if value not in allowed:
            raise InvalidField("blueGreenDeploymentConfiguration", f"blueGreenDeploymentConfiguration.{where} "
                                                                   f"{value!r}: expected {' or '.join(allowed)}")
    for value, where in ((terminate.get("terminationWaitTimeInMinutes", 0),
                          "terminateBlueInstancesOnDeploymentSuccess.terminationWaitTimeInMinutes"),
                         (ready.get("waitTimeInMinutes", 0), "deploymentReadyOption.waitTimeInMinutes")):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WAIT_MINUTES:
            raise InvalidField("blueGreenDeploymentConfiguration", f"blueGreenDeploymentConfiguration.{where} "
                                                                   f"{value!r}: expected whole minutes from 0 to "
                                                                   f"{MAX_WAIT_MINUTES}")
    return {
        "terminateBlueInstancesOnDeploymentSuccess": {
            "action": checks[0][0], "terminationWaitTimeInMinutes": terminate.get("terminationWaitTimeInMinutes", 0)},
        "deploymentReadyOption": {"actionOnTimeout": checks[1][0],
                                  "waitTimeInMinutes": ready.get("waitTimeInMinutes", 0)},
        "greenFleetProvisioningOption": {"action": checks[2][0]},
    }


def check_group(style: dict, lb_info: dict | None) -> None:
    """The combinations AWS refuses for EC2/on-premises groups, each with what to change."""
    if style["deploymentOption"] == "WITH_TRAFFIC_CONTROL" and not lb_info:
        raise InvalidField("loadBalancerInfo", "deploymentStyle.deploymentOption WITH_TRAFFIC_CONTROL needs a load "
                                               "balancer: give loadBalancerInfo.targetGroupInfoList (or elbInfoList), "
                                               "or use WITHOUT_TRAFFIC_CONTROL")
    if style["deploymentType"] == "BLUE_GREEN" and style["deploymentOption"] != "WITH_TRAFFIC_CONTROL":
        raise InvalidField("deploymentStyle", "a BLUE_GREEN deployment on EC2/on-premises reroutes traffic through a "
                                              "load balancer: set deploymentStyle.deploymentOption to "
                                              "WITH_TRAFFIC_CONTROL and give loadBalancerInfo")
    if lb_info and "targetGroupPairInfoList" in lb_info and style["deploymentType"] != "BLUE_GREEN":
        raise InvalidField("loadBalancerInfo", "loadBalancerInfo.targetGroupPairInfoList is for blue/green groups "
                                               "(the replacement environment gets the second target group); use "
                                               "targetGroupInfoList for an in-place group")
