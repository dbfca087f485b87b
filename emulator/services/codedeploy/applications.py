"""CodeDeploy applications, deployment groups and deployment configurations."""

from __future__ import annotations

import time
import uuid

from emulator.domain import deployment_math, deployment_style, traffic_routing
from emulator.domain.errors import Conflict, InvalidField, NotFound
from emulator.state.database import Database

APPLICATION = "codedeploy-application"
GROUP = "codedeploy-deployment-group"
CONFIG = "codedeploy-deployment-config"


class Applications:
    def __init__(self, db: Database):
        self.db = db

    def create_application(self, name: str, compute_platform: str = "Server") -> dict:
        if self.db.get(APPLICATION, name):
            raise Conflict(f"Application {name} already exists")
        return self.db.put(APPLICATION, name, {
            "applicationId": str(uuid.uuid4()), "applicationName": name, "createTime": time.time(),
            "computePlatform": compute_platform,
        })

    def get_application(self, name: str) -> dict:
        app = self.db.get(APPLICATION, name)
        if app is None:
            raise NotFound("Application", name)
        return app

    def list_applications(self) -> list[dict]:
        return self.db.list(APPLICATION)

    def create_group(self, application: str, name: str, **options) -> dict:
        self.get_application(application)
        key = f"{application}/{name}"
        if self.db.get(GROUP, key):
            raise Conflict(f"Deployment group {name} already exists for application {application}")
        config = options.get("deploymentConfigName") or deployment_math.DEFAULT_CONFIG
        self.get_config(config)
        if options.get("ec2TagFilters") and (options.get("ec2TagSet") or {}).get("ec2TagSetList"):
            raise ValueError("ec2TagFilters and ec2TagSet cannot both be set on one deployment group")
        group = {
            "applicationName": application,
            "deploymentGroupId": str(uuid.uuid4()),
            "deploymentGroupName": name,
            "deploymentConfigName": config,
            "ec2TagFilters": _tag_filters(options.get("ec2TagFilters"), "ec2TagFilters"),
            "onPremisesInstanceTagFilters": _tag_filters(options.get("onPremisesInstanceTagFilters"),
                                                         "onPremisesInstanceTagFilters"),
            "ec2TagSet": _tag_set(options.get("ec2TagSet"), "ec2TagSet", "ec2TagSetList"),
            "onPremisesTagSet": _tag_set(options.get("onPremisesTagSet"), "onPremisesTagSet",
                                         "onPremisesTagSetList"),
            "serviceRoleArn": options.get("serviceRoleArn", f"arn:aws:iam::{self.db.account}:role/CodeDeployRole"),
            "autoRollbackConfiguration": options.get("autoRollbackConfiguration") or {"enabled": False, "events": []},
            "alarmConfiguration": alarm_configuration(options.get("alarmConfiguration")),
            "computePlatform": "Server",
            **traffic_settings(options),
        }
        return self.db.put(GROUP, key, group, parent=application)

    def get_group(self, application: str, name: str) -> dict:
        self.get_application(application)
        group = self.db.get(GROUP, f"{application}/{name}")
        if group is None:
            raise NotFound("DeploymentGroup", name)
        return group

    def update_group(self, application: str, name: str, **changes) -> dict:
        group = self.get_group(application, name)
        if {"deploymentStyle", "loadBalancerInfo", "blueGreenDeploymentConfiguration"} & set(changes):
            changes.update(traffic_settings({**group, **changes}))
        return self.db.update(GROUP, f"{application}/{name}", **changes)

    def list_groups(self, application: str) -> list[dict]:
        return self.db.list(GROUP, parent=application)

    def create_config(self, name: str, minimum_healthy_hosts: dict | None = None,
                      compute_platform: str = "Server", traffic_routing_config: dict | None = None) -> dict:
        """A custom EC2/on-premises configuration: minimumHealthyHosts HOST_COUNT or FLEET_PERCENT, or a
        trafficRoutingConfig that blue/green groups with two target groups shift weights by."""
        if not name or name in deployment_math.PREDEFINED or name in traffic_routing.PREDEFINED or \
                self.db.get(CONFIG, name):
            raise Conflict(f"Deployment configuration {name!r} already exists")
        if compute_platform != "Server":
            raise ValueError("computePlatform: only Server (EC2/on-premises) configurations are supported")
        if traffic_routing_config is not None:
            if minimum_healthy_hosts:
                raise InvalidField("trafficRoutingConfig", "give either minimumHealthyHosts or trafficRoutingConfig, "
                                                           "not both")
            return self.db.put(CONFIG, name, {
                "deploymentConfigId": str(uuid.uuid4()), "deploymentConfigName": name, "computePlatform": "Server",
                "trafficRoutingConfig": traffic_routing.validate(traffic_routing_config), "createTime": time.time()})
        mhh = minimum_healthy_hosts or {}
        kind, value = mhh.get("type"), mhh.get("value")
        if kind not in ("HOST_COUNT", "FLEET_PERCENT"):
            raise ValueError(f"minimumHealthyHosts.type {kind!r}: expected HOST_COUNT or FLEET_PERCENT")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or \
                (kind == "FLEET_PERCENT" and value > 100):
            raise ValueError(f"minimumHealthyHosts.value {value!r}: expected a whole number "
                             f"{'from 0 to 100' if kind == 'FLEET_PERCENT' else 'of 0 or more'}")
        return self.db.put(CONFIG, name, {
            "deploymentConfigId": str(uuid.uuid4()), "deploymentConfigName": name, "computePlatform": "Server",
            "minimumHealthyHosts": {"type": kind, "value": value}, "createTime": time.time()})

    def list_configs(self) -> list[str]:
        return list(deployment_math.PREDEFINED) + list(traffic_routing.PREDEFINED) + \
            [c["deploymentConfigName"] for c in self.db.list(CONFIG)]

    def delete_config(self, name: str) -> None:
        if name in deployment_math.PREDEFINED or name in traffic_routing.PREDEFINED:
            raise ValueError(f"{name} is predefined and cannot be deleted")
        self.get_config(name)
        self.db.delete(CONFIG, name)

    def get_config(self, name: str) -> dict:
        if name in deployment_math.PREDEFINED:
            return {"deploymentConfigName": name, "computePlatform": "Server",
                    "minimumHealthyHosts": deployment_math.PREDEFINED[name]}
        if name in traffic_routing.PREDEFINED:
            return {"deploymentConfigName": name, "computePlatform": "Server",
                    "minimumHealthyHosts": deployment_math.PREDEFINED["CodeDeployDefault.AllAtOnce"],
                    "trafficRoutingConfig": traffic_routing.PREDEFINED[name]}
        config = self.db.get(CONFIG, name)
        if config is None:
            raise NotFound("DeploymentConfig", name)
        return config


