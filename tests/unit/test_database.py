"""The SQLite state store: records, scoping, logs, counters, events and persistence."""

from __future__ import annotations

import threading

import pytest

from emulator.state.database import Database

ACCOUNT = "000000000000"


@pytest.fixture
def path(tmp_path):
    return tmp_path / "state" / "pipelocal.db"


@pytest.fixture
def db(path):
    database = Database(path, ACCOUNT, "us-east-1")
    yield database
    database.close()


# ---------------------------------------------------------------- records


def test_creates_parent_directories(path):
    assert not path.parent.exists()
    Database(path, ACCOUNT, "us-east-1").close()
    assert path.exists()


def test_put_and_get_round_trip(db):
    doc = {"name": "p", "status": "IN_PROGRESS", "nested": {"a": [1, 2, {"b": None}]}}
    assert db.put("build", "b-1", doc) == doc
    assert db.get("build", "b-1") == doc
    assert db.get("build", "missing") is None
    assert db.get("other-kind", "b-1") is None


def test_put_replaces_the_document(db):
    db.put("build", "b-1", {"status": "IN_PROGRESS", "a": 1})
    db.put("build", "b-1", {"status": "SUCCEEDED"})
    assert db.get("build", "b-1") == {"status": "SUCCEEDED"}
    assert [d["status"] for d in db.list("build")] == ["SUCCEEDED"]


def test_update_merges_fields_and_keeps_parent(db):
    db.put("build", "b-1", {"status": "IN_PROGRESS", "a": 1, "b": 2}, parent="proj")
    updated = db.update("build", "b-1", b=3, status="SUCCEEDED")
    assert updated == {"status": "SUCCEEDED", "a": 1, "b": 3}
    assert db.get("build", "b-1") == updated
    assert db.list("build", parent="proj") == [updated]
    assert db.list("build", statuses=["SUCCEEDED"]) == [updated]
    assert db.list("build", statuses=["IN_PROGRESS"]) == []


def test_update_missing_record_raises(db):
    with pytest.raises(KeyError):
        db.update("build", "nope", a=1)


def test_concurrent_updates_keep_every_field(db):
    db.put("doc", "x", {"status": "s"})

    def writer(i):
        for j in range(20):
            db.update("doc", "x", **{f"f{i}_{j}": j})

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    doc = db.get("doc", "x")
    assert len([k for k in doc if k.startswith("f")]) == 100


def test_list_by_parent_and_status_in_creation_order(db):
    db.put("build", "b-1", {"id": 1, "status": "SUCCEEDED"}, parent="proj-a")
    db.put("build", "b-2", {"id": 2, "status": "FAILED"}, parent="proj-b")
    db.put("build", "b-3", {"id": 3, "status": "IN_PROGRESS"}, parent="proj-a")
    db.put("deployment", "d-1", {"id": 4, "status": "Succeeded"}, parent="proj-a")
    assert [d["id"] for d in db.list("build")] == [1, 2, 3]
    assert [d["id"] for d in db.list("build", parent="proj-a")] == [1, 3]
    assert [d["id"] for d in db.list("build", statuses=["FAILED", "IN_PROGRESS"])] == [2, 3]
    assert [d["id"] for d in db.list("build", parent="proj-a", statuses=["SUCCEEDED"])] == [1]
    assert db.list("build", parent="proj-c") == []
    assert db.list("nothing") == []


def test_delete(db):
    db.put("build", "b-1", {"status": "x"})
    db.delete("build", "b-1")
    assert db.get("build", "b-1") is None
    assert db.list("build") == []


def test_iter_kinds(db):
    db.put("a", "1", {})
    db.put("b", "1", {})
    db.put("a", "2", {})
    assert sorted(db.iter_kinds()) == ["a", "b"]


# ---------------------------------------------------------------- account / region scoping


def test_regions_on_the_same_file_see_different_records(path):
    east = Database(path, ACCOUNT, "us-east-1")
    west = Database(path, ACCOUNT, "us-west-2")
    try:
        east.put("codebuild-project", "only-east", {"region": "east"})
        assert west.get("codebuild-project", "only-east") is None
        assert west.list("codebuild-project") == []
        assert east.list("codebuild-project") == [{"region": "east"}]
    finally:
        east.close()
        west.close()


def test_same_name_in_two_regions_are_two_resources(path):
    east = Database(path, ACCOUNT, "us-east-1")
    west = Database(path, ACCOUNT, "us-west-2")
    try:
        east.put("codebuild-project", "app", {"region": "east", "status": None})
        west.put("codebuild-project", "app", {"region": "west", "status": None})
        assert east.get("codebuild-project", "app") == {"region": "east", "status": None}
        assert west.get("codebuild-project", "app") == {"region": "west", "status": None}
        west.update("codebuild-project", "app", touched=True)
        assert "touched" not in east.get("codebuild-project", "app")
        east.delete("codebuild-project", "app")
        assert east.get("codebuild-project", "app") is None
        assert west.get("codebuild-project", "app") == {"region": "west", "status": None, "touched": True}
    finally:
        east.close()
        west.close()


