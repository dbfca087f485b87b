"""The orchestrator: the transition table, endTime stamping and the event feed, on a real Database."""

from __future__ import annotations

import threading
import time

import pytest

from emulator.domain import statuses
from emulator.domain.statuses import TransitionRefused, check_transition, is_terminal
from emulator.orchestration import Orchestrator
from emulator.state.database import Database


@pytest.fixture
def db(tmp_path):
    database = Database(tmp_path / "state.db", "000000000000", "us-east-1")
    yield database
    database.close()


@pytest.fixture
def orch(db):
    return Orchestrator(db)


# ---------------------------------------------------------------- the table itself

ALLOWED = [
    (statuses.PIPELINE_EXECUTION, ["InProgress", "Succeeded"]),
    (statuses.PIPELINE_EXECUTION, ["InProgress", "Stopping", "Stopped"]),
    (statuses.PIPELINE_EXECUTION, ["InProgress", "Superseded"]),
    (statuses.PIPELINE_EXECUTION, ["InProgress", "Cancelled"]),
    (statuses.STAGE_EXECUTION, ["InProgress", "Failed"]),
    (statuses.STAGE_EXECUTION, ["Skipped"]),
    (statuses.ACTION_EXECUTION, ["InProgress", "Abandoned"]),
    (statuses.BUILD, ["IN_PROGRESS", "SUCCEEDED"]),
    (statuses.BUILD, ["IN_PROGRESS", "TIMED_OUT"]),
    (statuses.BUILD, ["IN_PROGRESS", "FAULT"]),
    (statuses.DEPLOYMENT, ["Created", "InProgress", "Succeeded"]),
    (statuses.DEPLOYMENT, ["Created", "Queued", "InProgress", "Failed"]),
    (statuses.DEPLOYMENT, ["Created", "InProgress", "Baking", "Succeeded"]),
    (statuses.DEPLOYMENT, ["Created", "InProgress", "Ready", "InProgress", "Succeeded"]),
    (statuses.DEPLOYMENT, ["Created", "Stopped"]),
    (statuses.DEPLOYMENT_TARGET, ["Pending", "InProgress", "Succeeded"]),
    (statuses.DEPLOYMENT_TARGET, ["Pending", "Skipped"]),
    (statuses.DEPLOYMENT_TARGET, ["Pending", "InProgress", "Ready", "Failed"]),
]


@pytest.mark.parametrize("kind,path", ALLOWED, ids=[f"{k}:{'>'.join(p)}" for k, p in ALLOWED])
def test_allowed_paths(orch, db, kind, path):
    orch.create(kind, "r-1", {"name": "r"}, status=path[0])
    for status in path[1:]:
        orch.transition(kind, "r-1", status)
    assert db.get(kind, "r-1")["status"] == path[-1]


REFUSED = [
    (statuses.BUILD, ["IN_PROGRESS", "SUCCEEDED"], "IN_PROGRESS"),
    (statuses.BUILD, ["IN_PROGRESS", "FAILED"], "SUCCEEDED"),
    (statuses.DEPLOYMENT, ["Created", "InProgress", "Succeeded"], "Failed"),
    (statuses.DEPLOYMENT, ["Created", "InProgress", "Failed"], "InProgress"),
    (statuses.DEPLOYMENT, ["Created"], "Succeeded"),
    (statuses.DEPLOYMENT, ["Created", "InProgress"], "Created"),
    (statuses.DEPLOYMENT_TARGET, ["Pending"], "Succeeded"),
    (statuses.DEPLOYMENT_TARGET, ["Pending", "Skipped"], "InProgress"),
    (statuses.PIPELINE_EXECUTION, ["InProgress", "Succeeded"], "Failed"),
    (statuses.PIPELINE_EXECUTION, ["InProgress", "Superseded"], "InProgress"),
    (statuses.STAGE_EXECUTION, ["InProgress", "Succeeded"], "InProgress"),
    (statuses.ACTION_EXECUTION, ["InProgress", "Succeeded"], "Abandoned"),
    (statuses.ACTION_EXECUTION, ["InProgress"], "Stopped"),  # not an action status at all
    (statuses.BUILD, ["IN_PROGRESS"], "Succeeded"),  # CodeBuild spells statuses in UPPER_CASE
]


@pytest.mark.parametrize("kind,path,new", REFUSED, ids=[f"{k}:{'>'.join(p)}>{n}" for k, p, n in REFUSED])
def test_refused_transitions_change_nothing(orch, db, kind, path, new):
    orch.create(kind, "r-1", {"name": "r"}, status=path[0])
    for status in path[1:]:
        orch.transition(kind, "r-1", status)
    before = db.get(kind, "r-1")
    seq = db.last_event_seq()
    with pytest.raises(TransitionRefused, match=f"-> {new}"):
        orch.transition(kind, "r-1", new)
    assert db.get(kind, "r-1") == before
    assert db.events_after(seq) == []


@pytest.mark.parametrize("kind,first", [
    (statuses.BUILD, "SUCCEEDED"), (statuses.DEPLOYMENT, "InProgress"), (statuses.DEPLOYMENT_TARGET, "Succeeded"),
    (statuses.PIPELINE_EXECUTION, "Succeeded"), (statuses.ACTION_EXECUTION, "Failed"),
])
def test_create_refuses_a_status_that_is_not_initial(orch, db, kind, first):
    with pytest.raises(TransitionRefused):
        orch.create(kind, "r-1", {}, status=first)
    assert db.get(kind, "r-1") is None
    assert db.events_after(0) == []


