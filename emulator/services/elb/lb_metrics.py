"""The load balancers' CloudWatch metrics: what the listeners counted, published about once a
real second into the metric store under AWS/ApplicationELB with AWS's names and dimensions.

Per load balancer (LoadBalancer=app/NAME/ID) and per load balancer and target group (plus
TargetGroup=targetgroup/NAME/ID): RequestCount (requests for which a target was chosen),
HTTPCode_Target_{2,3,4,5}XX_Count, TargetResponseTime (seconds; raw values so percentiles work);
per load balancer HTTPCode_ELB_5XX_Count and HTTPCode_ELB_{502,503,504}_Count. Counts are published
only when non-zero, as AWS does. HealthyHostCount and UnHealthyHostCount per load balancer and
target group are published every flush.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from emulator.services.cloudwatch.metric_store import MAX_DATUMS, MAX_VALUES, MetricStore
from emulator.services.cloudwatch.time_scale import TimeScale

NAMESPACE = "AWS/ApplicationELB"
log = logging.getLogger(__name__)


@dataclass
class _Tally:
    counts: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


# (load balancer, target group) -> (LoadBalancer dimension, TargetGroup dimension or None); None if gone
Dimensions = Callable[[str, str | None], tuple[str, str | None] | None]
HostCounts = Callable[[], list[tuple[str, str, int, int]]]  # (lb, group, healthy, unhealthy)


class LoadBalancerMetrics:
    def __init__(self, store: MetricStore, scale: TimeScale, dimensions: Dimensions, host_counts: HostCounts):
        self.store = store
        self.scale = scale
        self.dimensions = dimensions
        self.host_counts = host_counts
        self._tallies: dict[tuple[str, str | None], _Tally] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, load_balancer: str, group: str | None, status: int, seconds: float | None,
               from_target: bool) -> None:
        """One answered request (called on the listeners' loop, so it only counts). `from_target`:
        the target answered `status`; otherwise the load balancer answered it (502/504 after choosing
        a target, 503 when none could be chosen)."""
        chosen = from_target or status != 503
        with self._lock:
            keys = [(load_balancer, None)] + ([(load_balancer, group)] if group and chosen else [])
            for key in keys:
                tally = self._tallies.setdefault(key, _Tally())
                if chosen:
                    tally.counts["RequestCount"] += 1
                if from_target:
                    tally.counts[f"HTTPCode_Target_{status // 100}XX_Count"] += 1
                    if seconds is not None:
                        tally.latencies.append(seconds)
            if not from_target:
                tally = self._tallies.setdefault((load_balancer, None), _Tally())
                tally.counts["HTTPCode_ELB_5XX_Count"] += 1
                tally.counts[f"HTTPCode_ELB_{status}_Count"] += 1

    def datums(self) -> list[dict]:
        with self._lock:
            tallies, self._tallies = self._tallies, {}
        data = []
        for (lb, group), tally in tallies.items():
            dims = self._dims(lb, group)
            if dims is None:
                continue
            for name, value in sorted(tally.counts.items()):
                if value:
                    data.append({"MetricName": name, "Dimensions": dims, "Value": value, "Unit": "Count"})
            for i in range(0, len(tally.latencies), MAX_VALUES):
                data.append({"MetricName": "TargetResponseTime", "Dimensions": dims,
                             "Values": tally.latencies[i:i + MAX_VALUES], "Unit": "Seconds"})
        for lb, group, healthy, unhealthy in self.host_counts():
            dims = self._dims(lb, group)
            if dims is not None:
                data.append({"MetricName": "HealthyHostCount", "Dimensions": dims, "Value": healthy, "Unit": "Count"})
                data.append({"MetricName": "UnHealthyHostCount", "Dimensions": dims, "Value": unhealthy,
                             "Unit": "Count"})
        return data

    def _dims(self, lb: str, group: str | None) -> list[dict] | None:
        found = self.dimensions(lb, group)
        if found is None:
            return None
        lb_dim, tg_dim = found
        dims = [{"Name": "LoadBalancer", "Value": lb_dim}]
        if tg_dim:
            dims.append({"Name": "TargetGroup", "Value": tg_dim})
        return dims

    def flush(self, now: float | None = None) -> int:
        data = self.datums()
        for i in range(0, len(data), MAX_DATUMS):
            self.store.put_metric_data(NAMESPACE, data[i:i + MAX_DATUMS], now=now, internal=True)
        return len(data)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="elb-metrics", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        try:
            self.flush()
        except Exception:
            log.exception("final load balancer metrics flush failed")

    def _loop(self) -> None:
        while not self._stop.wait(max(0.1, min(1.0, self.scale.real(10)))):
            try:
                self.flush()
            except Exception:  # the flusher must outlive a bad moment of the store
                log.exception("load balancer metrics flush failed")
