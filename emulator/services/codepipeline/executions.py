"""Pipeline executions: stages in order, actions by runOrder, artifacts and variables between them.

SUPERSEDED mode (CodePipeline's default): a stage runs one execution at a time; a newer
execution waiting in front of a stage (or a disabled transition) replaces an older one waiting
there, which ends Superseded. QUEUED waits its turn; PARALLEL never waits. A failed or stopped
execution can retry its failed stage; a stop either waits for running actions or abandons them.
Stage conditions are checked on entry, after success and after failure; a rollback (automatic or
RollbackStage) is a new execution that runs one stage with an earlier execution's inputs.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from typing import Callable

from emulator.domain import stage_conditions, statuses
from emulator.domain.errors import Conflict, NotFound
from emulator.domain.pipeline import stage_groups
from emulator.domain.pipeline_variables import UnresolvedVariable, resolve
from emulator.orchestration import Orchestrator
from emulator.services.codepipeline.action_providers import ActionContext, ActionOutcome, ManualApproval
from emulator.services.codepipeline.pipelines import Pipelines

EXECUTION = statuses.PIPELINE_EXECUTION
STAGE = statuses.STAGE_EXECUTION
ACTION = statuses.ACTION_EXECUTION
TRANSITION = "codepipeline-transition"


class RollbackRefused(Conflict):
    """The stage cannot be rolled back to that execution (AWS: UnableToRollbackStageException)."""


class RollbackTargetOutdated(Conflict):
    """The target ran an earlier pipeline structure (AWS: PipelineExecutionOutdatedException)."""


class _StageGate:
    """One execution inside a stage at a time; the newest waiter wins."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.occupant: str | None = None
        self.waiting: str | None = None