@pytest.mark.parametrize("kind,initial", [
    (statuses.BUILD, "IN_PROGRESS"), (statuses.DEPLOYMENT, "Created"), (statuses.DEPLOYMENT_TARGET, "Pending"),
    (statuses.PIPELINE_EXECUTION, "InProgress"), (statuses.ACTION_EXECUTION, "InProgress"),
])
def test_create_defaults_to_the_single_initial_status(orch, kind, initial):
    assert orch.create(kind, "r-1", {})["status"] == initial


def test_every_terminal_status_has_no_way_out():
    for kind, table in statuses.TRANSITIONS.items():
        for status in statuses.TERMINAL[kind]:
            assert is_terminal(kind, status)
            assert status not in table, f"{kind} {status} is terminal but has transitions"
            for other in {s for targets in table.values() for s in targets}:
                with pytest.raises(TransitionRefused):
                    check_transition(kind, status, other)


def test_non_terminal_statuses():
    assert not is_terminal(statuses.DEPLOYMENT, "InProgress")
    assert not is_terminal(statuses.DEPLOYMENT, "Ready")
    assert not is_terminal(statuses.BUILD, "IN_PROGRESS")
    assert not is_terminal(statuses.PIPELINE_EXECUTION, "Stopping")
    assert not is_terminal(statuses.DEPLOYMENT, None)


# ---------------------------------------------------------------- documents, endTime and events


def test_create_stores_document_with_status_and_timestamps(orch, db):
    before = time.time()
    doc = orch.create(statuses.BUILD, "b-1", {"projectName": "p", "status": "ignored"}, parent="p")
    assert doc["status"] == "IN_PROGRESS"
    assert before <= doc["createdAt"] <= time.time()
    assert db.get(statuses.BUILD, "b-1") == doc
    assert db.list(statuses.BUILD, parent="p") == [doc]
    assert "endTime" not in doc


def test_terminal_transition_stamps_end_time(orch, db):
    orch.create(statuses.DEPLOYMENT, "d-1", {"deploymentId": "d-1"})
    mid = orch.transition(statuses.DEPLOYMENT, "d-1", "InProgress")
    assert "endTime" not in mid
    before = time.time()
    done = orch.transition(statuses.DEPLOYMENT, "d-1", "Succeeded")
    assert before <= done["endTime"] <= time.time()
    assert db.get(statuses.DEPLOYMENT, "d-1")["endTime"] == done["endTime"]


def test_explicit_end_time_is_kept(orch, db):
    orch.create(statuses.BUILD, "b-1", {})
    done = orch.transition(statuses.BUILD, "b-1", "FAILED", endTime=123.0, message="boom")
    assert done["endTime"] == 123.0
    assert done["message"] == "boom"


def test_every_change_appends_to_the_event_feed(orch, db):
    start = db.last_event_seq()
    orch.create(statuses.DEPLOYMENT, "d-1", {"deploymentId": "d-1", "secret": "not in summary"})
    orch.transition(statuses.DEPLOYMENT, "d-1", "InProgress")
    orch.update(statuses.DEPLOYMENT, "d-1", message="halfway")
    orch.update(statuses.DEPLOYMENT, "d-1", event=False, deploymentOverview={"Succeeded": 1})
    orch.transition(statuses.DEPLOYMENT, "d-1", "Succeeded")
    events = db.events_after(start)
    assert [(e["kind"], e["id"], e["status"]) for e in events] == [
        ("deployment", "d-1", "Created"),
        ("deployment", "d-1", "InProgress"),
        ("deployment", "d-1", "InProgress"),
        ("deployment", "d-1", "Succeeded"),
    ]
    assert events[0]["detail"] == {"status": "Created", "deploymentId": "d-1"}
    assert events[2]["detail"]["message"] == "halfway"
    assert all("secret" not in e["detail"] for e in events)
    assert db.get(statuses.DEPLOYMENT, "d-1")["deploymentOverview"] == {"Succeeded": 1}


def test_same_status_without_changes_is_a_no_op(orch, db):
    orch.create(statuses.BUILD, "b-1", {})
    seq = db.last_event_seq()
    orch.transition(statuses.BUILD, "b-1", "IN_PROGRESS")
    assert db.events_after(seq) == []
    # same status with changes records them (a phase update) without a table check
    doc = orch.transition(statuses.BUILD, "b-1", "IN_PROGRESS", currentPhase="BUILD")
    assert doc["currentPhase"] == "BUILD"
    assert [e["status"] for e in db.events_after(seq)] == ["IN_PROGRESS"]


def test_transition_of_missing_resource_raises(orch):
    with pytest.raises(KeyError):
        orch.transition(statuses.BUILD, "nope", "SUCCEEDED")


def test_waiters_wake_on_change(orch):
    orch.create(statuses.BUILD, "b-1", {})
    woke = threading.Event()

    def waiter():
        orch.wait_for_change(5.0)
        woke.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    orch.transition(statuses.BUILD, "b-1", "SUCCEEDED")
    assert woke.wait(2.0)
    assert time.monotonic() - started < 2.0
    thread.join()
