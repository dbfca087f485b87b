"""Health checks: a GET of the group's path on each target every interval, judged by the matcher
and the timeout. Intervals run on the CloudWatch time scale; the timeout too, but never below one
real second, so a busy machine does not fail checks that a real network would pass."""

from __future__ import annotations

import aiohttp

from emulator.services.cloudwatch.time_scale import TimeScale
from emulator.services.elb.health_check import HealthCheck
from emulator.services.elb.target_health import CheckResult

MIN_REAL_TIMEOUT = 1.0


def check_url(target_url: str, check: HealthCheck) -> str:
    return target_url.rstrip("/") + check.path


def real_timeout(check: HealthCheck, scale: TimeScale) -> float:
    return max(MIN_REAL_TIMEOUT, scale.real(check.timeoutSeconds))


async def run_check(session: aiohttp.ClientSession, target_url: str, check: HealthCheck,
                    scale: TimeScale) -> CheckResult:
    """One check, as ALB makes it: a GET whose answer code must match within the timeout."""
    try:
        async with session.get(check_url(target_url, check), allow_redirects=False,
                               headers={"User-Agent": "ELB-HealthChecker/2.0"},
                               timeout=aiohttp.ClientTimeout(total=real_timeout(check, scale))) as answer:
            await answer.read()
            return CheckResult.status(answer.status, check)
    except TimeoutError:
        return CheckResult.timeout()
    except (aiohttp.ClientError, OSError) as exc:
        return CheckResult.connection_failed(type(exc).__name__)
