"""CodePipeline's API (CodePipeline_20150709) over the pipeline and execution services."""

from __future__ import annotations

from emulator.api.aws_protocol import AwsError
from emulator.services.codepipeline.executions import Executions
from emulator.services.codepipeline.pipelines import Pipelines


class CodePipelineProvider:
    NOT_FOUND = {"Pipeline": "PipelineNotFoundException", "PipelineExecution": "PipelineExecutionNotFoundException",
                 "Stage": "StageNotFoundException", "Action": "ActionNotFoundException"}
    CONFLICT = "PipelineNameInUseException"
    INVALID = "InvalidStructureException"
    STATE = "ConflictException"

    def __init__(self, pipelines: Pipelines, executions: Executions):
        self.pipelines = pipelines
        self.executions = executions

    # ------------------------------------------------------------ pipelines

    def CreatePipeline(self, p: dict) -> dict:
        doc = self.pipelines.create(p["pipeline"])
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
        if self.pipelines.db.get("codepipeline-pipeline", p["name"]):  # deleting a missing pipeline succeeds
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
        return {"pipelineExecutionId": self.executions.start(p["name"])}

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
        limit = p.get("maxResults")
        return {"pipelineExecutionSummaries": summaries[:limit] if limit else summaries}

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

    def _execution(self, pipeline_name: str, execution_id: str) -> dict:
        doc = self.executions.get(execution_id)
        if doc["pipelineName"] != pipeline_name:
            raise AwsError("PipelineExecutionNotFoundException",
                           f"Execution {execution_id} does not belong to pipeline {pipeline_name}")
        return doc
