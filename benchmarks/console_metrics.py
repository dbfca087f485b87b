"""How long one chart of the console's metrics page takes to answer (GET /api/cloudwatch/series) as
the 30-minute window fills with datapoints.

Usage: .venv/bin/python benchmarks/console_metrics.py [--rounds 30]
Runs the route in-process against a temporary SQLite file (no Docker, no server); each row publishes
a fresh metric with the given number of datums per second over the window, then asks for it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from unittest.mock import MagicMock

from fastapi.testclient import TestClient

from emulator.api.app import create_app
from emulator.orchestration import Orchestrator
from emulator.services.cloudwatch.alarms import Alarms
from emulator.services.cloudwatch.metric_store import MetricStore
from emulator.services.cloudwatch.time_scale import TimeScale
from emulator.state.database import Database

WINDOW = 1800


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as home:
        db = Database(Path(home) / "s.sqlite3", "000000000000", "us-east-1")
        scale = TimeScale(1)
        metrics = MetricStore(db, scale)
        cp = MagicMock()
        cp.time_scale, cp.metrics, cp.alarms = scale, metrics, Alarms(Orchestrator(db), metrics, scale)
        client = TestClient(create_app(cp))
        print("| datums per second | datums in window | statistic | p50 | p99 |\n|---|---|---|---|---|")
        for per_second in (1, 5, 20):
            for name, stat, datum in (("RequestCount", "Sum", lambda i: {"Value": 5.0}),
                                      ("TargetResponseTime", "p99", lambda i: {"Values": [0.004 + 0.001 * (i % 7)]})):
                group = f"web-{per_second}"
                dims = [{"Name": "DeploymentGroupName", "Value": group}]
                now = time.time()
                data = [{"MetricName": name, "Dimensions": dims, "Timestamp": now - WINDOW + i / per_second, **datum(i)}
                        for i in range(WINDOW * per_second)]
                for j in range(0, len(data), 1000):
                    metrics.put_metric_data("Pipelocal/App", data[j:j + 1000], now=now)
                params = {"namespace": "Pipelocal/App", "name": name, "dimensions": f"DeploymentGroupName={group}",
                          "stat": stat, "minutes": 30}
                times = []
                for _ in range(rounds):
                    start = time.perf_counter()
                    answer = client.get("/api/cloudwatch/series", params=params)
                    times.append((time.perf_counter() - start) * 1000)
                    assert answer.status_code == 200 and answer.json()["points"], answer.text
                times.sort()
                p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
                print(f"| {per_second} | {len(data)} | {stat} | {statistics.median(times):.1f} ms | {p99:.1f} ms |")


if __name__ == "__main__":
    main()
