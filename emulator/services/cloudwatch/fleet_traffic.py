"""A steady request rate to the fleet's own apps, published as metrics, so an alarm has data to
watch during and after a deployment without the user doing anything.

Only the fleet's own apps are requested, at a bounded rate: the 127.0.0.1 port published for a
launched instance, or, for a self-registered instance (docker-compose), port 80 at the address it
registered on the project's network, since a control plane in a container has no such loopback. Per flush, each instance and each deployment group it belongs to gets
`Pipelocal/App` metrics named after the load balancer's: RequestCount, HTTPCode_Target_5XX_Count,
ErrorRate (percent), TargetResponseTime (seconds; raw values, so p99 works).
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from emulator.services.cloudwatch.metric_store import MetricStore
from emulator.services.cloudwatch.time_scale import TimeScale

NAMESPACE = "Pipelocal/App"
MAX_RATE = 50.0  # requests per second per instance
log = logging.getLogger(__name__)


@dataclass
class _Tally:
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(self, status: int, seconds: float) -> None:
        self.requests += 1
        self.errors += status >= 500
        self.latencies.append(seconds)


def _loopback(url: str) -> bool:
    return urllib.parse.urlsplit(url).hostname in ("127.0.0.1", "localhost")


def target_url(instance: dict) -> str | None:
    if instance.get("external") and instance.get("privateIpAddress"):
        return f"http://{instance['privateIpAddress']}/"
    url = instance.get("appUrl") or ""
    return url if url and _loopback(url) else None


class FleetTraffic:
    def __init__(self, metrics: MetricStore, scale: TimeScale, targets: Callable[[], list[tuple[dict, list[str]]]],
                 rate: float = 5.0):
        """`targets()`: (instance document, names of the deployment groups it belongs to) per running instance."""
        self.metrics = metrics
        self.scale = scale
        self.targets = targets
        self.rate = 0.0
        self.set_rate(rate)
        self._tallies: dict[tuple[str, str], _Tally] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fleet-traffic")
        self._thread: threading.Thread | None = None
        self.last_status: dict[str, int] = {}

    def set_rate(self, rate: float) -> float:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= MAX_RATE:
            raise ValueError(f"traffic rate {rate!r}: expected 0 to {MAX_RATE:g} requests per second per instance")
        self.rate = float(rate)
        return self.rate

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="fleet-traffic", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def request(self, instance: dict, groups: list[str]) -> None:
        url = target_url(instance)
        if not url:
            return
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, ValueError, http.client.HTTPException):
            return  # nothing answers (not deployed yet, or restarting): no request was served
        elapsed = time.monotonic() - started
        self.last_status[instance["instanceId"]] = status
        with self._lock:
            for key in [("InstanceId", instance["instanceId"])] + [("DeploymentGroupName", g) for g in groups]:
                self._tallies.setdefault(key, _Tally()).add(status, elapsed)

    def flush(self, now: float | None = None) -> int:
        """Publishes what was counted since the last flush; returns the number of datums."""
        with self._lock:
            tallies, self._tallies = self._tallies, {}
        data = []
        for (dim, value), t in tallies.items():
            dims = [{"Name": dim, "Value": value}]
            data += [
                {"MetricName": "RequestCount", "Dimensions": dims, "Value": t.requests, "Unit": "Count"},
                {"MetricName": "HTTPCode_Target_5XX_Count", "Dimensions": dims, "Value": t.errors, "Unit": "Count"},
                {"MetricName": "ErrorRate", "Dimensions": dims, "Value": 100.0 * t.errors / t.requests,
                 "Unit": "Percent"},
            ]
            for i in range(0, len(t.latencies), 150):
                data.append({"MetricName": "TargetResponseTime", "Dimensions": dims,
                             "Values": t.latencies[i:i + 150], "Unit": "Seconds"})
        if data:
            for i in range(0, len(data), 1000):
                self.metrics.put_metric_data(NAMESPACE, data[i:i + 1000], now=now)
        return len(data)

    def _loop(self) -> None:
        next_flush = time.monotonic()
        while not self._stop.is_set():
            if self.rate <= 0:
                self._stop.wait(1.0)
                continue
            try:
                for instance, groups in self.targets():
                    self._pool.submit(self.request, instance, groups)
                if time.monotonic() >= next_flush:
                    self.flush()
                    next_flush = time.monotonic() + max(0.1, min(1.0, self.scale.real(10)))
            except Exception:  # the generator must outlive a bad moment of the fleet or the store
                log.exception("fleet traffic round failed")
            self._stop.wait(1.0 / self.rate)


def fleet_targets(apps, fleet, cache_seconds: float = 2.0) -> Callable[[], list[tuple[dict, list[str]]]]:
    """Running instances with an app URL, each with the deployment groups whose tags select it."""
    cached: dict = {"at": 0.0, "value": []}

    def targets() -> list[tuple[dict, list[str]]]:
        if time.monotonic() - cached["at"] < cache_seconds:
            return cached["value"]
        groups: dict[str, list[str]] = {}
        for app in apps.list_applications():
            for group in apps.list_groups(app["applicationName"] if isinstance(app, dict) else app):
                filters = group.get("ec2TagFilters") or []
                tag_set = (group.get("ec2TagSet") or {}).get("ec2TagSetList")
                if not filters and not tag_set:
                    continue
                for inst in fleet.matching(filters, tag_set):
                    groups.setdefault(inst["instanceId"], []).append(group["deploymentGroupName"])
        value = [(inst, groups.get(inst["instanceId"], [])) for inst in fleet.running() if target_url(inst)]
        cached.update(at=time.monotonic(), value=value)
        return value

    return targets