def traffic_settings(options: dict) -> dict:
    """deploymentStyle, loadBalancerInfo and blueGreenDeploymentConfiguration, checked together."""
    style = deployment_style.deployment_style(options.get("deploymentStyle"))
    lb_info = deployment_style.load_balancer_info(options.get("loadBalancerInfo"))
    deployment_style.check_group(style, lb_info)
    settings = {"deploymentStyle": style}
    if lb_info:
        settings["loadBalancerInfo"] = lb_info
    if style["deploymentType"] == "BLUE_GREEN":
        settings["blueGreenDeploymentConfiguration"] = deployment_style.blue_green_configuration(
            options.get("blueGreenDeploymentConfiguration"))
    return settings


_FILTER_TYPES = ("KEY_ONLY", "VALUE_ONLY", "KEY_AND_VALUE")


def _tag_filters(filters, where: str) -> list[dict]:
    if filters is None:
        return []
    if not isinstance(filters, list):
        raise ValueError(f"{where}: expected a list of {{Key, Value, Type}}")
    for i, f in enumerate(filters):
        if not isinstance(f, dict) or f.get("Type", "KEY_AND_VALUE") not in _FILTER_TYPES:
            raise ValueError(f"{where}[{i}]: expected {{Key, Value, Type}} with Type one of {', '.join(_FILTER_TYPES)}")
        kind = f.get("Type", "KEY_AND_VALUE")
        if kind != "VALUE_ONLY" and not f.get("Key"):
            raise ValueError(f"{where}[{i}].Key: required for Type {kind}")
        if kind != "KEY_ONLY" and f.get("Value") is None:
            raise ValueError(f"{where}[{i}].Value: required for Type {kind}")
    return filters


def _tag_set(tag_set, where: str, list_key: str) -> dict:
    """{<list_key>: [[filter, ...], ...]}: at most three groups, every one must match."""
    groups = (tag_set or {}).get(list_key) or []
    if not isinstance(groups, list) or len(groups) > 3:
        raise ValueError(f"{where}.{list_key}: expected a list of at most 3 lists of tag filters")
    return {list_key: [_tag_filters(g, f"{where}.{list_key}[{i}]") for i, g in enumerate(groups)]}


def alarm_configuration(config) -> dict:
    """CloudWatch alarms that stop a deployment: at most 10, each by name."""
    if not config:
        return {"enabled": False, "ignorePollAlarmFailure": False, "alarms": []}
    alarms = config.get("alarms") or []
    if len(alarms) > 10:
        raise ValueError(f"alarmConfiguration.alarms has {len(alarms)} alarms: at most 10 per deployment group")
    for i, alarm in enumerate(alarms):
        if not isinstance(alarm, dict) or not alarm.get("name"):
            raise ValueError(f"alarmConfiguration.alarms[{i}]: expected {{\"name\": \"<alarm name>\"}}")
    return {"enabled": bool(config.get("enabled")), "ignorePollAlarmFailure": bool(config.get("ignorePollAlarmFailure")),
            "alarms": [{"name": a["name"]} for a in alarms]}
