"""Pipeline executions: stages in order, actions by runOrder, artifacts and variables between them.

SUPERSEDED mode (CodePipeline's default): a stage runs one execution at a time; a newer
execution waiting in front of a stage replaces an older one waiting there, which ends Superseded.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor

from emulator.domain import statuses
from emulator.domain.errors import Conflict, NotFound
from emulator.domain.pipeline import stage_groups
from emulator.domain.pipeline_variables import UnresolvedVariable, resolve
from emulator.orchestration import Orchestrator
from emulator.services.codepipeline.action_providers import ActionContext, ActionOutcome, CodeCommitSource
from emulator.services.codepipeline.pipelines import Pipelines

EXECUTION = statuses.PIPELINE_EXECUTION
STAGE = statuses.STAGE_EXECUTION
ACTION = statuses.ACTION_EXECUTION


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

    # ------------------------------------------------------------ API

    def start(self, pipeline_name: str, trigger: dict | None = None, source_commits: dict[str, str] | None = None) -> str:
        pipeline = self.pipelines.get(pipeline_name)["pipeline"]
        source: CodeCommitSource = self.providers["CodeCommit"]
        pinned = {}
        for action in pipeline["stages"][0]["actions"]:
            commit = (source_commits or {}).get(action["name"])
            pinned[action["name"]] = source.pin(action.get("configuration", {}), commit)
        execution_id = str(uuid.uuid4())
        revisions = [{"name": a["outputArtifacts"][0]["name"] if a.get("outputArtifacts") else a["name"],
                      "revisionId": pinned[a["name"]]["CommitId"],
                      "revisionSummary": pinned[a["name"]]["CommitMessage"], "created": time.time()}
                     for a in pipeline["stages"][0]["actions"]]
        self.orch.create(EXECUTION, execution_id, {
            "pipelineExecutionId": execution_id, "pipelineName": pipeline_name,
            "pipelineVersion": pipeline.get("version", 1), "artifactRevisions": revisions,
            "trigger": trigger or {"triggerType": "StartPipelineExecution", "triggerDetail": "pipelocal"},
            "executionMode": pipeline.get("executionMode", "SUPERSEDED"), "startTime": time.time(),
            "_sources": pinned,
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
        doc = self.get(execution_id)
        if doc["status"] != "InProgress":
            raise Conflict(f"Execution {execution_id} is {doc['status']} and cannot be stopped")
        self._stop.add(execution_id)
        self.orch.transition(EXECUTION, execution_id, "Stopping", stopTrigger={"reason": reason})
        return self.get(execution_id)

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
                        **({"errorDetails": {"code": "JobFailed", "message": a["errorMessage"]}}
                           if a.get("errorMessage") else {}),
                    }
                actions.append(entry)
            stages.append({"stageName": stage["name"], "actionStates": actions,
                           **({"latestExecution": {"pipelineExecutionId": latest["pipelineExecutionId"],
                                                   "status": latest["status"]}} if latest else {})})
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

    def _run(self, execution_id: str) -> None:
        try:
            self._execute(execution_id)
        except Exception as exc:
            doc = self.db.get(EXECUTION, execution_id)
            if doc and not statuses.is_terminal(EXECUTION, doc["status"]):
                self.orch.transition(EXECUTION, execution_id, "Failed",
                                     statusSummary=f"pipelocal error: {exc}\n{traceback.format_exc()[-1500:]}")
        finally:
            self._stop.discard(execution_id)

    def _execute(self, execution_id: str) -> None:
        doc = self.db.get(EXECUTION, execution_id)
        pipeline = self.pipelines.get(doc["pipelineName"])["pipeline"]
        name, mode = pipeline["name"], pipeline.get("executionMode", "SUPERSEDED")
        artifacts: dict[str, tuple[str, str]] = {}
        namespaces: dict[str, dict[str, str]] = {"codepipeline": {"PipelineExecutionId": execution_id}}
        namespaces["variables"] = {v["name"]: v.get("defaultValue", "") for v in pipeline.get("variables", [])}
        for stage in pipeline["stages"]:
            if not self._enter(execution_id, name, stage["name"], mode):
                return
            try:
                current = self.db.get(EXECUTION, execution_id)["status"]
                if current != "InProgress":
                    return self._end_stopped(execution_id, current)
                ok = self._run_stage(execution_id, name, stage, artifacts, namespaces, doc["_sources"])
            finally:
                self._leave(name, stage["name"], mode)
            if execution_id in self._stop:
                return self._end_stopped(execution_id, "Stopping")
            if not ok:
                self.orch.transition(EXECUTION, execution_id, "Failed",
                                     statusSummary=f"Stage {stage['name']} failed")
                return
        self.orch.transition(EXECUTION, execution_id, "Succeeded")

    def _end_stopped(self, execution_id: str, current: str) -> None:
        if current in ("InProgress", "Stopping"):
            self.orch.transition(EXECUTION, execution_id, "Stopped")

    def _run_stage(self, execution_id, pipeline_name, stage, artifacts, namespaces, sources) -> bool:
        stage_id = f"{execution_id}:{stage['name']}"
        self.orch.create(STAGE, stage_id, {"id": stage_id, "pipelineExecutionId": execution_id,
                                           "pipelineName": pipeline_name, "stageName": stage["name"]},
                         parent=execution_id, status="InProgress")
        for group in stage_groups(stage):
            with ThreadPoolExecutor(max_workers=len(group)) as pool:
                outcomes = list(pool.map(
                    lambda action: self._run_action(execution_id, pipeline_name, stage["name"], action, artifacts,
                                                    namespaces, sources), group))
            if not all(o.status == "Succeeded" for o in outcomes) or execution_id in self._stop:
                status = "Stopped" if execution_id in self._stop else "Failed"
                self.orch.transition(STAGE, stage_id, status)
                return False
        self.orch.transition(STAGE, stage_id, "Succeeded")
        return True

    def _run_action(self, execution_id, pipeline_name, stage_name, action, artifacts, namespaces, sources) -> ActionOutcome:
        action_id = str(uuid.uuid4())
        provider_name = action["actionTypeId"]["provider"]
        base = {"actionExecutionId": action_id, "pipelineExecutionId": execution_id, "pipelineName": pipeline_name,
                "stageName": stage_name, "actionName": action["name"], "startTime": time.time(),
                "input": {"actionTypeId": action["actionTypeId"], "configuration": action.get("configuration", {}),
                          "inputArtifacts": action.get("inputArtifacts", []), "namespace": action.get("namespace")}}
        self.orch.create(ACTION, action_id, base, parent=execution_id, status="InProgress")
        try:
            configuration = resolve(action.get("configuration", {}), namespaces)
            ctx = ActionContext(
                pipeline_name=pipeline_name, execution_id=execution_id, action_name=action["name"],
                configuration=configuration,
                input_artifacts={a["name"]: artifacts[a["name"]] for a in action.get("inputArtifacts", [])},
                output_artifacts=[a["name"] for a in action.get("outputArtifacts", [])],
                source_revisions=sources, artifact_bucket=self.artifact_bucket,
                on_external_id=lambda ext: self.orch.update(ACTION, action_id, externalExecutionId=ext),
            )
            outcome = self.providers[provider_name].run(ctx)
        except (UnresolvedVariable, ValueError, LookupError) as exc:
            outcome = ActionOutcome("Failed", error=str(exc))
        except Exception as exc:
            outcome = ActionOutcome("Failed", error=f"pipelocal error in {provider_name}: {exc}")
        artifacts.update(outcome.output_artifacts)
        if action.get("namespace"):
            namespaces[action["namespace"]] = outcome.output_variables
        self.orch.transition(
            ACTION, action_id, outcome.status, summary=outcome.summary or outcome.error,
            externalExecutionId=outcome.external_id, errorMessage=outcome.error or None,
            output={"outputArtifacts": [{"name": n, "s3location": {"bucket": b, "key": k}}
                                        for n, (b, k) in outcome.output_artifacts.items()],
                    "outputVariables": outcome.output_variables},
        )
        return outcome
