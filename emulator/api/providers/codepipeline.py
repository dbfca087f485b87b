"""CodePipeline's API (CodePipeline_20150709) over the pipeline and execution services."""

from __future__ import annotations

import time

from emulator.api.aws_protocol import AwsError
from emulator.services.codepipeline.executions import Executions, RollbackRefused, RollbackTargetOutdated
from emulator.services.codepipeline.pipelines import KIND as PIPELINE, Pipelines


class CodePipelineProvider:
    NOT_FOUND = {"Pipeline": "PipelineNotFoundException", "PipelineExecution": "PipelineExecutionNotFoundException",
                 "Stage": "StageNotFoundException", "Action": "ActionNotFoundException"}
    CONFLICT = "PipelineNameInUseException"
    INVALID = {"CreatePipeline": "InvalidStructureException", "UpdatePipeline": "InvalidStructureException",
               "*": "ValidationException"}
    STATE = "ConflictException"

    def __init__(self, pipelines: Pipelines, executions: Executions):
        self.pipelines = pipelines
        self.executions = executions

    # ------------------------------------------------------------ pipelines

    def CreatePipeline(self, p: dict) -> dict:
        """As on AWS, a new pipeline starts its first execution at once."""
        doc = self.pipelines.create(p["pipeline"])
        self.executions.start(doc["pipeline"]["name"], trigger={"triggerType": "CreatePipeline",
                                                               "triggerDetail": "pipelocal"})
        return {"pipeline": doc["pipeline"], "tags": p.get("tags", [])}

    def UpdatePipeline(self, p: dict) -> dict:
        return {"pipeline": self.pipelines.update(p["pipeline"])["pipeline"]}

    def GetPipeline(self, p: dict) -> dict:
        doc = self.pipelines.get(p["name"])
        if "version" in p and p["version"] != doc["pipeline"].get("version", 1):
            raise AwsError("PipelineVersionNotFoundException",
                           f"Pipeline {p['name']} has no version {p['version']}; the current version is "
                           f"{doc['pipeline'].get('version', 1)} (earlier versions are not kept)")
        return doc

    def DeletePipeline(self, p: dict) -> dict:
        if self.pipelines.db.get(PIPELINE, p["name"]):  # deleting a missing pipeline succeeds
            self.pipelines.delete(p["name"])
        return {}

    def ListPipelines(self, p: dict) -> dict:
        return {"pipelines": [{
            "name": d["pipeline"]["name"], "version": d["pipeline"].get("version", 1),
            "pipelineType": d["pipeline"].get("pipelineType", "V1"),
            "executionMode": d["pipeline"].get("executionMode", "SUPERSEDED"),
            "created": d["metadata"]["created"], "updated": d["metadata"]["updated"],
        } for d in self.pipelines.list()]}

    # ------------------------------------------------------------ executions

    def StartPipelineExecution(self, p: dict) -> dict:
        self.pipelines.get(p["name"])
        variables = {v["name"]: v["value"] for v in p.get("variables", [])}
        overrides = {o["actionName"]: o["revisionValue"] for o in p.get("sourceRevisions", [])
                     if o.get("revisionType") == "COMMIT_ID"}
        return {"pipelineExecutionId": self.executions.start(
            p["name"], trigger={"triggerType": "StartPipelineExecution", "triggerDetail": "pipelocal"},
            source_commits=overrides or None, variables=variables)}

    def StopPipelineExecution(self, p: dict) -> dict:
        self.pipelines.get(p["pipelineName"])
        doc = self._execution(p["pipelineName"], p["pipelineExecutionId"])
        if doc["status"] == "Stopping":
            raise AwsError("DuplicatedStopRequestException",
                           f"Execution {doc['pipelineExecutionId']} is already being stopped")
        if doc["status"] != "InProgress":
            raise AwsError("PipelineExecutionNotStoppableException",
                           f"Execution {doc['pipelineExecutionId']} is {doc['status']}: only an InProgress "
                           "execution can be stopped")
        self.executions.stop(doc["pipelineExecutionId"], bool(p.get("abandon")), p.get("reason", ""))
        return {"pipelineExecutionId": doc["pipelineExecutionId"]}

    def GetPipelineState(self, p: dict) -> dict:
        state = self.executions.state(p["name"])
        meta = self.pipelines.get(p["name"])["metadata"]
        return {**state, "created": meta["created"], "updated": meta["updated"]}

    def GetPipelineExecution(self, p: dict) -> dict:
        self.pipelines.get(p["pipelineName"])
        doc = self._execution(p["pipelineName"], p["pipelineExecutionId"])
        return {"pipelineExecution": {**doc, "artifactRevisions": [
            {**r, "created": r.get("created")} for r in doc.get("artifactRevisions", [])]}}

    def ListPipelineExecutions(self, p: dict) -> dict:
        summaries = []
        for doc in self.executions.list(p["pipelineName"]):
            summaries.append({
                **doc, "lastUpdateTime": doc.get("updatedAt"),
                "sourceRevisions": [{"actionName": name, "revisionId": rev.get("CommitId", ""),
                                     "revisionSummary": rev.get("CommitMessage", "")}
                                    for name, rev in self.executions.sources(doc["pipelineExecutionId"]).items()],
            })
        return {"pipelineExecutionSummaries": summaries}  # paged by the protocol layer

    def ListActionExecutions(self, p: dict) -> dict:
        pipeline = self.pipelines.get(p["pipelineName"])
        wanted = (p.get("filter") or {}).get("pipelineExecutionId")
        ids = [wanted] if wanted else [e["pipelineExecutionId"] for e in self.executions.list(p["pipelineName"])]
        if wanted:
            self._execution(p["pipelineName"], wanted)
        details = []
        for execution_id in ids:
            for a in self.executions.actions(execution_id):
                output = a.get("output") or {}
                details.append({
                    **a, "pipelineVersion": pipeline["pipeline"].get("version", 1),
                    "lastUpdateTime": a.get("updatedAt"),
                    "input": {**a.get("input", {}), "resolvedConfiguration": a.get("resolvedConfiguration")},
                    "output": {
                        "outputArtifacts": [{"name": o["name"], "s3location": o["s3location"]}
                                            for o in output.get("outputArtifacts", [])],
                        "outputVariables": output.get("outputVariables") or {},
                        "executionResult": {"externalExecutionId": a.get("externalExecutionId") or "",
                                            "externalExecutionSummary": a.get("summary") or ""},
                    },
                })
        details.sort(key=lambda d: d.get("startTime") or 0, reverse=True)
        return {"actionExecutionDetails": details}

    # ------------------------------------------------------------ approvals, transitions, retries

    def PutApprovalResult(self, p: dict) -> dict:
        stage, action = self._action(p["pipelineName"], p["stageName"], p["actionName"])
        if action["actionTypeId"]["provider"] != "Manual":
            raise AwsError("ActionNotFoundException", f"Action {p['actionName']} in stage {p['stageName']} is not "
                                                      "a manual approval action")
        latest = self.executions.latest_action(p["pipelineName"], p["stageName"], p["actionName"])
        if latest is None or latest.get("_token") != p["token"]:
            raise AwsError("InvalidApprovalTokenException",
                           f"The token does not match the approval waiting in {p['stageName']}/{p['actionName']}")
        if latest["status"] != "InProgress" or not self.executions.approve(
                latest["actionExecutionId"], p["token"], p["result"]["status"], p["result"].get("summary", "")):
            raise AwsError("ApprovalAlreadyCompletedException",
                           f"The approval in {p['stageName']}/{p['actionName']} has already completed "
                           f"({latest['status']})")
        return {"approvedAt": time.time()}

    def EnableStageTransition(self, p: dict) -> dict:
        self._stage(p["pipelineName"], p["stageName"])
        self.executions.set_transition(p["pipelineName"], p["stageName"], True)
        return {}

    def DisableStageTransition(self, p: dict) -> dict:
        self._stage(p["pipelineName"], p["stageName"])
        if p["transitionType"] == "Outbound":
            raise AwsError("ValidationException", "Outbound transitions are not supported here: disable the "
                                                  "inbound transition of the next stage")
        self.executions.set_transition(p["pipelineName"], p["stageName"], False, p["reason"])
        return {}

    def RetryStageExecution(self, p: dict) -> dict:
        self._stage(p["pipelineName"], p["stageName"])
        doc = self._execution(p["pipelineName"], p["pipelineExecutionId"])
        state = self.executions.state(p["pipelineName"])
        latest = next(s for s in state["stageStates"] if s["stageName"] == p["stageName"]).get("latestExecution")
        if latest and latest["pipelineExecutionId"] != doc["pipelineExecutionId"]:
            raise AwsError("NotLatestPipelineExecutionException",
                           f"Execution {latest['pipelineExecutionId']} entered stage {p['stageName']} after "
                           f"{doc['pipelineExecutionId']}; only the latest execution in a stage can be retried")
        if doc["status"] not in ("Failed", "Stopped") or not latest or latest["status"] not in ("Failed", "Stopped"):
            raise AwsError("StageNotRetryableException",
                           f"Stage {p['stageName']} of execution {doc['pipelineExecutionId']} has not failed "
                           f"(execution {doc['status']})")
        self.executions.retry(doc["pipelineExecutionId"], p["stageName"], p["retryMode"])
        return {"pipelineExecutionId": doc["pipelineExecutionId"]}

    def RollbackStage(self, p: dict) -> dict:
        self._stage(p["pipelineName"], p["stageName"])
        self._execution(p["pipelineName"], p["targetPipelineExecutionId"])
        try:
            execution_id = self.executions.rollback_stage(p["pipelineName"], p["stageName"],
                                                          p["targetPipelineExecutionId"])
        except RollbackTargetOutdated as exc:
            raise AwsError("PipelineExecutionOutdatedException", str(exc)) from None
        except RollbackRefused as exc:
            raise AwsError("UnableToRollbackStageException", str(exc)) from None
        return {"pipelineExecutionId": execution_id}

    def _stage(self, pipeline_name: str, stage_name: str) -> dict:
        for stage in self.pipelines.get(pipeline_name)["pipeline"]["stages"]:
            if stage["name"] == stage_name:
                return stage
        raise AwsError("StageNotFoundException", f"Pipeline {pipeline_name} has no stage {stage_name}")

    def _action(self, pipeline_name: str, stage_name: str, action_name: str) -> tuple[dict, dict]:
        stage = self._stage(pipeline_name, stage_name)
        for action in stage["actions"]:
            if action["name"] == action_name:
                return stage, action
        raise AwsError("ActionNotFoundException", f"Stage {stage_name} of {pipeline_name} has no action {action_name}")

    def _execution(self, pipeline_name: str, execution_id: str) -> dict:
        doc = self.executions.get(execution_id)
        if doc["pipelineName"] != pipeline_name:
            raise AwsError("PipelineExecutionNotFoundException",
                           f"Execution {execution_id} does not belong to pipeline {pipeline_name}")
        return doc
