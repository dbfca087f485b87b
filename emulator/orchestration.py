"""The one place status changes happen.

Every service records a new status through `Orchestrator.transition`, which checks the
transition table, stores the document and appends to the event feed that the CLI's progress view
(and anything else watching) reads. Waiters are woken on every change.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from emulator.domain import statuses
from emulator.state.database import Database


class Orchestrator:
    def __init__(self, db: Database):
        self.db = db
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)

    def create(self, kind: str, id: str, doc: dict, parent: str | None = None, status: str | None = None) -> dict:
        first = status or next(iter(statuses.TRANSITIONS[kind][None]))
        statuses.check_transition(kind, None, first)
        with self._lock:
            doc = {**doc, "status": first, "createdAt": time.time(), "updatedAt": time.time()}
            self.db.put(kind, id, doc, parent=parent)
            self.db.add_event(kind, id, first, _summary(doc))
            self._changed.notify_all()
        return doc

    def transition(self, kind: str, id: str, new: str, **changes: Any) -> dict:
        """Moves a resource to `new`; refuses moves the table does not allow."""
        with self._lock:
            doc = self.db.get(kind, id)
            if doc is None:
                raise KeyError(f"{kind} {id}")
            current = doc.get("status")
            if current == new and not changes:
                return doc
            if current != new:
                statuses.check_transition(kind, current, new)
            changes["status"] = new
            changes["updatedAt"] = time.time()
            if statuses.is_terminal(kind, new) and "endTime" not in changes:
                changes["endTime"] = time.time()
            doc = self.db.update(kind, id, **changes)
            self.db.add_event(kind, id, new, _summary(doc))
            self._changed.notify_all()
            return doc

    def resume(self, kind: str, id: str, **changes: Any) -> dict:
        """A retry: a failed or stopped resource runs again (statuses.RESUMABLE)."""
        with self._lock:
            doc = self.db.get(kind, id)
            if doc is None:
                raise KeyError(f"{kind} {id}")
            statuses.check_resume(kind, doc.get("status"))
            resumed = statuses.resumed_status(kind)
            doc = self.db.update(kind, id, status=resumed, updatedAt=time.time(), endTime=None, **changes)
            self.db.add_event(kind, id, resumed, _summary(doc))
            self._changed.notify_all()
            return doc

    def update(self, kind: str, id: str, event: bool = True, **changes: Any) -> dict:
        """Changes fields other than status (phase lists, lifecycle events, outputs)."""
        with self._lock:
            changes["updatedAt"] = time.time()
            doc = self.db.update(kind, id, **changes)
            if event:
                self.db.add_event(kind, id, doc.get("status"), _summary(doc))
            self._changed.notify_all()
            return doc

    def wait_for_change(self, timeout: float) -> None:
        with self._lock:
            self._changed.wait(timeout)

    def notify(self) -> None:
        with self._lock:
            self._changed.notify_all()


def _summary(doc: dict) -> dict:
    """A small copy for the event feed: enough to render progress without re-reading."""
    keep = ("status", "name", "pipelineName", "stageName", "actionName", "currentPhase", "message",
            "instanceId", "lifecycleEvent", "deploymentId", "pipelineExecutionId", "projectName", "instanceLabel")
    return {k: doc[k] for k in keep if k in doc}
