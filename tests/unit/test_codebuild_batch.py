"""Batch expansion: build-list, build-graph order and cycles, build-matrix combinations."""

from __future__ import annotations

import pytest

from emulator.domain.buildspec import parse_buildspec
from emulator.domain.errors import SpecError
from emulator.services.codebuild.batch_plan import BatchSchedule, BatchTask, expand_batch

PHASES = "phases:\n  build:\n    commands:\n      - x\n"


def test_graph_runs_dependencies_first():
    spec = parse_buildspec("version: 0.2\nbatch:\n  build-graph:\n"
                           "    - identifier: deploy\n      depend-on: [test, build]\n"
                           "    - identifier: test\n      depend-on: [build]\n"
                           "    - identifier: build\n      env:\n        image: img:2\n        variables: {A: b}\n" + PHASES)
    tasks = expand_batch(spec)
    assert [t.identifier for t in tasks] == ["build", "test", "deploy"]
    assert tasks[0].image == "img:2" and tasks[0].variables == {"A": "b"}


def test_graph_cycle_refused():
    spec = parse_buildspec("version: 0.2\nbatch:\n  build-graph:\n"
                           "    - identifier: a\n      depend-on: [b]\n    - identifier: b\n      depend-on: [a]\n" + PHASES)
    with pytest.raises(SpecError, match="cycle"):
        expand_batch(spec)


def test_list_keeps_order_and_ignore_failure():
    spec = parse_buildspec("version: 0.2\nbatch:\n  build-list:\n    - identifier: x\n      ignore-failure: true\n"
                           "    - identifier: y\n      buildspec: other.yml\n" + PHASES)
    x, y = expand_batch(spec)
    assert (x.identifier, x.ignore_failure, y.buildspec) == ("x", True, "other.yml")


def test_matrix_is_the_cartesian_product_over_static_env():
    spec = parse_buildspec("version: 0.2\nbatch:\n  build-matrix:\n    static:\n      ignore-failure: true\n"
                           "      env:\n        variables: {BASE: s}\n    dynamic:\n      buildspec: [a.yml, b.yml]\n"
                           "      env:\n        image: [i1, i2]\n        variables:\n          V: ['1', '2', '3']\n" + PHASES)
    tasks = expand_batch(spec)
    assert len(tasks) == 2 * 2 * 3
    assert len({t.identifier for t in tasks}) == 12
    assert all(t.variables["BASE"] == "s" and t.ignore_failure for t in tasks)
    assert {(t.buildspec, t.image, t.variables["V"]) for t in tasks} == {
        (b, i, v) for b in ("a.yml", "b.yml") for i in ("i1", "i2") for v in "123"}


def test_no_batch_section_refused():
    with pytest.raises(SpecError, match="batch"):
        expand_batch(parse_buildspec("version: 0.2\n" + PHASES))


def _tasks(*specs):
    return [BatchTask(identifier=i, depend_on=list(deps), ignore_failure=ignore) for i, deps, ignore in specs]


def test_schedule_starts_independent_builds_together_and_dependents_after_all_deps():
    schedule = BatchSchedule(_tasks(("a", [], False), ("b", [], False), ("c", ["a", "b"], False)), fast_fail=False)
    assert [t.identifier for t in schedule.ready()] == ["a", "b"]
    schedule.start("a"), schedule.start("b")
    assert schedule.ready() == []
    schedule.finish("a", "SUCCEEDED")
    assert schedule.ready() == []  # c still waits for b
    schedule.finish("b", "SUCCEEDED")
    assert [t.identifier for t in schedule.ready()] == ["c"]
    schedule.start("c"), schedule.finish("c", "SUCCEEDED")
    assert schedule.done() and schedule.status() == "SUCCEEDED"


def test_schedule_stops_builds_behind_a_failure_transitively_unless_it_ignores_failure():
    schedule = BatchSchedule(_tasks(("a", [], False), ("b", ["a"], False), ("c", ["b"], False),
                                    ("x", [], True), ("y", ["x"], False)), fast_fail=False)
    for t in schedule.ready():
        schedule.start(t.identifier)
    schedule.finish("a", "FAILED")
    schedule.finish("x", "FAILED")  # ignore-failure: y still runs
    assert [t.identifier for t in schedule.ready()] == ["y"]
    assert schedule.ended["b"] == schedule.ended["c"] == "STOPPED"
    assert "a" in schedule.notes["b"] and "b" in schedule.notes["c"]
    schedule.start("y"), schedule.finish("y", "SUCCEEDED")
    assert schedule.done() and schedule.status() == "FAILED"


def test_schedule_fast_fail_starts_nothing_after_a_failure():
    schedule = BatchSchedule(_tasks(("a", [], False), ("b", [], False), ("c", ["a"], False)), fast_fail=True)
    schedule.start("a")
    schedule.finish("a", "FAILED")
    assert schedule.ready() == []
    assert schedule.ended == {"a": "FAILED", "b": "STOPPED", "c": "STOPPED"}
    assert schedule.notes["b"].startswith("fast-fail")
