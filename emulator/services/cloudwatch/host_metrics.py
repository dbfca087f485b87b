"""Host metrics from the agents' samples, under the names AWS uses: AWS/EC2 CPUUtilization and
the CloudWatch agent's CWAgent mem_used_percent, per InstanceId."""

from __future__ import annotations

import threading

from emulator import contracts
from emulator.services.cloudwatch.metric_store import MetricStore


class HostMetrics:
    def __init__(self, metrics: MetricStore):
        self.metrics = metrics
        self._last: dict[str, contracts.HostSample] = {}
        self._lock = threading.Lock()

    def record(self, instance_id: str, sample: contracts.HostSample) -> None:
        """CPU needs two samples (a rate over the time between them); memory is published at once."""
        with self._lock:
            previous = self._last.get(instance_id)
            self._last[instance_id] = sample
        dims = [{"Name": "InstanceId", "Value": instance_id}]
        if sample.memory_used_bytes is not None and sample.memory_limit_bytes:
            self.metrics.put_metric_data("CWAgent", [{
                "MetricName": "mem_used_percent", "Dimensions": dims, "Unit": "Percent", "Timestamp": sample.sampled_at,
                "Value": min(100.0, 100.0 * sample.memory_used_bytes / sample.memory_limit_bytes)}],
                now=sample.sampled_at, internal=True)
        if previous and previous.cpu_seconds is not None and sample.cpu_seconds is not None:
            elapsed = sample.sampled_at - previous.sampled_at
            if elapsed > 0.5 and sample.cpu_seconds >= previous.cpu_seconds:
                percent = 100.0 * (sample.cpu_seconds - previous.cpu_seconds) / elapsed / (sample.cpus or 1.0)
                self.metrics.put_metric_data("AWS/EC2", [{
                    "MetricName": "CPUUtilization", "Dimensions": dims, "Unit": "Percent",
                    "Timestamp": sample.sampled_at, "Value": max(0.0, min(100.0, percent))}],
                    now=sample.sampled_at, internal=True)
