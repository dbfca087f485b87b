"""Batch builds (StartBuildBatch and the batch operations): the builds of a buildspec's `batch`,
started through BuildService as soon as the builds they depend on have ended (BatchSchedule), so
independent builds run together (BuildService runs two at a time; the rest wait in QUEUED).

The batch document follows BatchGetBuildBatches: buildBatchStatus, currentPhase and phases
(SUBMITTED, DOWNLOAD_BATCHSPEC, IN_PROGRESS, then SUCCEEDED, FAILED or STOPPED), buildGroups[]
with identifier, dependsOn, ignoreFailure, currentBuildSummary and priorBuildSummaryList.
The project's `buildBatchConfig` (or StartBuildBatch's `buildBatchConfigOverride`) applies:
`restrictions.maximumBuildsAllowed` and `restrictions.computeTypesAllowed` fail a batch that
asks for more (in DOWNLOAD_BATCHSPEC, before any build starts), `timeoutInMins` ends it TIMED_OUT.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

from emulator.domain import statuses
from emulator.domain.buildspec import parse_buildspec
from emulator.domain.errors import NotFound
from emulator.domain.statuses import TransitionRefused
from emulator.orchestration import Orchestrator
from emulator.services.codebuild.batch_plan import BatchSchedule, BatchTask, expand_batch
from emulator.services.codebuild.builds import KIND as BUILD, BuildRequest, BuildService

KIND = statuses.BUILD_BATCH
RETRY_TYPES = ("RETRY_ALL_BUILDS", "RETRY_FAILED_BUILDS")
_POLL_SECONDS = 1.0
RETRY_KEPT = 50  # batches whose source is kept for RetryBuildBatch


class BatchService:
    def __init__(self, orch: Orchestrator, builds: BuildService):
        self.orch = orch
        self.db = orch.db
        self.builds = builds
        self._runs: dict[str, tuple[BuildRequest, list[BatchTask], bool]] = {}  # what a retry runs again
        self._stop_requested: set[str] = set()

    # ------------------------------------------------------------ API

    def start_build_batch(self, request: BuildRequest, config_override: dict | None = None) -> dict:
        """Parses the buildspec and every task's buildspec now: a bad one is refused (400) before any build."""
        project = self.builds.projects.get(request.project_name)
        text, file = self.builds._buildspec_text(project, request)
        spec = parse_buildspec(text, file)
        tasks = expand_batch(spec)
        for task in tasks:
            if task.buildspec:
                sub = dataclasses.replace(request, buildspec_override=task.buildspec)
                parse_buildspec(*self.builds._buildspec_text(project, sub))
        config = _check_config(config_override if config_override is not None else project.get("buildBatchConfig") or {})
        batch_id = f"{project['name']}:{uuid.uuid4()}"
        now = time.time()
        doc = {
            "id": batch_id,
            "arn": f"arn:aws:codebuild:{self.db.region}:{self.db.account}:build-batch/{batch_id}",
            "projectName": project["name"], "startTime": now, "complete": False,
            "buildBatchNumber": self.db.next_number(f"build-batch:{project['name']}"),
            "currentPhase": "SUBMITTED",
            "phases": [{"phaseType": "SUBMITTED", "phaseStatus": "SUCCEEDED", "startTime": now, "endTime": now,
                        "durationInSeconds": 0}],
            "sourceVersion": request.source_version or None, "resolvedSourceVersion": request.resolved_source_version or None,
            "initiator": request.initiator,
            "buildTimeoutInMinutes": int(request.timeout_override or project.get("timeoutInMinutes", 60)),
            "environment": {k: v for k, v in project["environment"].items() if k != "environmentVariables"},
            "buildBatchConfig": config,
            "buildGroups": [{"identifier": t.identifier, "dependsOn": list(t.depend_on),
                             "ignoreFailure": t.ignore_failure, "priorBuildSummaryList": []} for t in tasks],
        }
        self.orch.create(KIND, batch_id, _clean(doc), parent=project["name"], status="IN_PROGRESS")
        self._runs[batch_id] = (request, tasks, spec.batch.fast_fail)
        while len(self._runs) > RETRY_KEPT:  # sources are held in memory: only the newest batches can be retried
            self._runs.pop(next(iter(self._runs)))
        self._launch(batch_id, rerun=None)
        return self.get(batch_id)

    def get(self, batch_id: str) -> dict:
        doc = self.db.get(KIND, batch_id)
        if doc is None:
            raise NotFound("BuildBatch", batch_id)
        return {**{k: v for k, v in doc.items() if not k.startswith("_")}, "buildBatchStatus": doc.get("status")}

    def list_for_project(self, project_name: str) -> list[dict]:
        return [self.get(d["id"]) for d in reversed(self.db.list(KIND, parent=project_name))]

    def list_ids(self, project_name: str | None = None, status: str | None = None, descending: bool = True) -> list[str]:
        """Batch ids, newest first unless `descending` is False; optionally one status only."""
        docs = self.db.list(KIND, parent=project_name) if project_name else self.db.list(KIND)
        docs = sorted((d for d in docs if status is None or d.get("status") == status), key=lambda d: d.get("startTime", 0))
        ids = [d["id"] for d in docs]
        return ids[::-1] if descending else ids

    def stop(self, batch_id: str) -> dict:
        """StopBuildBatch: running builds are stopped, builds not started never run; the batch ends STOPPED."""
        doc = self.get(batch_id)
        if not doc.get("complete"):
            self._stop_requested.add(batch_id)
            for group in doc.get("buildGroups", []):
                summary = group.get("currentBuildSummary") or {}
                if summary.get("buildStatus") == "IN_PROGRESS" and summary.get("arn"):
                    self.builds.stop(summary["arn"].split(":build/", 1)[1])
            self.orch.notify()
        return self.get(batch_id)

    def retry(self, batch_id: str, retry_type: str | None = None) -> dict:
        """RetryBuildBatch: a batch that did not succeed runs again under the same id. RETRY_FAILED_BUILDS
        (the default) reruns the builds that did not succeed; RETRY_ALL_BUILDS reruns every build. Each
        rerun group's previous build moves to priorBuildSummaryList."""
        retry_type = retry_type or "RETRY_FAILED_BUILDS"
        if retry_type not in RETRY_TYPES:
            raise ValueError(f"retryType {retry_type!r}: expected one of {', '.join(RETRY_TYPES)}")
        doc = self.get(batch_id)
        if not doc.get("complete") or doc.get("status") not in statuses.RESUMABLE[KIND]:
            raise TransitionRefused(f"Build batch {batch_id} is {doc.get('status')}: only a completed batch that did "
                                f"not succeed can be retried")
        if batch_id not in self._runs:
            raise TransitionRefused(f"Build batch {batch_id}: its source is no longer held (only the {RETRY_KEPT} "
                                f"newest batches since the control plane started can be retried); start a new batch")
        groups = doc["buildGroups"]
        rerun = {g["identifier"] for g in groups if retry_type == "RETRY_ALL_BUILDS"
                 or (g.get("currentBuildSummary") or {}).get("buildStatus") != "SUCCEEDED"}
        for group in groups:
            if group["identifier"] in rerun and group.get("currentBuildSummary"):
                group["priorBuildSummaryList"] = group.get("priorBuildSummaryList", []) + [group.pop("currentBuildSummary")]
        now = time.time()
        phases = doc["phases"] + [{"phaseType": "SUBMITTED", "phaseStatus": "SUCCEEDED", "startTime": now,
                                   "endTime": now, "durationInSeconds": 0}]
        self._stop_requested.discard(batch_id)
        self.orch.resume(KIND, batch_id, complete=False, buildGroups=groups, phases=phases, currentPhase="SUBMITTED")
        self._launch(batch_id, rerun=rerun)
        return self.get(batch_id)

    def delete(self, batch_id: str) -> dict:
        """DeleteBuildBatch: the batch and its builds (the ones a retry replaced too); not while it runs."""
        doc = self.get(batch_id)
        if not doc.get("complete"):
            raise TransitionRefused(f"Build batch {batch_id} is still in progress: stop it first")
        deleted = []
        for group in doc.get("buildGroups", []):
            for summary in [group.get("currentBuildSummary") or {}, *group.get("priorBuildSummaryList", [])]:
                build_id = (summary.get("arn") or "").split(":build/", 1)[-1]
                if build_id and self.db.get(BUILD, build_id) is not None:
                    self.db.delete(BUILD, build_id)
                    deleted.append(build_id)
        self.db.delete(KIND, batch_id)
        self._runs.pop(batch_id, None)
        self.orch.notify()
        return {"buildsDeleted": deleted, "buildsNotDeleted": []}

    def recover(self) -> list[str]:
        """After a restart: batches that were running end FAILED (their builds were ended by BuildService)."""
        ended = []
        for doc in self.db.list(KIND, statuses=["IN_PROGRESS"]):
            self._end(doc["id"], "FAILED", "interrupted: the control plane stopped during this batch")
            ended.append(doc["id"])
        return ended

    # ------------------------------------------------------------ the batch

    def _launch(self, batch_id: str, rerun: set[str] | None) -> None:
        threading.Thread(target=self._run, args=(batch_id, rerun), name=f"batch-{batch_id[-8:]}", daemon=True).start()

    def _run(self, batch_id: str, rerun: set[str] | None) -> None:
        request, tasks, fast_fail = self._runs[batch_id]
        final, message = "FAULT", None
        try:
            doc = self.get(batch_id)
            self._phase(batch_id, "DOWNLOAD_BATCHSPEC")
            problem = _restriction_problem(tasks, doc.get("buildBatchConfig") or {}, request, doc["environment"])
            if problem:
                self._end_phase(batch_id, "FAILED", f"CLIENT_ERROR: {problem}")
                final, message = "FAILED", problem
                return
            self._end_phase(batch_id, "SUCCEEDED")
            self._phase(batch_id, "IN_PROGRESS")
            final, message = self._schedule(batch_id, request, tasks, fast_fail, rerun, doc)
            self._end_phase(batch_id, "SUCCEEDED" if final == "SUCCEEDED" else final if final in ("STOPPED", "TIMED_OUT") else "FAILED",
                            message)
        except Exception as exc:  # a fault of pipelocal itself, never of the user's batch
            final, message = "FAULT", f"pipelocal error: {exc}"
        finally:
            self._end(batch_id, final, message)

    def _schedule(self, batch_id: str, request: BuildRequest, tasks: list[BatchTask], fast_fail: bool,
                  rerun: set[str] | None, doc: dict) -> tuple[str, str | None]:
        schedule = BatchSchedule(tasks, fast_fail)
        for task in tasks:  # a retry keeps the builds it does not rerun
            if rerun is not None and task.identifier not in rerun:
                schedule.finish(task.identifier, "SUCCEEDED")
        timeout = (doc.get("buildBatchConfig") or {}).get("timeoutInMins")
        deadline = time.monotonic() + timeout * 60 if timeout else None
        running: dict[str, str] = {}  # build id -> identifier
        outcome: str | None = None
        while True:
            if outcome is None and batch_id in self._stop_requested:
                outcome = "STOPPED"
            if outcome is None and deadline is not None and time.monotonic() > deadline:
                outcome = "TIMED_OUT"
            if outcome is not None:
                for build_id in running:
                    self.builds.stop(build_id)
                for task in schedule.ready():
                    schedule.stop(task.identifier, f"the batch was {outcome.lower().replace('_', ' ')}")
            else:
                for task in schedule.ready():
                    build = self._start(batch_id, request, task)
                    schedule.start(task.identifier)
                    running[build["id"]] = task.identifier
            for identifier, note in schedule.notes.items():
                self._summary(batch_id, identifier, None, "STOPPED")
            if not running and (schedule.done() or outcome is not None):
                break
            self.orch.wait_for_change(_POLL_SECONDS)
            for build_id, identifier in list(running.items()):
                build = self.builds.get(build_id)
                if not build.get("buildComplete"):
                    continue
                del running[build_id]
                schedule.finish(identifier, build["buildStatus"])
                self._summary(batch_id, identifier, build, build["buildStatus"])
                if schedule.failed and fast_fail and outcome is None:
                    for other in running:  # fast-fail: the batch fails now, its running builds stop
                        self.builds.stop(other)
        if outcome is not None:
            return outcome, {"STOPPED": "the batch was stopped",
                             "TIMED_OUT": f"Build batch timed out after {timeout} minutes"}[outcome]
        failed = [t.identifier for t in tasks if schedule.ended.get(t.identifier) != "SUCCEEDED" and not t.ignore_failure]
        return schedule.status(), (f"builds that did not succeed: {', '.join(failed)}" if failed else None)

    def _start(self, batch_id: str, request: BuildRequest, task: BatchTask) -> dict:
        overrides = [{"name": k, "value": v, "type": "PLAINTEXT"} for k, v in task.variables.items()]
        build = self.builds.start_build(dataclasses.replace(
            request, initiator=f"batch/{batch_id}",
            buildspec_override=task.buildspec or request.buildspec_override,
            env_override_list=(request.env_override_list or []) + overrides,
            image_override=task.image or request.image_override,
            compute_type_override=task.compute_type or request.compute_type_override,
            privileged_override=task.privileged_mode if task.privileged_mode is not None else request.privileged_override))
        arn = self.db.get(KIND, batch_id)["arn"]
        self.orch.update(BUILD, build["id"], event=False, buildBatchArn=arn)
        self._summary(batch_id, task.identifier, build, "IN_PROGRESS")
        return build

    def _summary(self, batch_id: str, identifier: str, build: dict | None, build_status: str) -> None:
        doc = self.db.get(KIND, batch_id)
        for group in doc["buildGroups"]:
            if group["identifier"] == identifier:
                if build is None and group.get("currentBuildSummary"):
                    return  # it ran: its own status stands
                group["currentBuildSummary"] = _clean({"arn": build["arn"] if build else None,
                                                       "requestedOn": build["startTime"] if build else time.time(),
                                                       "buildStatus": build_status})
        self.orch.update(KIND, batch_id, buildGroups=doc["buildGroups"])

    def _phase(self, batch_id: str, phase: str) -> None:
        doc = self.db.get(KIND, batch_id)
        phases = doc["phases"] + [{"phaseType": phase, "startTime": time.time()}]
        self.orch.update(KIND, batch_id, phases=phases, currentPhase=phase)

    def _end_phase(self, batch_id: str, status: str, message: str | None = None) -> None:
        doc = self.db.get(KIND, batch_id)
        phases = doc["phases"]
        if phases and "endTime" not in phases[-1]:
            now = time.time()
            phases[-1].update(phaseStatus=status, endTime=now,
                              durationInSeconds=int(now - phases[-1]["startTime"]))
            if message:
                phases[-1]["contexts"] = [{"statusCode": message.split(":", 1)[0] if message.startswith("CLIENT_ERROR") else status,
                                           "message": message}]
        self.orch.update(KIND, batch_id, phases=phases)

    def _end(self, batch_id: str, status: str, message: str | None) -> None:
        """The closing phase (SUCCEEDED, FAILED or STOPPED, as CodeBuild names it) and the status."""
        doc = self.db.get(KIND, batch_id)
        if doc is None:
            return
        if doc["phases"] and "endTime" not in doc["phases"][-1]:
            self._end_phase(batch_id, "FAILED" if status == "FAULT" else status, message)
            doc = self.db.get(KIND, batch_id)
        now = time.time()
        closing = status if status in ("SUCCEEDED", "STOPPED") else "FAILED"
        phases = doc["phases"] + [{"phaseType": closing, "startTime": now}]
        self.orch.transition(KIND, batch_id, status, complete=True, endTime=now, phases=phases, currentPhase=closing)
        self._stop_requested.discard(batch_id)


