"""CPU time and memory of this instance's container, from cgroup v2 or v1 (whichever the host
mounts), so the control plane can publish host metrics like CPUUtilization and mem_used_percent."""

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


# "no limit" in cgroup v1 memory.limit_in_bytes is a page-rounded 2^63
_UNLIMITED = 2 ** 62


def _cpus() -> float:
    quota = (_read(f"{CGROUP}/cpu.max") or "max").split()
    if quota and quota[0] != "max" and len(quota) == 2:
        return max(float(quota[0]) / float(quota[1]), 0.01)
    v1_quota, v1_period = _read(f"{CGROUP}/cpu/cpu.cfs_quota_us"), _read(f"{CGROUP}/cpu/cpu.cfs_period_us")
    if v1_quota and v1_period and int(v1_quota) > 0:
        return max(int(v1_quota) / int(v1_period), 0.01)
    return float(os.cpu_count() or 1)


def _cpu_seconds() -> float | None:
    for line in (_read(f"{CGROUP}/cpu.stat") or "").splitlines():
        if line.startswith("usage_usec "):
            return float(line.split()[1]) / 1e6
    v1 = _read(f"{CGROUP}/cpuacct/cpuacct.usage")  # nanoseconds
    return float(v1) / 1e9 if v1 else None


def _memory() -> tuple[float | None, float | None]:
    used = _read(f"{CGROUP}/memory.current") or _read(f"{CGROUP}/memory/memory.usage_in_bytes")
    limit = _read(f"{CGROUP}/memory.max") or _read(f"{CGROUP}/memory/memory.limit_in_bytes")
    if not limit or limit == "max" or float(limit) >= _UNLIMITED:
        return (float(used) if used else None), _meminfo("MemTotal")
    return (float(used) if used else None), float(limit)


def _meminfo(key: str) -> float | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1]) * 1024
    return None


def host_sample() -> contracts.HostSample | None:
    """None when nothing can be read; never raises (a poll must not fail over metrics)."""
    try:
        cpu = _cpu_seconds()
        memory_used, memory_limit = _memory()
        if cpu is None and memory_used is None:
            return None
        return contracts.HostSample(sampled_at=time.time(), cpu_seconds=cpu, cpus=_cpus(),
                                    memory_used_bytes=memory_used, memory_limit_bytes=memory_limit)
    except (OSError, ValueError):
        return None
