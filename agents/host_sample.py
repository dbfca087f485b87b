"""CPU time and memory of this instance's container, from cgroup v2 (or /proc when absent), so the
control plane can publish host metrics like CloudWatch's CPUUtilization and mem_used_percent."""

from __future__ import annotations

import os
import time

from emulator import contracts

CGROUP = "/sys/fs/cgroup"


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _cpus() -> float:
    quota = (_read(f"{CGROUP}/cpu.max") or "max").split()
    if quota and quota[0] != "max" and len(quota) == 2:
        return max(float(quota[0]) / float(quota[1]), 0.01)
    return float(os.cpu_count() or 1)


def _meminfo(key: str) -> float | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1]) * 1024
    return None


def host_sample() -> contracts.HostSample | None:
    """None when nothing can be read; never raises (a poll must not fail over metrics)."""
    try:
        cpu = None
        for line in (_read(f"{CGROUP}/cpu.stat") or "").splitlines():
            if line.startswith("usage_usec "):
                cpu = float(line.split()[1]) / 1e6
        used = _read(f"{CGROUP}/memory.current")
        limit = _read(f"{CGROUP}/memory.max")
        memory_used = float(used) if used else None
        memory_limit = float(limit) if limit and limit != "max" else _meminfo("MemTotal")
        if cpu is None and memory_used is None:
            return None
        return contracts.HostSample(sampled_at=time.time(), cpu_seconds=cpu, cpus=_cpus(),
                                    memory_used_bytes=memory_used, memory_limit_bytes=memory_limit)
    except (OSError, ValueError):
        return None
