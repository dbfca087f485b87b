"""Which target gets a request: a weighted choice between a listener's target groups (ALB's
forward action with weights, spread smoothly rather than at random), then round robin among a
group's healthy targets, or among all its registered ones when none is healthy (fail-open)."""

from __future__ import annotations

from dataclasses import dataclass, field

from emulator.services.elb.target_health import DRAINING, HEALTHY, INITIAL, UNHEALTHY, TargetHealth

MAX_WEIGHT = 999
MAX_GROUPS = 5  # target groups per forward action


def check_weights(weights: dict) -> dict[str, int]:
    if not isinstance(weights, dict) or not weights:
        raise ValueError("weights: expected at least one target group name with a weight from 0 to 999")
    if len(weights) > MAX_GROUPS:
        raise ValueError(f"weights name {len(weights)} target groups: a listener forwards to at most {MAX_GROUPS}")
    out = {}
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or int(weight) != weight \
                or not 0 <= weight <= MAX_WEIGHT:
            raise ValueError(f"weight of target group {name!r} is {weight!r}: expected a whole number from 0 to "
                             f"{MAX_WEIGHT}")
        out[str(name)] = int(weight)
    if not any(out.values()):
        raise ValueError("weights are all 0: give at least one target group a weight above 0")
    return out


class WeightedChoice:
    """Smooth weighted round robin: over any run of sum(weights) picks, each group is picked exactly
    its weight's number of times, interleaved (weights 1 and 1 alternate)."""

    def __init__(self, weights: dict[str, int]):
        self.weights = {k: w for k, w in weights.items() if w > 0}
        self._current = {k: 0 for k in self.weights}
        self._total = sum(self.weights.values())

    def next(self) -> str | None:
        if not self.weights:
            return None
        for key, weight in self.weights.items():
            self._current[key] += weight
        best = max(self._current, key=lambda k: self._current[k])
        self._current[best] -= self._total
        return best


@dataclass
class Target:
    instance_id: str
    url: str
    health: TargetHealth = field(default_factory=TargetHealth)
    in_flight: int = 0
    drain_until: float | None = None  # wall-clock time the deregistration delay ends

    @property
    def state(self) -> str:
        return self.health.state


class TargetPool:
    """A target group's registered targets in registration order, with its round-robin position."""

    def __init__(self):
        self.targets: dict[str, Target] = {}
        self._position = 0

    def eligible(self) -> list[Target]:
        healthy = [t for t in self.targets.values() if t.state == HEALTHY]
        if healthy:
            return healthy
        return [t for t in self.targets.values() if t.state in (INITIAL, UNHEALTHY)]  # fail-open

    def next(self) -> Target | None:
        eligible = self.eligible()
        if not eligible:
            return None
        self._position += 1
        return eligible[self._position % len(eligible)]

    def counts(self) -> tuple[int, int]:
        """(healthy, unhealthy) as HealthyHostCount and UnHealthyHostCount count them."""
        states = [t.state for t in self.targets.values()]
        return states.count(HEALTHY), states.count(UNHEALTHY)

    def drained(self, instance_id: str) -> bool:
        target = self.targets.get(instance_id)
        return target is None or (target.state == DRAINING and target.in_flight == 0)
