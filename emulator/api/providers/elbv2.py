"""Elastic Load Balancing v2's API (2015-12-01, query protocol) over the load balancer stand-in:
target groups, targets and their health, application load balancers and their one listener,
whose forward action (with weights) is the stand-in's routing."""

from __future__ import annotations

from emulator.api.aws_protocol import AwsError

DEREGISTRATION_DELAY = "deregistration_delay.timeout_seconds"
VPC = "vpc-pipelocal"
ZONES = [{"ZoneName": "us-east-1a", "SubnetId": "subnet-pipelocal"}]


class Elbv2Provider:
    NOT_FOUND = {"TargetGroup": "TargetGroupNotFoundException", "LoadBalancer": "LoadBalancerNotFoundException",
                 "Instance": "InvalidTargetException", "Listener": "ListenerNotFoundException"}
    CONFLICT = {"CreateTargetGroup": "DuplicateTargetGroupNameException",
                "CreateLoadBalancer": "DuplicateLoadBalancerNameException",
                "CreateListener": "DuplicateListenerException",
                "DeleteTargetGroup": "ResourceInUseException", "*": "ResourceInUseException"}
    INVALID = {"RegisterTargets": "InvalidTargetException", "*": "ValidationError"}

    def __init__(self, load_balancing, fleet):
        self.lb = load_balancing
        self.fleet = fleet

    # ------------------------------------------------------------ target groups

    def CreateTargetGroup(self, p: dict) -> dict:
        if p.get("TargetType", "instance") != "instance":
            raise AwsError("ValidationError", f"TargetType {p['TargetType']!r}: pipelocal's targets are instances")
        if p.get("Protocol", "HTTP") not in ("HTTP",):
            raise AwsError("ValidationError", f"Protocol {p['Protocol']!r}: pipelocal's target groups speak HTTP")
        check = {key: p[field] for field, key in (
            ("HealthCheckPath", "path"), ("HealthCheckIntervalSeconds", "intervalSeconds"),
            ("HealthCheckTimeoutSeconds", "timeoutSeconds"), ("HealthyThresholdCount", "healthyThresholdCount"),
            ("UnhealthyThresholdCount", "unhealthyThresholdCount")) if field in p}
        if (p.get("Matcher") or {}).get("HttpCode"):
            check["matcher"] = p["Matcher"]["HttpCode"]
        if p["Name"] in {g["targetGroupName"] for g in self.lb.list_target_groups()}:
            existing = self.lb.get_target_group(p["Name"])
            if existing["healthCheck"] == {**existing["healthCheck"], **check}:
                return {"TargetGroups": [self._target_group(existing)]}  # AWS: same settings, same group
        return {"TargetGroups": [self._target_group(self.lb.create_target_group(p["Name"], check or None))]}

    def DescribeTargetGroups(self, p: dict) -> dict:
        groups = self.lb.list_target_groups()
        if p.get("Names"):
            groups = [self.lb.get_target_group(name) for name in p["Names"]]
        if p.get("TargetGroupArns"):
            groups = [self._group_by_arn(arn) for arn in p["TargetGroupArns"]]
        if p.get("LoadBalancerArn"):
            name = self._balancer_by_arn(p["LoadBalancerArn"])["loadBalancerName"]
            groups = [g for g in groups if name in g["loadBalancerNames"]]
        return {"TargetGroups": [self._target_group(g) for g in groups]}

    def DeleteTargetGroup(self, p: dict) -> dict:
        self.lb.delete_target_group(self._group_by_arn(p["TargetGroupArn"])["targetGroupName"])
        return {}

    def DescribeTargetGroupAttributes(self, p: dict) -> dict:
        group = self._group_by_arn(p["TargetGroupArn"])
        return {"Attributes": [{"Key": DEREGISTRATION_DELAY, "Value": str(int(group["deregistrationDelaySeconds"]))},
                               {"Key": "stickiness.enabled", "Value": "false"},
                               {"Key": "load_balancing.algorithm.type", "Value": "round_robin"}]}

    def RegisterTargets(self, p: dict) -> dict:
        name = self._group_by_arn(p["TargetGroupArn"])["targetGroupName"]
        for target in p["Targets"]:
            self._port(target)
            self.lb.register(name, self._instance(target["Id"]))
        return {}

    def DeregisterTargets(self, p: dict) -> dict:
        name = self._group_by_arn(p["TargetGroupArn"])["targetGroupName"]
        registered = {t["instanceId"] for t in self.lb.targets(name)}
        for target in p["Targets"]:
            instance_id = self._instance_id(target["Id"])
            if instance_id not in registered:
                raise AwsError("InvalidTargetException", f"The target {target['Id']} is not registered with target "
                                                         f"group {name}")
            self.lb.deregister(name, instance_id)
        return {}

    def DescribeTargetHealth(self, p: dict) -> dict:
        group = self._group_by_arn(p["TargetGroupArn"])
        targets = self.lb.targets(group["targetGroupName"])
        if p.get("Targets"):
            wanted = {self._instance_id(t["Id"]) for t in p["Targets"]}
            known = {t["instanceId"]: t for t in targets}
            targets = [known.get(i, {"instanceId": i, "state": "unused", "reason": "Target.NotRegistered",
                                     "description": "Target is not registered to the target group"}) for i in wanted]
        return {"TargetHealthDescriptions": [{
            "Target": {"Id": t["instanceId"], "Port": group["port"]}, "HealthCheckPort": str(group["port"]),
            "TargetHealth": {k: v for k, v in (("State", t["state"]), ("Reason", t.get("reason")),
                                               ("Description", t.get("description"))) if v}} for t in targets]}

    # ------------------------------------------------------------ load balancers and the listener

    def CreateLoadBalancer(self, p: dict) -> dict:
        if p.get("Type", "application") != "application":
            raise AwsError("ValidationError", f"Type {p['Type']!r}: pipelocal's load balancers are application "
                                              "load balancers")
        names = {b["loadBalancerName"] for b in self.lb.list_load_balancers()}
        if p["Name"] in names:  # AWS: idempotent for the same settings (pipelocal has no others to differ)
            return {"LoadBalancers": [self._load_balancer(self.lb.get_load_balancer(p["Name"]))]}
        return {"LoadBalancers": [self._load_balancer(self.lb.create_load_balancer(p["Name"], listener=False))]}

    def DescribeLoadBalancers(self, p: dict) -> dict:
        balancers = self.lb.list_load_balancers()
        if p.get("Names"):
            balancers = [self.lb.get_load_balancer(name) for name in p["Names"]]
        if p.get("LoadBalancerArns"):
            balancers = [self._balancer_by_arn(arn) for arn in p["LoadBalancerArns"]]
        return {"LoadBalancers": [self._load_balancer(b) for b in balancers]}

    def DeleteLoadBalancer(self, p: dict) -> dict:
        self.lb.delete_load_balancer(self._balancer_by_arn(p["LoadBalancerArn"])["loadBalancerName"])
        return {}

    def CreateListener(self, p: dict) -> dict:
        balancer = self._balancer_by_arn(p["LoadBalancerArn"])
        if balancer.get("listenerArn"):
            raise AwsError("TooManyListenersException", f"Load balancer {balancer['loadBalancerName']} already has "
                                                        "its listener: pipelocal load balancers have one; change it "
                                                        "with ModifyListener")
        if p.get("Protocol", "HTTP") != "HTTP":
            raise AwsError("UnsupportedProtocolException", f"Protocol {p['Protocol']!r}: pipelocal listeners speak "
                                                           "HTTP")
        weights = self._weights(p["DefaultActions"])
        doc = self.lb.set_listener(balancer["loadBalancerName"], weights, p.get("Port", 80))
        return {"Listeners": [self._listener(doc)]}

    def DescribeListeners(self, p: dict) -> dict:
        if p.get("LoadBalancerArn"):
            balancers = [self._balancer_by_arn(p["LoadBalancerArn"])]
        else:
            balancers = self.lb.list_load_balancers()
        listeners = [self._listener(b) for b in balancers if b.get("listenerArn")]
        if p.get("ListenerArns"):
            known = {listener["ListenerArn"]: listener for listener in listeners}
            missing = [arn for arn in p["ListenerArns"] if arn not in known]
            if missing:
                raise AwsError("ListenerNotFoundException", f"Listener {missing[0]} not found")
            listeners = [known[arn] for arn in p["ListenerArns"]]
        return {"Listeners": listeners}

    def ModifyListener(self, p: dict) -> dict:
        balancer = self._balancer_by_listener(p["ListenerArn"])
        if p.get("DefaultActions"):
            self.lb.set_weights(balancer["loadBalancerName"], self._weights(p["DefaultActions"]))
        return {"Listeners": [self._listener(self.lb.get_load_balancer(balancer["loadBalancerName"]))]}

    def DeleteListener(self, p: dict) -> dict:
        self.lb.remove_listener(self._balancer_by_listener(p["ListenerArn"])["loadBalancerName"])
        return {}

    # ------------------------------------------------------------ shapes and lookups

    def _weights(self, actions: list[dict]) -> dict[str, int]:
        forwards = [a for a in actions if a.get("Type") == "forward"]
        if len(forwards) != 1 or len(actions) != 1:
            raise AwsError("ValidationError", "DefaultActions: pipelocal listeners take exactly one action of Type "
                                              "forward (with TargetGroupArn or ForwardConfig.TargetGroups)")
        action = forwards[0]
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
        if groups:
            return {self._group_by_arn(g["TargetGroupArn"])["targetGroupName"]: g.get("Weight", 1) for g in groups}
        if not action.get("TargetGroupArn"):
            raise AwsError("ValidationError", "DefaultActions[0]: a forward action needs TargetGroupArn or "
                                              "ForwardConfig.TargetGroups")
        return {self._group_by_arn(action["TargetGroupArn"])["targetGroupName"]: 1}

    def _group_by_arn(self, arn: str) -> dict:
        for group in self.lb.list_target_groups():
            if group["targetGroupArn"] == arn:
                return group
        raise AwsError("TargetGroupNotFoundException", f"Target group {arn!r} not found")

    def _balancer_by_arn(self, arn: str) -> dict:
        for balancer in self.lb.list_load_balancers():
            if balancer["loadBalancerArn"] == arn:
                return balancer
        raise AwsError("LoadBalancerNotFoundException", f"Load balancer {arn!r} not found")

    def _balancer_by_listener(self, arn: str) -> dict:
        for balancer in self.lb.list_load_balancers():
            if balancer.get("listenerArn") == arn:
                return balancer
        raise AwsError("ListenerNotFoundException", f"Listener {arn!r} not found")

    def _instance(self, given: str) -> dict:
        try:
            instance = self.fleet.get(given)
        except LookupError:
            raise AwsError("InvalidTargetException", f"The target Id {given} is not a running instance") from None
        if instance.get("state") != "running":
            raise AwsError("InvalidTargetException", f"The target Id {given} is not in running state")
        return instance

    def _instance_id(self, given: str) -> str:
        try:
            return self.fleet.get(given)["instanceId"]
        except LookupError:
            return given

    @staticmethod
    def _port(target: dict) -> None:
        if target.get("Port", 80) != 80:
            raise AwsError("ValidationError", f"Target {target['Id']} Port {target['Port']}: instances serve the app "
                                              "on port 80")

    def _target_group(self, g: dict) -> dict:
        check = g["healthCheck"]
        return {"TargetGroupArn": g["targetGroupArn"], "TargetGroupName": g["targetGroupName"], "Protocol": "HTTP",
                "Port": g["port"], "VpcId": VPC, "HealthCheckProtocol": "HTTP", "HealthCheckPort": "traffic-port",
                "HealthCheckEnabled": True, "HealthCheckIntervalSeconds": check["intervalSeconds"],
                "HealthCheckTimeoutSeconds": check["timeoutSeconds"],
                "HealthyThresholdCount": check["healthyThresholdCount"],
                "UnhealthyThresholdCount": check["unhealthyThresholdCount"], "HealthCheckPath": check["path"],
                "Matcher": {"HttpCode": check["matcher"]}, "LoadBalancerArns": g["loadBalancerArns"],
                "TargetType": "instance", "ProtocolVersion": "HTTP1", "IpAddressType": "ipv4"}

    def _load_balancer(self, b: dict) -> dict:
        return {"LoadBalancerArn": b["loadBalancerArn"], "DNSName": b.get("dnsName") or "",
                "CanonicalHostedZoneId": "Z35SXDOTRQ7X7K", "CreatedTime": b["createdTime"],
                "LoadBalancerName": b["loadBalancerName"], "Scheme": "internet-facing", "VpcId": VPC,
                "State": {"Code": "active"}, "Type": "application", "AvailabilityZones": ZONES,
                "IpAddressType": "ipv4"}

    def _listener(self, b: dict) -> dict:
        groups = [{"TargetGroupArn": self.lb.get_target_group(name)["targetGroupArn"], "Weight": weight}
                  for name, weight in b["weights"].items()]
        action = {"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}
        if len(groups) == 1:
            action["TargetGroupArn"] = groups[0]["TargetGroupArn"]
        return {"ListenerArn": b["listenerArn"], "LoadBalancerArn": b["loadBalancerArn"],
                "Port": b.get("listenerPort") or 80, "Protocol": "HTTP", "DefaultActions": [action]}
