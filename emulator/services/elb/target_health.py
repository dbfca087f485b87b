"""One target's health as an Application Load Balancer judges it: the state, AWS's reason code
and description, and how consecutive check results move it between initial, healthy and unhealthy.

A newly registered target needs one passing check to become healthy; after that, the group's
thresholds decide (unhealthy after `unhealthyThresholdCount` consecutive failures, healthy again
after `healthyThresholdCount` consecutive passes).
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.services.elb.health_check import HealthCheck

INITIAL, HEALTHY, UNHEALTHY, UNUSED, DRAINING = "initial", "healthy", "unhealthy", "unused", "draining"

REGISTRATION = ("Elb.RegistrationInProgress", "Target registration is in progress")
INITIAL_CHECKS = ("Elb.InitialHealthChecking", "Initial health checks in progress")
NOT_IN_USE = ("Target.NotInUse", "Target group is not configured to receive traffic from the load balancer")
DEREGISTERING = ("Target.DeregistrationInProgress", "Target deregistration is in progress")
NOT_REGISTERED = ("Target.NotRegistered", "Target is not registered to the target group")


@dataclass(frozen=True)
class CheckResult:
    """One health check: passed, or the reason code and description of its failure."""
    passed: bool
    reason: str = ""
    description: str = ""

    @classmethod
    def status(cls, status: int, check: HealthCheck) -> "CheckResult":
        if check.matches(status):
            return cls(True)
        return cls(False, "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{status}]")

    @classmethod
    def timeout(cls) -> "CheckResult":
        return cls(False, "Target.Timeout", "Request timed out")

    @classmethod
    def connection_failed(cls, detail: str = "") -> "CheckResult":
        return cls(False, "Target.FailedHealthChecks", "Health checks failed" + (f" ({detail})" if detail else ""))


@dataclass
class TargetHealth:
    state: str = INITIAL
    reason: str = REGISTRATION[0]
    description: str = REGISTRATION[1]
    passes: int = 0
    failures: int = 0

    def set(self, state: str, reason: tuple[str, str] | None = None) -> None:
        self.state = state
        self.reason, self.description = reason or ("", "")
        self.passes = self.failures = 0

    def observe(self, result: CheckResult, check: HealthCheck) -> bool:
        """Applies one check result; True if state, reason or description changed."""
        before = (self.state, self.reason, self.description)
        if self.state not in (INITIAL, HEALTHY, UNHEALTHY):
            return False  # draining and unused targets are not checked
        if result.passed:
            self.failures = 0
            self.passes += 1
            if self.state == INITIAL or (self.state == UNHEALTHY and self.passes >= check.healthyThresholdCount):
                self.set(HEALTHY)
        else:
            self.passes = 0
            self.failures += 1
            if self.state == UNHEALTHY or self.failures >= check.unhealthyThresholdCount:
                failures = self.failures
                self.state, self.reason, self.description = UNHEALTHY, result.reason, result.description
                self.failures = failures
            elif self.state == INITIAL:
                self.reason, self.description = INITIAL_CHECKS
        return (self.state, self.reason, self.description) != before