def _check_config(config: dict) -> dict:
    """buildBatchConfig: the fields pipelocal applies, checked (ValueError names the field)."""
    if not isinstance(config, dict):
        raise ValueError("buildBatchConfig: expected an object")
    restrictions = config.get("restrictions") or {}
    maximum = restrictions.get("maximumBuildsAllowed")
    if maximum is not None and (not isinstance(maximum, int) or isinstance(maximum, bool) or maximum < 1):
        raise ValueError(f"buildBatchConfig.restrictions.maximumBuildsAllowed: expected a whole number of at least 1, not {maximum!r}")
    allowed = restrictions.get("computeTypesAllowed")
    if allowed is not None and (not isinstance(allowed, list) or not all(isinstance(c, str) for c in allowed)):
        raise ValueError("buildBatchConfig.restrictions.computeTypesAllowed: expected a list of compute types")
    timeout = config.get("timeoutInMins")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool) or not 5 <= timeout <= 2160):
        raise ValueError(f"buildBatchConfig.timeoutInMins: expected 5 to 2160, not {timeout!r}")
    return config


def _restriction_problem(tasks: list[BatchTask], config: dict, request: BuildRequest, environment: dict) -> str | None:
    restrictions = config.get("restrictions") or {}
    maximum = restrictions.get("maximumBuildsAllowed")
    if maximum is not None and len(tasks) > maximum:
        return (f"the batch has {len(tasks)} builds, more than buildBatchConfig.restrictions."
                f"maximumBuildsAllowed ({maximum})")
    allowed = restrictions.get("computeTypesAllowed")
    if allowed:
        for task in tasks:
            compute = task.compute_type or request.compute_type_override or environment.get("computeType")
            if compute not in allowed:
                return (f"build {task.identifier} asks for compute type {compute}, not in buildBatchConfig."
                        f"restrictions.computeTypesAllowed ({', '.join(allowed)})")
    return None


def _clean(doc: dict) -> dict:
    """Without empty values: AWS leaves absent fields out."""
    return {k: v for k, v in doc.items() if v is not None}