def test_accounts_on_the_same_file_see_different_records(path):
    a = Database(path, "111111111111", "us-east-1")
    b = Database(path, "222222222222", "us-east-1")
    try:
        a.put("instance", "i-1", {"owner": "a"})
        assert b.get("instance", "i-1") is None
        assert b.list("instance") == []
        with pytest.raises(KeyError):
            b.update("instance", "i-1", owner="b")
        assert a.get("instance", "i-1") == {"owner": "a"}
    finally:
        a.close()
        b.close()


# ---------------------------------------------------------------- logs


def test_logs_append_and_read_after_seq(db):
    assert db.read_log("build", "b-1") == []
    assert db.append_log("build", "b-1", "one\n") == 1
    assert db.append_log("build", "b-1", "two\n") == 2
    assert db.append_log("build", "b-2", "other\n") == 1
    assert db.append_log("build", "b-1", "three\n") == 3
    assert db.read_log("build", "b-1") == [(1, "one\n"), (2, "two\n"), (3, "three\n")]
    assert db.read_log("build", "b-1", after=1) == [(2, "two\n"), (3, "three\n")]
    assert db.read_log("build", "b-1", after=3) == []
    assert db.log_text("build", "b-1") == "one\ntwo\nthree\n"
    assert db.log_text("build", "b-2") == "other\n"
    assert db.log_text("deployment", "b-1") == ""


# ---------------------------------------------------------------- counters


def test_counters_increment_independently(db):
    assert [db.next_number("instance") for _ in range(3)] == [1, 2, 3]
    assert db.next_number("build") == 1
    assert db.next_number("instance") == 4


def test_counters_are_unique_under_concurrency(db):
    seen: list[int] = []
    lock = threading.Lock()

    def take():
        for _ in range(25):
            n = db.next_number("c")
            with lock:
                seen.append(n)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 101))


# ---------------------------------------------------------------- events


def test_events_after_seq(db):
    assert db.last_event_seq() == 0
    s1 = db.add_event("build", "b-1", "IN_PROGRESS", {"projectName": "p"})
    s2 = db.add_event("build", "b-1", "SUCCEEDED")
    assert s2 > s1
    assert db.last_event_seq() == s2
    events = db.events_after(0)
    assert [(e["seq"], e["kind"], e["id"], e["status"]) for e in events] == [
        (s1, "build", "b-1", "IN_PROGRESS"), (s2, "build", "b-1", "SUCCEEDED")]
    assert events[0]["detail"] == {"projectName": "p"}
    assert events[1]["detail"] == {}
    assert [e["seq"] for e in db.events_after(s1)] == [s2]
    assert db.events_after(s2) == []
    for i in range(5):
        db.add_event("k", str(i), None)
    assert len(db.events_after(0, limit=3)) == 3


# ---------------------------------------------------------------- restart keeps history


def test_everything_survives_close_and_reopen(path):
    first = Database(path, ACCOUNT, "us-east-1")
    first.put("build", "b-1", {"status": "SUCCEEDED", "n": 1}, parent="proj")
    first.put("build", "b-2", {"status": "IN_PROGRESS", "n": 2}, parent="proj")
    first.append_log("build", "b-1", "hello\n")
    first.next_number("instance")
    seq = first.add_event("build", "b-1", "SUCCEEDED")
    first.close()

    second = Database(path, ACCOUNT, "us-east-1")
    try:
        assert second.get("build", "b-1") == {"status": "SUCCEEDED", "n": 1}
        assert [d["n"] for d in second.list("build", parent="proj", statuses=["IN_PROGRESS"])] == [2]
        assert second.read_log("build", "b-1") == [(1, "hello\n")]
        assert second.append_log("build", "b-1", "again\n") == 2
        assert second.next_number("instance") == 2
        assert second.last_event_seq() == seq
        assert second.add_event("build", "b-2", "FAILED") > seq
    finally:
        second.close()


def test_file_from_before_region_scoped_keys_is_migrated(path):
    """A state file whose records were keyed by (kind, id) only keeps its records and gains scoping."""
    import sqlite3

    path.parent.mkdir(parents=True)
    old = sqlite3.connect(str(path))
    old.executescript("""
        CREATE TABLE records (
            kind TEXT NOT NULL, id TEXT NOT NULL, account TEXT NOT NULL, region TEXT NOT NULL,
            parent TEXT, status TEXT, doc TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
            PRIMARY KEY (kind, id));
        CREATE INDEX records_parent ON records (kind, parent);
        CREATE INDEX records_status ON records (kind, status);
        INSERT INTO records VALUES ('build', 'b-1', '000000000000', 'us-east-1', 'proj', 'SUCCEEDED',
                                    '{"status": "SUCCEEDED"}', 1.0, 1.0);
    """)
    old.commit()
    old.close()
    east = Database(path, ACCOUNT, "us-east-1")
    west = Database(path, ACCOUNT, "us-west-2")
    try:
        assert east.list("build", parent="proj", statuses=["SUCCEEDED"]) == [{"status": "SUCCEEDED"}]
        west.put("build", "b-1", {"status": "FAILED"})
        assert east.get("build", "b-1") == {"status": "SUCCEEDED"}
        assert west.get("build", "b-1") == {"status": "FAILED"}
    finally:
        east.close()
        west.close()
