"""A target group's health check settings: AWS's Application Load Balancer defaults and limits."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

DEFAULTS = {"path": "/", "intervalSeconds": 30, "timeoutSeconds": 5, "healthyThresholdCount": 5,
            "unhealthyThresholdCount": 2, "matcher": "200"}
DEFAULT_DEREGISTRATION_DELAY = 300
_CODES = re.compile(r"^\d{3}(-\d{3})?$")


@dataclass(frozen=True)
class HealthCheck:
    path: str = "/"
    intervalSeconds: int = 30
    timeoutSeconds: int = 5
    healthyThresholdCount: int = 5
    unhealthyThresholdCount: int = 2
    matcher: str = "200"

    def as_dict(self) -> dict:
        return asdict(self)

    def matches(self, status: int) -> bool:
        return status in matcher_codes(self.matcher)


def _integer(options: dict, key: str, low: int, high: int) -> int:
    value = options.get(key, DEFAULTS[key])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or not low <= value <= high:
        raise ValueError(f"health check {key} {value!r}: expected a whole number from {low} to {high}")
    return int(value)


def matcher_codes(matcher: str) -> set[int]:
    """"200", "200,202" or "200-299": HTTP codes from 200 to 499, as ALB accepts them."""
    codes: set[int] = set()
    for part in str(matcher).split(","):
        part = part.strip()
        if not _CODES.match(part):
            raise ValueError(f"health check matcher {matcher!r}: expected codes like \"200\", \"200,202\" or "
                             f"\"200-299\"")
        low, _, high = part.partition("-")
        low_code, high_code = int(low), int(high or low)
        if not 200 <= low_code <= high_code <= 499:
            raise ValueError(f"health check matcher {matcher!r}: codes must be from 200 to 499, low before high")
        codes.update(range(low_code, high_code + 1))
    return codes


def health_check(options: dict | None) -> HealthCheck:
    """Validated settings from user options (any left out take AWS's defaults)."""
    options = dict(options or {})
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"health check option(s) {', '.join(sorted(unknown))}: expected any of "
                         f"{', '.join(DEFAULTS)}")
    path = options.get("path", "/")
    if not isinstance(path, str) or not path.startswith("/") or len(path) > 1024 or any(c.isspace() for c in path):
        raise ValueError(f"health check path {path!r}: expected a path starting with \"/\" (at most 1024 "
                         f"characters, no spaces)")
    interval = _integer(options, "intervalSeconds", 5, 300)
    timeout = _integer(options, "timeoutSeconds", 2, 120)
    if timeout >= interval:
        raise ValueError(f"health check timeoutSeconds ({timeout}) must be less than intervalSeconds ({interval})")
    matcher = str(options.get("matcher", "200"))
    matcher_codes(matcher)
    return HealthCheck(path=path, intervalSeconds=interval, timeoutSeconds=timeout,
                       healthyThresholdCount=_integer(options, "healthyThresholdCount", 2, 10),
                       unhealthyThresholdCount=_integer(options, "unhealthyThresholdCount", 2, 10),
                       matcher=matcher)


def deregistration_delay(value) -> int:
    value = DEFAULT_DEREGISTRATION_DELAY if value is None else value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or not 0 <= value <= 3600:
        raise ValueError(f"deregistration delay {value!r}: expected a whole number of seconds from 0 to 3600")
    return int(value)
