"""BlockTraffic and AllowTraffic, and weight shifts, on the load balancer stand-in.

CodeDeploy does these itself (the agent only reports them), so they run in the control plane:
block = deregister the instance and wait until its connections have drained; allow = register it
and wait until the target group's health checks pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.services.cloudwatch.time_scale import TimeScale

# Emulated seconds CodeDeploy waits for a target to drain or to become healthy.
TRAFFIC_WAIT = 3600.0


@dataclass
class TargetGroupPair:
    """The two target groups of a canary/linear group: `live` serves now, `idle` gets the replacement."""

    live: str
    idle: str
    load_balancers: list[str]


class TrafficControl:
    def __init__(self, load_balancing, scale: TimeScale):
        self.lb = load_balancing
        self.scale = scale

    def target_groups(self, group: dict) -> list[str]:
        """Every target group the deployment group's loadBalancerInfo names (NotFound if one is missing)."""
        info = group.get("loadBalancerInfo") or {}
        pairs = info.get("targetGroupPairInfoList") or []
        if pairs:
            names = [g["name"] for g in pairs[0]["targetGroups"]]
            for name in names:
                self.lb.get_target_group(name)
            return names
        return self.lb.target_groups_for(info)

    def block(self, target_groups: list[str], instance_id: str) -> tuple[bool, str]:
        """Deregister from every group it is in, then wait for draining to finish."""
        draining = [tg for tg in target_groups if self.lb.is_registered(tg, instance_id)]
        for tg in draining:
            self.lb.deregister(tg, instance_id)
        for tg in draining:
            if not self.lb.wait_drained(tg, instance_id, timeout=self.scale.real(TRAFFIC_WAIT)):
                return False, f"Instance {instance_id} did not finish draining from target group {tg}"
        if not draining:
            return True, f"Instance {instance_id} was not registered with {', '.join(target_groups)}"
        return True, f"Deregistered from {', '.join(draining)}"

    def allow(self, target_groups: list[str], instance: dict) -> tuple[bool, str]:
        """Register with every group and wait until each reports the target healthy."""
        for tg in target_groups:
            if not self.lb.is_registered(tg, instance["instanceId"]):
                self.lb.register(tg, instance)
        for tg in target_groups:
            ok, reason = self.lb.wait_healthy(tg, instance["instanceId"], timeout=self.scale.real(TRAFFIC_WAIT))
            if not ok:
                return False, (f"Instance {instance['instanceId']} did not pass the health checks of target group "
                               f"{tg}: {reason}")
        return True, f"Registered with {', '.join(target_groups)} and healthy"

    def pair(self, group: dict) -> TargetGroupPair | None:
        """The live/idle split of a targetGroupPairInfoList group, from the load balancers' weights."""
        pairs = (group.get("loadBalancerInfo") or {}).get("targetGroupPairInfoList") or []
        if not pairs:
            return None
        first, second = (g["name"] for g in pairs[0]["targetGroups"])
        lbs = sorted(set(self.lb.load_balancers_forwarding_to(first)) | set(self.lb.load_balancers_forwarding_to(second)))
        if not lbs:
            raise ValueError(f"No load balancer forwards to target group {first} or {second}: create one that "
                             f"forwards to both (weights 100 and 0)")
        weights = self.lb.weights(lbs[0])
        if weights.get(second, 0) > weights.get(first, 0):
            first, second = second, first
        return TargetGroupPair(live=first, idle=second, load_balancers=lbs)

    def shift(self, pair: TargetGroupPair, replacement_percent: int) -> None:
        """Send `replacement_percent` of every listed load balancer's traffic to the idle group."""
        for name in pair.load_balancers:
            weights = dict(self.lb.weights(name))
            weights.update({pair.idle: replacement_percent, pair.live: 100 - replacement_percent})
            self.lb.set_weights(name, weights)
