"""A batch build (buildspec `batch`) expanded into the builds it runs, in an order that respects
build-graph's `depend-on`.

build-list: every entry is one build. build-graph: the same, and a build waits for the builds it
depends on; when one of those fails (and does not ignore failure) it does not run. build-matrix:
one build per combination of the dynamic buildspecs, images, compute types and variable values,
each with the static env under it. A task's env variables override the buildspec's own (as a
project's would); a task without a buildspec runs the batch's own buildspec.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from emulator.domain.errors import SpecError


@dataclass
class BatchTask:
    identifier: str
    buildspec: str | None = None
    image: str | None = None
    compute_type: str | None = None
    privileged_mode: bool | None = None
    variables: dict[str, str] = field(default_factory=dict)
    ignore_failure: bool = False
    depend_on: list[str] = field(default_factory=list)


def expand_batch(spec) -> list[BatchTask]:
    batch = spec.batch
    if batch is None:
        raise SpecError(spec.file, "batch", "a batch section (build-list, build-graph or build-matrix) to run a batch")
    if batch.build_list is not None or batch.build_graph is not None:
        entries = batch.build_list if batch.build_list is not None else batch.build_graph
        tasks = [BatchTask(identifier=t.identifier, buildspec=t.buildspec, image=t.env.image,
                           compute_type=t.env.compute_type, privileged_mode=t.env.privileged_mode,
                           variables=dict(t.env.variables), ignore_failure=t.ignore_failure,
                           depend_on=list(t.depend_on)) for t in entries]
        return _ordered(tasks, spec.file)
    if batch.build_matrix is not None:
        m = batch.build_matrix
        names = sorted(m.variables)
        tasks = []
        for buildspec, image, compute, values in itertools.product(
                m.buildspecs or (None,), m.images or (m.static_env.image,),
                m.compute_types or (m.static_env.compute_type,),
                itertools.product(*(m.variables[n] for n in names)) if names else [()]):
            variables = {**m.static_env.variables, **dict(zip(names, values))}
            parts = [p for p in (buildspec, image, compute, *values) if p]
            identifier = "_".join(_slug(p) for p in parts) or "build"
            tasks.append(BatchTask(identifier=identifier, buildspec=buildspec, image=image, compute_type=compute,
                                   privileged_mode=m.static_env.privileged_mode, variables=variables,
                                   ignore_failure=m.static_ignore_failure))
        return tasks
    raise SpecError(spec.file, "batch", "build-list, build-graph or build-matrix (build-fanout is not run)")


def _ordered(tasks: list[BatchTask], file: str) -> list[BatchTask]:
    """Dependencies first, otherwise in the order written; a cycle is refused."""
    by_id = {t.identifier: t for t in tasks}
    done: list[BatchTask] = []
    state: dict[str, str] = {}

    def visit(task: BatchTask, path: list[str]) -> None:
        if state.get(task.identifier) == "done":
            return
        if state.get(task.identifier) == "visiting":
            raise SpecError(file, "batch.build-graph", f"builds without a dependency cycle ({' -> '.join(path + [task.identifier])})")
        state[task.identifier] = "visiting"
        for dep in task.depend_on:
            visit(by_id[dep], path + [task.identifier])
        state[task.identifier] = "done"
        done.append(task)

    for task in tasks:
        visit(task, [])
    return done


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")[:40]


LOCAL_PARALLEL = 2  # builds of one batch at once on this machine (CodeBuild runs every ready one)


class BatchSchedule:
    """Which builds of a batch may start now, as CodeBuild decides it: a build starts once every
    build it depends on has ended; when one of those did not succeed (and does not ignore
    failure) it never runs and ends STOPPED; with fast-fail, no build starts after a failure.

    Builds with nothing to wait for start together; the caller bounds how many run at once.
    """

    def __init__(self, tasks: list[BatchTask], fast_fail: bool):
        self.tasks = {t.identifier: t for t in tasks}
        self.order = [t.identifier for t in tasks]
        self.fast_fail = fast_fail
        self.ended: dict[str, str] = {}  # identifier -> final build status
        self.notes: dict[str, str] = {}  # why a build never ran
        self.started: set[str] = set()
        self.failed = False

    def ready(self) -> list[BatchTask]:
        """Builds that may start now (in the batch's order); ends the ones that never will."""
        changed = True
        while changed:  # a build stopped here may block others in turn
            changed = False
            for identifier in self.order:
                if identifier in self.started or identifier in self.ended:
                    continue
                blocked = [d for d in self.tasks[identifier].depend_on if d in self.ended and not self._passed(d)]
                if blocked:
                    self.stop(identifier, f"depends on {', '.join(blocked)}, which did not succeed")
                    changed = True
                elif self.failed and self.fast_fail:
                    self.stop(identifier, "fast-fail: another build failed")
                    changed = True
        return [self.tasks[i] for i in self.order if i not in self.started and i not in self.ended
                and all(d in self.ended for d in self.tasks[i].depend_on)]

    def start(self, identifier: str) -> None:
        self.started.add(identifier)

    def finish(self, identifier: str, status: str) -> None:
        self.started.discard(identifier)
        self.ended[identifier] = status
        if not self._passed(identifier):
            self.failed = True

    def stop(self, identifier: str, note: str) -> None:
        """A build that will not run (or run no more)."""
        self.started.discard(identifier)
        self.ended[identifier] = "STOPPED"
        self.notes[identifier] = note

    def done(self) -> bool:
        return len(self.ended) == len(self.order)

    def status(self) -> str:
        """The batch's status once done: SUCCEEDED when every build that does not ignore failure did."""
        return "SUCCEEDED" if all(self._passed(i) for i in self.order) else "FAILED"

    def _passed(self, identifier: str) -> bool:
        return self.ended.get(identifier) == "SUCCEEDED" or self.tasks[identifier].ignore_failure
