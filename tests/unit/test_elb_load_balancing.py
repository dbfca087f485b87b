"""The LoadBalancing facade on real sockets: small HTTP servers in this process stand in for
instances, the listener is a real aiohttp proxy, records are in a temporary SQLite file."""

from __future__ import annotations

import http.server
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest

from emulator.domain.errors import Conflict, NotFound
from emulator.orchestration import Orchestrator
from emulator.services.cloudwatch.metric_store import MetricStore
from emulator.services.cloudwatch.time_scale import TimeScale
from emulator.services.elb.load_balancing import LoadBalancing
from emulator.state.database import Database

FAST = {"intervalSeconds": 5, "timeoutSeconds": 2, "healthyThresholdCount": 2, "unhealthyThresholdCount": 2}


class App:
    """A tiny app answering "version NAME"; `slow` seconds per request; `status` for every answer."""

    def __init__(self, name: str, slow: float = 0.0):
        self.name, self.slow, self.status = name, slow, 200
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                time.sleep(app.slow if self.path != "/" or "ELB" not in self.headers.get("User-Agent", "") else 0)
                body = f"<p>version {app.name}</p>\n".encode()
                self.send_response(app.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def instance(self) -> dict:
        return {"instanceId": f"i-{self.name}", "appUrl": f"http://127.0.0.1:{self.server.server_port}/"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(tmp_path):
    db = Database(tmp_path / "state.sqlite3", "000000000000", "us-east-1")
    scale = TimeScale(60)
    made = []

    def make() -> LoadBalancing:
        first = made[0].ports.start if made else free_port()
        lb = LoadBalancing(db, Orchestrator(db), MetricStore(db, scale), scale, range(first, first + 10))
        lb.start()
        made.append(lb)
        return lb

    apps = {name: App(name) for name in ("a", "b", "c")}
    yield make, apps, db
    for lb in made:
        lb.stop()
    for app in apps.values():
        app.close()


def get(url: str) -> tuple[int, str, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("X-Pipelocal-Target-Group"), r.headers.get("X-Pipelocal-Target"), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-Pipelocal-Target-Group"), exc.headers.get("X-Pipelocal-Target"), ""


def test_register_health_round_robin_weights_and_metrics(env):
    make, apps, db = env
    lb = make()
    lb.create_target_group("blue", FAST, 0)
    lb.create_target_group("green", FAST, 0)
    lb.create_load_balancer("web", weights={"blue": 100, "green": 0})
    for name, group in (("a", "blue"), ("b", "blue"), ("c", "green")):
        lb.register(group, apps[name].instance())
        assert lb.wait_healthy(group, f"i-{name}", 5) == (True, "")
    url = lb.url("web")
    assert Counter(get(url)[2] for _ in range(20)) == {"i-a": 10, "i-b": 10}
    lb.set_weights("web", {"blue": 1, "green": 1})
    answers = Counter(get(url)[1] for _ in range(20))
    assert answers == {"blue": 10, "green": 10}
    assert lb.weights("web") == {"blue": 1, "green": 1}
    assert lb.load_balancers_forwarding_to("green") == ["web"]
    assert lb.metrics.flush() > 0
    dims = [{"Name": "LoadBalancer", "Value": lb.get_load_balancer("web")["loadBalancerArn"].split("loadbalancer/")[1]}]
    counted = db.execute("SELECT SUM(total) FROM metric_data WHERE namespace='AWS/ApplicationELB' AND "
                         "name='RequestCount' AND dims=?", (f'[["LoadBalancer", "{dims[0]["Value"]}"]]',))
    assert counted[0][0] == 40


def test_unhealthy_target_is_left_out_and_fail_open_when_none_is_healthy(env):
    make, apps, _ = env
    lb = make()
    lb.create_target_group("blue", FAST, 0)
    lb.create_load_balancer("web", target_groups=["blue"])
    for name in ("a", "b"):
        lb.register("blue", apps[name].instance())
        lb.wait_healthy("blue", f"i-{name}", 5)
    apps["b"].status = 500
    ok, reason = lb.wait_healthy("blue", "i-b", 0.1)
    deadline = time.monotonic() + 5
    while lb.targets("blue")[1]["state"] != "unhealthy" and time.monotonic() < deadline:
        time.sleep(0.05)
    target = lb.targets("blue")[1]
    assert (target["state"], target["reason"]) == ("unhealthy", "Target.ResponseCodeMismatch")
    assert lb.wait_healthy("blue", "i-b", 1)[1] == "Target.ResponseCodeMismatch: Health checks failed with these codes: [500]"
    assert {get(lb.url("web"))[2] for _ in range(6)} == {"i-a"}
    apps["a"].status = 500
    while lb.targets("blue")[0]["state"] != "unhealthy" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {get(lb.url("web"))[2] for _ in range(6)} == {"i-a", "i-b"}  # fail-open: both, though unhealthy


def test_draining_lets_in_flight_requests_finish_and_takes_no_new_ones(env):
    make, apps, db = env
    lb = make()
    lb.create_target_group("blue", FAST, 30)  # 30 s at time scale 60: 0.5 s real
    lb.create_load_balancer("web", target_groups=["blue"])
    slow = App("slow", slow=0.6)
    try:
        lb.register("blue", slow.instance())
        lb.register("blue", apps["a"].instance())
        lb.wait_healthy("blue", "i-slow", 5)
        lb.wait_healthy("blue", "i-a", 5)
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(get(lb.url("web")))) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        lb.deregister("blue", "i-slow")
        assert not lb.is_registered("blue", "i-slow")
        assert lb.targets("blue")[0]["reason"] == "Target.DeregistrationInProgress"
        assert not lb.wait_drained("blue", "i-slow", 0.05)  # a request is still in flight
        assert {get(lb.url("web"))[2] for _ in range(4)} == {"i-a"}
        assert lb.wait_drained("blue", "i-slow", 5)
        for t in threads:
            t.join()
        assert sorted(a[0] for a in answers) == [200, 200]
        deadline = time.monotonic() + 5
        while lb.targets("blue") != lb.targets("blue")[-1:] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [t["instanceId"] for t in lb.targets("blue")] == ["i-a"]
        events = db.execute("SELECT status FROM events WHERE kind='elb-target' AND id='blue/i-slow' ORDER BY seq")
        assert [e[0] for e in events] == ["initial", "healthy", "draining", "unused"]
    finally:
        slow.close()


def test_records_survive_a_restart(env):
    make, apps, _ = env
    lb = make()
    lb.create_target_group("blue", FAST, 300)
    lb.create_target_group("green", FAST, 300)
    port = lb.create_load_balancer("web", weights={"blue": 70, "green": 30})["port"]
    lb.register("blue", apps["a"].instance())
    lb.register("green", apps["b"].instance())
    lb.register("green", apps["c"].instance())
    lb.wait_healthy("blue", "i-a", 5)
    lb.deregister("green", "i-c")
    lb.stop()
    again = make()
    assert again.get_load_balancer("web")["port"] == port
    assert again.weights("web") == {"blue": 70, "green": 30}
    states = {t["instanceId"]: t["state"] for t in again.targets("green")}
    assert states["i-c"] == "draining" and states["i-b"] in ("initial", "healthy")
    assert not again.is_registered("green", "i-c") and again.is_registered("green", "i-b")
    assert again.get_target_group("blue")["healthCheck"]["intervalSeconds"] == 5
    assert get(again.url("web"))[0] == 200


def test_code_deploy_load_balancer_info_and_bad_input(env):
    make, apps, _ = env
    lb = make()
    lb.create_target_group("blue")
    lb.create_load_balancer("web", target_groups=["blue"])
    lb.create_load_balancer("old", classic=True)
    assert lb.get_target_group("old")["loadBalancerNames"] == ["old"]
    assert lb.target_groups_for({"elbInfoList": [{"name": "old"}], "targetGroupInfoList": [{"name": "blue"}]}) == \
        ["old", "blue"]
    with pytest.raises(NotFound, match="'nope'"):
        lb.target_groups_for({"targetGroupInfoList": [{"name": "nope"}]})
    with pytest.raises(NotFound) as found:
        lb.target_groups_for({"elbInfoList": [{"name": "gone"}]})
    assert found.value.kind == "LoadBalancer"
    with pytest.raises(ValueError, match="targetGroupInfoList instead"):
        lb.target_groups_for({"elbInfoList": [{"name": "web"}]})
    with pytest.raises(Conflict, match="DuplicateTargetGroupName"):
        lb.create_target_group("blue")
    with pytest.raises(Conflict, match="ResourceInUse"):
        lb.delete_target_group("blue")
    with pytest.raises(ValueError, match="only to its own target group"):
        lb.set_weights("old", {"blue": 1})
    with pytest.raises(NotFound):
        lb.set_weights("web", {"nope": 1})
    with pytest.raises(ValueError, match="no address the load balancer can reach"):
        lb.register("blue", {"instanceId": "i-x", "appUrl": None})
    with pytest.raises(NotFound):
        lb.deregister("blue", "i-x")
    unused = lb.create_target_group("spare")
    lb.register("spare", apps["a"].instance())
    assert lb.targets("spare")[0]["state"] == "unused" and unused["loadBalancerNames"] == []
    assert lb.wait_healthy("spare", "i-a", 1) == (False, "Target.NotInUse: Target group is not configured to "
                                                          "receive traffic from the load balancer")
    lb.delete_load_balancer("web")
    lb.delete_target_group("blue")
    assert [g["targetGroupName"] for g in lb.list_target_groups()] == ["old", "spare"]



def test_a_terminated_instance_leaves_every_target_group_and_a_listener_can_come_later(env):
    make, apps, db = env
    lb = make()
    lb.create_target_group("blue", FAST, 0)
    lb.create_target_group("green", FAST, 0)
    lb.create_load_balancer("later", listener=False)
    assert lb.get_load_balancer("later")["listenerArn"] is None and not lb.get_load_balancer("later")["listening"]
    with pytest.raises(Conflict):
        lb.set_weights("later", {"blue": 1})
    doc = lb.set_listener("later", {"blue": 1, "green": 1}, requested_port=80)
    assert doc["listenerArn"].startswith(doc["loadBalancerArn"].replace(":loadbalancer/", ":listener/"))
    assert doc["listenerPort"] == 80 and doc["listening"] and doc["port"] in lb.ports
    for group in ("blue", "green"):
        lb.register(group, apps["a"].instance())
    assert lb.forget_instance("i-a") == ["blue", "green"]
    assert lb.targets("blue") == [] and lb.targets("green") == []
    lb.remove_listener("later")
    assert lb.get_load_balancer("later")["url"] is None and lb.weights("later") == {}
    restarted = make()  # a load balancer without a listener survives a restart
    assert restarted.get_load_balancer("later")["listenerArn"] is None