class Executions:
    def __init__(self, orch: Orchestrator, pipelines: Pipelines, providers: dict, artifact_bucket: str):
        self.orch = orch
        self.db = orch.db
        self.pipelines = pipelines
        self.providers = providers
        self.artifact_bucket = artifact_bucket
        self._gates: dict[tuple[str, str], _StageGate] = {}
        self._gates_lock = threading.Lock()
        self._stop: set[str] = set()
        self.providers.setdefault("Manual", ManualApproval())
        # Injected by the composition root: an alarm's state (None or LookupError if there is no such
        # alarm) and the time scale that compresses a rule's WaitTime.
        self.alarm_state: Callable[[str], str | None] = lambda name: None
        self.time_scale = None

    # ------------------------------------------------------------ API

    def start(self, pipeline_name: str, trigger: dict | None = None, source_commits: dict[str, str] | None = None,
              variables: dict[str, str] | None = None) -> str:
        """Pins every source revision now; a source that cannot be read fails its action, as on AWS."""
        pipeline = self.pipelines.get(pipeline_name)["pipeline"]
        declared = {v["name"]: v.get("defaultValue", "") for v in pipeline.get("variables", [])}
        for name in variables or {}:
            if name not in declared:
                raise ValueError(f"Variable {name!r} is not declared in pipeline {pipeline_name} "
                                 f"(declared: {', '.join(sorted(declared)) or 'none'})")
        resolved_variables = {**declared, **(variables or {})}
        pinned = {}
        for action in pipeline["stages"][0]["actions"]:
            commit = (source_commits or {}).get(action["name"])
            try:
                pinned[action["name"]] = self.providers[action["actionTypeId"]["provider"]].pin(
                    action.get("configuration", {}), commit)
            except LookupError as exc:
                pinned[action["name"]] = {"error": str(exc).strip("'\"")}
        execution_id = str(uuid.uuid4())
        revisions = [{"name": a["outputArtifacts"][0]["name"] if a.get("outputArtifacts") else a["name"],
                      "revisionId": pinned[a["name"]]["CommitId"],
                      "revisionSummary": pinned[a["name"]]["CommitMessage"], "created": time.time()}
                     for a in pipeline["stages"][0]["actions"] if "CommitId" in pinned[a["name"]]]
        self.orch.create(EXECUTION, execution_id, {
            "pipelineExecutionId": execution_id, "pipelineName": pipeline_name,
            "pipelineVersion": pipeline.get("version", 1), "artifactRevisions": revisions,
            "trigger": trigger or {"triggerType": "StartPipelineExecution", "triggerDetail": "pipelocal"},
            "executionMode": pipeline.get("executionMode", "SUPERSEDED"), "startTime": time.time(),
            "variables": [{"name": k, "resolvedValue": v} for k, v in resolved_variables.items()],
            "executionType": "STANDARD", "_sources": pinned, "_pipeline": pipeline,
        }, parent=pipeline_name, status="InProgress")
        threading.Thread(target=self._run, args=(execution_id,), name=f"pipeline-{execution_id[:8]}",
                         daemon=True).start()
        return execution_id

    def get(self, execution_id: str) -> dict:
        doc = self.db.get(EXECUTION, execution_id)
        if doc is None:
            raise NotFound("PipelineExecution", execution_id)
        return {k: v for k, v in doc.items() if not k.startswith("_")}

    def sources(self, execution_id: str) -> dict[str, dict]:
        """Source action name -> the revision the execution pinned when it started."""
        self.get(execution_id)
        return self.db.get(EXECUTION, execution_id).get("_sources", {})

    def list(self, pipeline_name: str) -> list[dict]:
        self.pipelines.get(pipeline_name)
        return [self.get(d["pipelineExecutionId"]) for d in reversed(self.db.list(EXECUTION, parent=pipeline_name))]

    def stages(self, execution_id: str) -> list[dict]:
        return self.db.list(STAGE, parent=execution_id)

    def actions(self, execution_id: str) -> list[dict]:
        return self.db.list(ACTION, parent=execution_id)

    def stop(self, execution_id: str, abandon: bool = False, reason: str = "") -> dict:
        """Stop and wait lets running actions finish; stop and abandon ends them Abandoned at once."""
        doc = self.get(execution_id)
        if doc["status"] != "InProgress" and not (abandon and doc["status"] == "Stopping"):
            raise Conflict(f"Execution {execution_id} is {doc['status']} and cannot be stopped")
        self._stop.add(execution_id)
        self.orch.transition(EXECUTION, execution_id, "Stopping", stopTrigger={"reason": reason})
        if abandon:
            for action in self.actions(execution_id):
                if action["status"] == "InProgress":
                    self.orch.transition(ACTION, action["actionExecutionId"], "Abandoned",
                                         summary="Abandoned: the execution was stopped")
            for stage in self.stages(execution_id):
                if stage["status"] in ("InProgress", "Stopping"):
                    self.orch.transition(STAGE, stage["id"], "Stopped")
            self.orch.transition(EXECUTION, execution_id, "Stopped")
        self.orch.notify()
        return self.get(execution_id)

    def retry(self, execution_id: str, stage_name: str, mode: str = "FAILED_ACTIONS") -> None:
        """RetryStageExecution: runs the failed stage again, then the stages after it."""
        doc = self.db.get(EXECUTION, execution_id)
        stage_id = f"{execution_id}:{stage_name}"
        stage = self.db.get(STAGE, stage_id)
        if stage is None or stage["status"] not in ("Failed", "Stopped") or doc["status"] not in ("Failed", "Stopped"):
            raise Conflict(f"Stage {stage_name} of execution {execution_id} is not a failed or stopped stage "
                           f"({stage['status'] if stage else 'never entered'}; execution {doc['status']})")
        self.orch.resume(STAGE, stage_id)
        self.orch.resume(EXECUTION, execution_id, statusSummary=None)
        threading.Thread(target=self._run, args=(execution_id, stage_name, mode), daemon=True,
                         name=f"pipeline-{execution_id[:8]}-retry").start()

    def rollback_stage(self, pipeline_name: str, stage_name: str, target_id: str) -> str:
        """RollbackStage: a new execution runs the stage with what an earlier one that succeeded in it used."""
        pipeline = self.pipelines.get(pipeline_name)["pipeline"]
        names = [s["name"] for s in pipeline["stages"]]
        if stage_name not in names:
            raise NotFound("Stage", stage_name)
        target = self.db.get(EXECUTION, target_id)
        if target is None or target["pipelineName"] != pipeline_name:
            raise NotFound("PipelineExecution", target_id)
        if names.index(stage_name) == 0:
            raise RollbackRefused(f"Stage {stage_name} is the source stage: a source stage cannot be rolled back")
        if pipeline.get("executionMode") == "PARALLEL":
            raise RollbackRefused(f"Pipeline {pipeline_name} runs in PARALLEL mode: stage rollback is not "
                                  "available there")
        if target.get("executionType") == "ROLLBACK":
            raise RollbackRefused(f"Execution {target_id} is itself a rollback: a rollback execution cannot be "
                                  "the target of another")
        if target.get("pipelineVersion") != pipeline.get("version", 1):
            raise RollbackTargetOutdated(
                f"Execution {target_id} ran pipeline version {target.get('pipelineVersion')}; the target must have "
                f"started in the current pipeline structure (version {pipeline.get('version', 1)})")
        stage = self.db.get(STAGE, f"{target_id}:{stage_name}")
        if not stage or stage["status"] != "Succeeded":
            raise RollbackRefused(f"Execution {target_id} did not succeed in stage {stage_name} "
                                  f"({stage['status'] if stage else 'it never entered it'}): the target must be "
                                  "an execution that succeeded in that stage")
        running = self._latest(STAGE, lambda d: d["pipelineName"] == pipeline_name and d["stageName"] == stage_name)
        if running and running["status"] in ("InProgress", "Stopping"):
            raise RollbackRefused(f"Stage {stage_name} is running execution {running['pipelineExecutionId']}; "
                                  "a stage can be rolled back once it is not in progress")
        return self._start_rollback(pipeline, stage_name, target, {
            "triggerType": "ManualRollback", "triggerDetail": f"RollbackStage of {stage_name} to {target_id}"})

    def set_transition(self, pipeline_name: str, stage_name: str, enabled: bool, reason: str = "") -> None:
        """EnableStageTransition / DisableStageTransition (inbound transition of a stage)."""
        self.pipelines.get(pipeline_name)
        key = f"{pipeline_name}/{stage_name}"
        if enabled:
            if self.db.get(TRANSITION, key):
                self.db.delete(TRANSITION, key)
        else:
            self.db.put(TRANSITION, key, {"enabled": False, "disabledReason": reason,
                                          "lastChangedBy": "pipelocal", "lastChangedAt": time.time()})
        self.orch.notify()

    def transition_state(self, pipeline_name: str, stage_name: str) -> dict:
        doc = self.db.get(TRANSITION, f"{pipeline_name}/{stage_name}")
        return doc or {"enabled": True}

    def approve(self, action_execution_id: str, token: str, status: str, summary: str) -> bool:
        """Passes an approval result to the waiting Manual action; False if none waits on this token."""
        doc = self.db.get(ACTION, action_execution_id)
        if not doc or doc.get("_token") != token:
            return False
        return self.providers["Manual"].decide(token, status, summary)

    def latest_action(self, pipeline_name: str, stage_name: str, action_name: str) -> dict | None:
        return self._latest(ACTION, lambda d: d["pipelineName"] == pipeline_name and d["stageName"] == stage_name
                            and d["actionName"] == action_name)

    def wait(self, execution_id: str, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            doc = self.get(execution_id)
            if statuses.is_terminal(EXECUTION, doc["status"]):
                return doc
            if deadline is not None and time.monotonic() > deadline:
                return doc
            self.orch.wait_for_change(1.0)

    def state(self, pipeline_name: str) -> dict:
        """GetPipelineState: the latest execution seen by each stage and action."""
        pipeline = self.pipelines.get(pipeline_name)
        stages = []
        for stage in pipeline["pipeline"]["stages"]:
            latest = self._latest(STAGE, lambda d: d["pipelineName"] == pipeline_name and d["stageName"] == stage["name"])
            actions = []
            for action in stage["actions"]:
                a = self._latest(ACTION, lambda d: d["pipelineName"] == pipeline_name and d["stageName"] ==
                                 stage["name"] and d["actionName"] == action["name"])
                entry = {"actionName": action["name"]}
                if a:
                    entry["latestExecution"] = {
                        "actionExecutionId": a["actionExecutionId"], "status": a["status"],
                        "summary": a.get("summary", ""), "lastStatusChange": a.get("updatedAt"),
                        "externalExecutionId": a.get("externalExecutionId", ""),
                        **({"token": a["_token"]} if a.get("_token") and a["status"] == "InProgress" else {}),
                        **({"errorDetails": {"code": "JobFailed", "message": a["errorMessage"]}}
                           if a.get("errorMessage") else {}),
                    }
                actions.append(entry)
            stages.append({"stageName": stage["name"], "actionStates": actions,
                           "inboundTransitionState": self.transition_state(pipeline_name, stage["name"]),
                           **({"latestExecution": {"pipelineExecutionId": latest["pipelineExecutionId"],
                                                   "status": latest["status"],
                                                   "type": latest.get("executionType") or "STANDARD"}}
                              if latest else {}),
                           **{f"{kind}ConditionState": value
                              for kind, value in ((latest or {}).get("conditionStates") or {}).items()}})
        return {"pipelineName": pipeline_name, "pipelineVersion": pipeline["pipeline"].get("version", 1),
                "stageStates": stages}

    def _latest(self, kind: str, match) -> dict | None:
        docs = [d for d in self.db.list(kind) if match(d)]
        return docs[-1] if docs else None

    # ------------------------------------------------------------ recovery

    def recover(self) -> list[str]:
        ended = []
        for kind in (ACTION, STAGE):
            for doc in self.db.list(kind, statuses=["InProgress", "Stopping"]):
                key = doc["actionExecutionId"] if kind == ACTION else doc["id"]
                self.orch.transition(kind, key, "Failed" if kind != ACTION or doc["status"] == "InProgress" else
                                     "Abandoned", errorMessage="interrupted: the control plane stopped")
        for doc in self.db.list(EXECUTION, statuses=["InProgress", "Stopping"]):
            self.orch.transition(EXECUTION, doc["pipelineExecutionId"], "Failed",
                                 statusSummary="interrupted: the control plane stopped during this execution")
            ended.append(doc["pipelineExecutionId"])
        return ended

    # ------------------------------------------------------------ running

    def _gate(self, pipeline: str, stage: str) -> _StageGate:
        with self._gates_lock:
            return self._gates.setdefault((pipeline, stage), _StageGate())

    def _enter(self, execution_id: str, pipeline: str, stage: str, mode: str) -> bool:
        """Waits for the stage; False if a newer execution superseded this one while it waited."""
        if mode == "PARALLEL":
            return True
        gate = self._gate(pipeline, stage)
        with gate.cond:
            if gate.occupant is not None and mode == "SUPERSEDED":
                if gate.waiting and gate.waiting != execution_id:
                    self._supersede(gate.waiting)
                gate.waiting = execution_id
                gate.cond.notify_all()
            while gate.occupant is not None:
                gate.cond.wait(1.0)
                if mode == "SUPERSEDED" and gate.waiting != execution_id:
                    return False
                if execution_id in self._stop:
                    if gate.waiting == execution_id:
                        gate.waiting = None
                    return False
            if gate.waiting == execution_id:
                gate.waiting = None
            gate.occupant = execution_id
            return True

    def _leave(self, pipeline: str, stage: str, mode: str) -> None:
        if mode == "PARALLEL":
            return
        gate = self._gate(pipeline, stage)
        with gate.cond:
            gate.occupant = None
            gate.cond.notify_all()

    def _supersede(self, execution_id: str) -> None:
        doc = self.db.get(EXECUTION, execution_id)
        if doc and doc["status"] == "InProgress":
            self.orch.transition(EXECUTION, execution_id, "Superseded",
                                 statusSummary="A newer execution overtook this one while it waited for a stage")

    def _run(self, execution_id: str, retry_stage: str | None = None, retry_mode: str = "FAILED_ACTIONS") -> None:
        try:
            self._execute(execution_id, retry_stage, retry_mode)
        except Exception as exc:
            doc = self.db.get(EXECUTION, execution_id)
            if doc and not statuses.is_terminal(EXECUTION, doc["status"]):
                self.orch.transition(EXECUTION, execution_id, "Failed",
                                     statusSummary=f"pipelocal error: {exc}\n{traceback.format_exc()[-1500:]}")
        finally:
            self._stop.discard(execution_id)

    def _execute(self, execution_id: str, retry_stage: str | None = None, retry_mode: str = "FAILED_ACTIONS") -> None:
        doc = self.db.get(EXECUTION, execution_id)
        pipeline = doc.get("_pipeline") or self.pipelines.get(doc["pipelineName"])["pipeline"]
        name, mode = pipeline["name"], pipeline.get("executionMode", "SUPERSEDED")
        artifacts: dict[str, tuple[str, str]] = {}
        namespaces: dict[str, dict[str, str]] = {"codepipeline": {"PipelineExecutionId": execution_id}}
        namespaces["variables"] = {v["name"]: v["resolvedValue"] for v in doc.get("variables", [])}
        stages = pipeline["stages"]
        keep: set[str] = set()
        rollback = doc.get("_rollback")
        if rollback:  # a rollback runs one stage with the target execution's inputs
            retry_stage = rollback["stage"]
            artifacts, namespaces, _ = self._carried_over(rollback["target"], namespaces, retry_stage, "ALL_ACTIONS")
            stages = [s for s in stages if s["name"] == retry_stage]
        elif retry_stage:
            artifacts, namespaces, keep = self._carried_over(execution_id, namespaces, retry_stage, retry_mode)
            stages = stages[[s["name"] for s in stages].index(retry_stage):]
        for index, stage in enumerate(stages):
            entering = stage is not pipeline["stages"][0] and not (retry_stage and index == 0)
            if entering and not self._through_transition(execution_id, name, stage["name"], mode):
                return self._end_waiting(execution_id)
            if not self._enter(execution_id, name, stage["name"], mode):
                return self._end_waiting(execution_id)
            then = "FAIL"  # what the stage's failure leads to: FAIL or ROLLBACK
            reason = f"Stage {stage['name']} failed"
            try:
                current = self.db.get(EXECUTION, execution_id)["status"]
                if current != "InProgress":
                    return self._end_stopped(execution_id, current)
                # A rollback runs the stage as it ran before, without conditions; a retried stage was entered.
                entry = None if rollback or (retry_stage and index == 0) else \
                    self._check(execution_id, stage, "beforeEntry")
                if entry and entry.status == "Abandoned":
                    ok = False
                elif entry and not entry.met:
                    stage_id = self._open_stage(execution_id, name, stage["name"],
                                                "Skipped" if entry.result == "SKIP" else "InProgress",
                                                conditionStates={"beforeEntry": entry.as_state()})
                    ok = entry.result == "SKIP"
                    if not ok:
                        self.orch.transition(STAGE, stage_id, "Failed")
                        reason = f"Stage {stage['name']} failed: its entry condition failed ({entry.summary})"
                else:
                    ok, unmet = self._run_stage(execution_id, name, stage, artifacts, namespaces, doc["_sources"],
                                                keep if stage["name"] == retry_stage else set(), not rollback, entry)
                    if not ok and unmet is None and execution_id not in self._stop:
                        then, decided = self._after_failure(execution_id, stage, bool(rollback))
                        if decided:
                            reason = f"Stage {stage['name']} failed; {decided}"
                        if then == "RETRY":
                            then = "FAIL"
                            ok, unmet = self._retry_automatically(
                                execution_id, name, stage, artifacts, namespaces, doc["_sources"],
                                ((stage.get("onFailure") or {}).get("retryConfiguration") or {}).get(
                                    "retryMode", "FAILED_ACTIONS"), not rollback)
                    if unmet is not None:
                        then = unmet.result
                        reason = f"Stage {stage['name']} failed: its onSuccess condition failed ({unmet.summary})"
            finally:
                self._leave(name, stage["name"], mode)
            if execution_id in self._stop:
                return self._end_stopped(execution_id, "Stopping")
            if not ok:
                self.orch.transition(EXECUTION, execution_id, "Failed", statusSummary=reason)
                if then == "ROLLBACK" and not rollback and mode != "PARALLEL":
                    self._roll_back(execution_id, pipeline, stage["name"])
                return
        self.orch.transition(EXECUTION, execution_id, "Succeeded")

    def _after_failure(self, execution_id: str, stage: dict, in_rollback: bool) -> tuple[str, str]:
        """What a failed stage's onFailure asks for (FAIL, RETRY or ROLLBACK) and why. With conditions,
        their result applies only when the condition is not met; otherwise the stage just fails."""
        on_failure = stage.get("onFailure") or {}
        if not on_failure.get("conditions") or in_rollback:
            return on_failure.get("result") or "FAIL", ""
        outcome = self._check(execution_id, stage, "onFailure")
        self._record(f"{execution_id}:{stage['name']}", outcome)
        if outcome.status != "Failed":
            return "FAIL", f"its onFailure condition was met ({outcome.summary}), so no {outcome.result} applies"
        return outcome.result, f"its onFailure condition failed ({outcome.summary}): {outcome.result}"

    def _check(self, execution_id: str, stage: dict, kind: str) -> stage_conditions.ConditionOutcome | None:
        conditions = (stage.get(kind) or {}).get("conditions") or []
        if not conditions:
            return None
        return stage_conditions.evaluate(kind, conditions[0], self._alarm_state,
                                         lambda seconds: self._wait(execution_id, seconds))

    def _record(self, stage_id: str, outcome: stage_conditions.ConditionOutcome) -> None:
        states = dict(self.db.get(STAGE, stage_id).get("conditionStates") or {})
        states[outcome.kind] = outcome.as_state()
        self.orch.update(STAGE, stage_id, event=False, conditionStates=states)

    def _alarm_state(self, name: str) -> str | None:
        try:
            return self.alarm_state(name)
        except LookupError:
            return None

    def _wait(self, execution_id: str, seconds: float) -> bool:
        """A rule's WaitTime, compressed by the time scale; False as soon as the execution is stopped."""
        deadline = time.monotonic() + (self.time_scale.real(seconds) if self.time_scale else seconds)
        while execution_id not in self._stop:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            self.orch.wait_for_change(min(1.0, left))
        return False

    def _retry_automatically(self, execution_id, pipeline_name, stage, artifacts, namespaces, sources, mode,
                             conditions=True):
        """onFailure RETRY: the failed stage runs once more before the execution fails."""
        keep = set()
        if mode == "FAILED_ACTIONS":
            latest = {a["actionName"]: a["status"] for a in self.actions(execution_id) if a["stageName"] == stage["name"]}
            keep = {n for n, status in latest.items() if status == "Succeeded"}
        self.orch.resume(STAGE, f"{execution_id}:{stage['name']}")
        self.orch.update(EXECUTION, execution_id, event=False,
                         stageRetry={"stageName": stage["name"], "retryMode": mode, "automatic": True})
        return self._run_stage(execution_id, pipeline_name, stage, artifacts, namespaces, sources, keep, conditions)

    def _roll_back(self, failed_id: str, pipeline: dict, stage_name: str) -> str | None:
        """onFailure ROLLBACK: a new execution runs the stage again with what the most recent
        execution that succeeded in it used (sources, artifacts, variables)."""
        version = pipeline.get("version", 1)
        for doc in reversed(self.db.list(EXECUTION, parent=pipeline["name"])):
            stage = self.db.get(STAGE, f"{doc['pipelineExecutionId']}:{stage_name}")
            if (doc["pipelineExecutionId"] == failed_id or doc.get("executionType") == "ROLLBACK" or not stage
                    or stage["status"] != "Succeeded" or doc.get("pipelineVersion") != version):
                continue
            return self._start_rollback(pipeline, stage_name, doc, {
                "triggerType": "AutomatedRollback", "triggerDetail": f"stage {stage_name} failed in {failed_id}"})
        self.orch.update(EXECUTION, failed_id, statusSummary=f"Stage {stage_name} failed; no earlier execution "
                                                              "succeeded in it, so there is nothing to roll back to")
        return None

    def _start_rollback(self, pipeline: dict, stage_name: str, target: dict, trigger: dict) -> str:
        target_id = target["pipelineExecutionId"]
        rollback_id = str(uuid.uuid4())
        self.orch.create(EXECUTION, rollback_id, {
            "pipelineExecutionId": rollback_id, "pipelineName": pipeline["name"],
            "pipelineVersion": pipeline.get("version", 1),
            "artifactRevisions": target.get("artifactRevisions", []), "variables": target.get("variables", []),
            "trigger": trigger, "executionMode": target.get("executionMode", "SUPERSEDED"), "startTime": time.time(),
            "executionType": "ROLLBACK", "rollbackMetadata": {"rollbackTargetPipelineExecutionId": target_id},
            "_sources": target.get("_sources", {}), "_pipeline": target.get("_pipeline") or pipeline,
            "_rollback": {"stage": stage_name, "target": target_id},
        }, parent=pipeline["name"], status="InProgress")
        threading.Thread(target=self._run, args=(rollback_id,), daemon=True,
                         name=f"pipeline-{rollback_id[:8]}-rollback").start()
        return rollback_id

    def _end_waiting(self, execution_id: str) -> None:
        """An execution that left a queue without entering: stopped, or superseded already."""
        if execution_id in self._stop:
            self._end_stopped(execution_id, self.db.get(EXECUTION, execution_id)["status"])

    def _through_transition(self, execution_id: str, pipeline: str, stage: str, mode: str) -> bool:
        """Waits while the stage's inbound transition is disabled; False if stopped or superseded there."""
        gate = self._gate(pipeline, f"transition:{stage}")
        while self.db.get(TRANSITION, f"{pipeline}/{stage}"):
            if execution_id in self._stop or self.db.get(EXECUTION, execution_id)["status"] != "InProgress":
                return False
            if mode == "SUPERSEDED":
                with gate.cond:
                    # superseding happens under this lock: read our own status under it too, or an
                    # execution already overtaken could overtake its successor in turn
                    if self.db.get(EXECUTION, execution_id)["status"] != "InProgress":
                        return False
                    if gate.waiting and gate.waiting != execution_id:
                        self._supersede(gate.waiting)
                    gate.waiting = execution_id
            self.orch.wait_for_change(1.0)
        with gate.cond:
            if gate.waiting == execution_id:
                gate.waiting = None
        return True

    def _carried_over(self, execution_id: str, namespaces: dict, retry_stage: str, mode: str):
        """Artifacts and variables the execution produced before the retried stage, and the actions to keep."""
        artifacts: dict[str, tuple[str, str]] = {}
        keep: set[str] = set()
        latest: dict[tuple[str, str], dict] = {}
        for action in self.actions(execution_id):
            latest[(action["stageName"], action["actionName"])] = action
        for (stage, name), action in latest.items():
            if action["status"] != "Succeeded":
                continue
            if stage == retry_stage:
                if mode == "ALL_ACTIONS":
                    continue
                keep.add(name)
            output = action.get("output") or {}
            for art in output.get("outputArtifacts", []):
                artifacts[art["name"]] = (art["s3location"]["bucket"], art["s3location"]["key"])
            if (action.get("input") or {}).get("namespace"):
                namespaces[action["input"]["namespace"]] = output.get("outputVariables") or {}
        return artifacts, namespaces, keep

    def _end_stopped(self, execution_id: str, current: str) -> None:
        if current in ("InProgress", "Stopping"):
            self.orch.transition(EXECUTION, execution_id, "Stopped")

    def _open_stage(self, execution_id: str, pipeline_name: str, stage_name: str, status: str = "InProgress",
                    **fields) -> str:
        stage_id = f"{execution_id}:{stage_name}"
        if self.db.get(STAGE, stage_id) is None:
            kind = self.db.get(EXECUTION, execution_id).get("executionType") or "STANDARD"
            self.orch.create(STAGE, stage_id, {"id": stage_id, "pipelineExecutionId": execution_id,
                                               "pipelineName": pipeline_name, "stageName": stage_name,
                                               "executionType": kind, **fields}, parent=execution_id, status=status)
        elif fields:
            self.orch.update(STAGE, stage_id, event=False, **fields)
        return stage_id

    def _run_stage(self, execution_id, pipeline_name, stage, artifacts, namespaces, sources, keep=frozenset(),
                   conditions=True, entry=None) -> tuple[bool, stage_conditions.ConditionOutcome | None]:
        """Runs the stage's actions, then its onSuccess condition; (succeeded, the onSuccess condition
        if it was not met)."""
        stage_id = self._open_stage(execution_id, pipeline_name, stage["name"],
                                    **({"conditionStates": {"beforeEntry": entry.as_state()}} if entry else {}))
        for group in stage_groups(stage):
            group = [a for a in group if a["name"] not in keep]
            if not group:
                continue
            outcomes = self._run_group(execution_id, pipeline_name, stage["name"], group, artifacts, namespaces,
                                       sources)
            if not all(o.status == "Succeeded" for o in outcomes) or execution_id in self._stop:
                status = "Stopped" if execution_id in self._stop else "Failed"
                self.orch.transition(STAGE, stage_id, status)
                return False, None
        verdict = self._check(execution_id, stage, "onSuccess") if conditions else None
        if verdict is not None:
            self._record(stage_id, verdict)
            if not verdict.met:
                self.orch.transition(STAGE, stage_id, "Stopped" if verdict.status == "Abandoned" else "Failed")
                return False, verdict if verdict.status == "Failed" else None
        self.orch.transition(STAGE, stage_id, "Succeeded")
        return True, None

    def _run_group(self, execution_id, pipeline_name, stage_name, group, artifacts, namespaces, sources):
        """Actions of one runOrder in parallel, on daemon threads: an approval waiting for days must
        not hold the process open at shutdown."""
        outcomes: list[ActionOutcome] = [ActionOutcome("Failed", error="not run")] * len(group)

        def work(index: int, action: dict) -> None:
            try:
                outcomes[index] = self._run_action(execution_id, pipeline_name, stage_name, action, artifacts,
                                                   namespaces, sources)
            except Exception as exc:
                outcomes[index] = ActionOutcome("Failed", error=f"pipelocal error: {exc}")

        threads = [threading.Thread(target=work, args=(i, a), daemon=True, name=f"action-{a['name'][:20]}")
                   for i, a in enumerate(group)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return outcomes

    def _run_action(self, execution_id, pipeline_name, stage_name, action, artifacts, namespaces, sources) -> ActionOutcome:
        action_id = str(uuid.uuid4())
        provider_name = action["actionTypeId"]["provider"]
        base = {"actionExecutionId": action_id, "pipelineExecutionId": execution_id, "pipelineName": pipeline_name,
                "stageName": stage_name, "actionName": action["name"], "startTime": time.time(),
                "input": {"actionTypeId": action["actionTypeId"], "configuration": action.get("configuration", {}),
                          "inputArtifacts": action.get("inputArtifacts", []), "namespace": action.get("namespace")}}
        self.orch.create(ACTION, action_id, base, parent=execution_id, status="InProgress")
        try:
            missing = [a["name"] for a in action.get("inputArtifacts", []) if a["name"] not in artifacts]
            if missing:
                raise LookupError(f"Input artifact {missing[0]!r} was not produced in this execution (was the stage "
                                  "that produces it skipped?)")
            configuration = resolve(action.get("configuration", {}), namespaces)
            self.orch.update(ACTION, action_id, event=False, resolvedConfiguration=configuration)
            ctx = ActionContext(
                pipeline_name=pipeline_name, execution_id=execution_id, action_name=action["name"],
                configuration=configuration,
                input_artifacts={a["name"]: artifacts[a["name"]] for a in action.get("inputArtifacts", [])},
                output_artifacts=[a["name"] for a in action.get("outputArtifacts", [])],
                source_revisions=sources, artifact_bucket=self.artifact_bucket,
                on_external_id=lambda ext: self.orch.update(ACTION, action_id, externalExecutionId=ext),
                timeout_minutes=action.get("timeoutInMinutes"),
                on_token=lambda token: self.orch.update(ACTION, action_id, _token=token),
                stopped=lambda: execution_id in self._stop,
            )
            outcome = self.providers[provider_name].run(ctx)
        except (UnresolvedVariable, ValueError, LookupError) as exc:
            outcome = ActionOutcome("Failed", error=str(exc))
        except Exception as exc:
            outcome = ActionOutcome("Failed", error=f"pipelocal error in {provider_name}: {exc}")
        artifacts.update(outcome.output_artifacts)
        if action.get("namespace"):
            namespaces[action["namespace"]] = outcome.output_variables
        if self.db.get(ACTION, action_id)["status"] != "InProgress":  # abandoned by a stop meanwhile
            return ActionOutcome("Failed", error="abandoned")
        self.orch.transition(
            ACTION, action_id, outcome.status, summary=outcome.summary or outcome.error,
            externalExecutionId=outcome.external_id, errorMessage=outcome.error or None,
            output={"outputArtifacts": [{"name": n, "s3location": {"bucket": b, "key": k}}
                                        for n, (b, k) in outcome.output_artifacts.items()],
                    "outputVariables": outcome.output_variables},
        )
        return outcome
