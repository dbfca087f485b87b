"""What the console's load balancers page relies on from the event feed: a weight change and a
target's health change each appear as one change, so an open page repaints without polling."""

from __future__ import annotations

from emulator.orchestration import Orchestrator
from emulator.services.cloudwatch.metric_store import MetricStore
from emulator.services.cloudwatch.time_scale import TimeScale
from emulator.services.elb.load_balancing import LoadBalancing
from emulator.state.database import Database


def test_weight_changes_and_registrations_are_on_the_feed(tmp_path):
    db = Database(tmp_path / "state.sqlite3", "000000000000", "us-east-1")
    scale = TimeScale(60)
    lb = LoadBalancing(db, Orchestrator(db), MetricStore(db, scale), scale, range(1, 2))  # never started: no sockets
    lb.create_target_group("blue")
    lb.create_target_group("green")
    lb.create_load_balancer("web", weights={"blue": 100, "green": 0})
    before = db.last_event_seq()

    lb.set_weights("web", {"blue": 90, "green": 10})
    lb.register("blue", {"instanceId": "i-a", "appUrl": "http://127.0.0.1:9/"})
    lb._writer.shutdown(wait=True)  # target records are written in order by one thread

    changes = [(e["kind"], e["id"], e["status"]) for e in db.events_after(before)]
    assert ("elb-load-balancer", "web", None) in changes
    assert ("elb-target", "blue/i-a", "initial") in changes
    assert db.get("elb-load-balancer", "web")["weights"] == {"blue": 90, "green": 10}
