"""The traffic generator: requests to loopback app URLs only, counted per instance and per group,
published as Pipelocal/App metrics."""

import http.server
import threading
import time

import pytest

from emulator.services.cloudwatch.fleet_traffic import NAMESPACE, FleetTraffic
from emulator.services.cloudwatch.metric_store import MetricStore
from emulator.services.cloudwatch.time_scale import TimeScale
from emulator.state.database import Database


@pytest.fixture
def app_url():
    answers = iter([200, 500, 200, 500])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(next(answers, 200))
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


def test_counts_per_instance_and_group(tmp_path, app_url):
    store = MetricStore(Database(tmp_path / "s.sqlite3", "000000000000", "us-east-1"), TimeScale())
    traffic = FleetTraffic(store, TimeScale(), targets=lambda: [])
    instance = {"instanceId": "i-1", "appUrl": app_url}
    for _ in range(4):
        traffic.request(instance, ["web"])
    traffic.request({"instanceId": "i-2", "appUrl": "http://203.0.113.9/"}, ["web"])  # not loopback: never sent
    traffic.request({"instanceId": "i-3", "appUrl": "http://127.0.0.1:9/"}, ["web"])  # nothing listens: not counted
    assert traffic.flush() == 8  # 4 metrics x (InstanceId, DeploymentGroupName)
    names = {(m["MetricName"], m["Dimensions"][0]["Value"]) for m in store.list_metrics(NAMESPACE)}
    assert ("ErrorRate", "i-1") in names and ("TargetResponseTime", "web") in names
    assert not any(v in ("i-2", "i-3") for _, v in names)
    stats = store.statistics({"Namespace": NAMESPACE, "MetricName": "HTTPCode_Target_5XX_Count",
                              "Dimensions": [{"Name": "DeploymentGroupName", "Value": "web"}],
                              "StartTime": time.time() - 120, "EndTime": time.time() + 60, "Period": 60,
                              "Statistics": ["Sum"]})["Datapoints"]
    assert sum(p["Sum"] for p in stats) == 2
    rate = store.statistics({"Namespace": NAMESPACE, "MetricName": "ErrorRate",
                             "Dimensions": [{"Name": "InstanceId", "Value": "i-1"}],
                             "StartTime": time.time() - 120, "EndTime": time.time() + 60, "Period": 60,
                             "Statistics": ["Maximum"]})["Datapoints"]
    assert [p["Maximum"] for p in rate] == [50.0]
    assert traffic.flush() == 0


def test_rate_is_bounded():
    traffic = FleetTraffic(None, TimeScale(), targets=lambda: [])
    with pytest.raises(ValueError):
        traffic.set_rate(500)
    assert traffic.set_rate(0) == 0


def test_target_url_reaches_self_registered_instances_on_their_network_address():
    from emulator.services.cloudwatch.fleet_traffic import target_url

    assert target_url({"appUrl": "http://127.0.0.1:32768/"}) == "http://127.0.0.1:32768/"
    assert target_url({"appUrl": "http://203.0.113.9/"}) is None
    # a compose instance's published URL is the host's loopback, not the control plane container's
    assert target_url({"external": True, "privateIpAddress": "172.18.0.5",
                       "appUrl": "http://127.0.0.1:8081/"}) == "http://172.18.0.5/"
    assert target_url({"external": True, "privateIpAddress": "172.18.0.5", "appUrl": None}) == "http://172.18.0.5/"
    assert target_url({"external": False, "privateIpAddress": "172.18.0.5"}) is None
