"""Host metrics: the agent's cgroup sample and the CPUUtilization / mem_used_percent it becomes."""

from emulator import contracts
from emulator.services.cloudwatch.host_metrics import HostMetrics
from emulator.services.cloudwatch.metric_store import MetricStore
from emulator.services.cloudwatch.time_scale import TimeScale
from emulator.state.database import Database

import agents.host_sample as host_sample

T = 1_800_000_000.0


def test_cpu_from_two_samples_and_memory_at_once(tmp_path):
    store = MetricStore(Database(tmp_path / "s.sqlite3", "000000000000", "us-east-1"), TimeScale())
    publisher = HostMetrics(store)
    publisher.record("i-1", contracts.HostSample(sampled_at=T, cpu_seconds=10.0, cpus=2.0,
                                                 memory_used_bytes=256.0, memory_limit_bytes=1024.0))
    assert [m["Namespace"] for m in store.list_metrics()] == ["CWAgent"]
    publisher.record("i-1", contracts.HostSample(sampled_at=T + 10, cpu_seconds=15.0, cpus=2.0))
    cpu = store.statistics({"Namespace": "AWS/EC2", "MetricName": "CPUUtilization", "StartTime": T - 60,
                            "EndTime": T + 60, "Period": 60, "Statistics": ["Maximum"],
                            "Dimensions": [{"Name": "InstanceId", "Value": "i-1"}]})["Datapoints"]
    assert [p["Maximum"] for p in cpu] == [25.0]  # 5 CPU-seconds over 10 s on 2 CPUs
    mem = store.statistics({"Namespace": "CWAgent", "MetricName": "mem_used_percent", "StartTime": T - 60,
                            "EndTime": T + 60, "Period": 60, "Statistics": ["Average"],
                            "Dimensions": [{"Name": "InstanceId", "Value": "i-1"}]})["Datapoints"]
    assert [p["Average"] for p in mem] == [25.0]


def test_agent_reads_cgroup_files(tmp_path, monkeypatch):
    (tmp_path / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    (tmp_path / "memory.current").write_text("1048576\n")
    (tmp_path / "memory.max").write_text("4194304\n")
    monkeypatch.setattr(host_sample, "CGROUP", str(tmp_path))
    sample = host_sample.host_sample()
    assert (sample.cpu_seconds, sample.cpus, sample.memory_used_bytes, sample.memory_limit_bytes) == \
        (2.5, 1.5, 1048576.0, 4194304.0)
    v1 = tmp_path / "v1"
    for name, text in {"cpuacct/cpuacct.usage": "3000000000", "cpu/cpu.cfs_quota_us": "-1",
                       "cpu/cpu.cfs_period_us": "100000", "memory/memory.usage_in_bytes": "2048",
                       "memory/memory.limit_in_bytes": "9223372036854771712"}.items():
        (v1 / name).parent.mkdir(parents=True, exist_ok=True)
        (v1 / name).write_text(text + "\n")
    monkeypatch.setattr(host_sample, "CGROUP", str(v1))
    sample = host_sample.host_sample()
    assert (sample.cpu_seconds, sample.memory_used_bytes) == (3.0, 2048.0)
    assert sample.memory_limit_bytes < 2 ** 62  # unlimited: the machine's memory instead
    monkeypatch.setattr(host_sample, "CGROUP", str(tmp_path / "absent"))
    monkeypatch.setattr(host_sample, "_read", lambda path: None)
    assert host_sample.host_sample() is None
