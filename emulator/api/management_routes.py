"""The control plane's own REST API, used by the `pipelocal` CLI (and the console later)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Body, Query

from emulator.control_plane import ControlPlane
from emulator.domain.pipeline import load_pipeline


def management_router(cp: ControlPlane) -> APIRouter:
    r = APIRouter(prefix="/api")

    @r.get("/health")
    def health():
        return {"status": "ok", "store": cp.settings.store_url, "port": cp.settings.port}

    # -------------------------------------------------------- events (live progress)

    @r.get("/events/cursor")
    def events_cursor():
        return {"last": cp.db.last_event_seq()}

    @r.get("/events")
    async def events(after: int = 0, wait: float = Query(default=10.0, le=30.0)):
        """Long poll: returns as soon as there is something after `after`, or after `wait` seconds."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            found = cp.db.events_after(after)
            if found or asyncio.get_running_loop().time() >= deadline:
                return {"events": found, "last": found[-1]["seq"] if found else after}
            await asyncio.to_thread(cp.orch.wait_for_change, 1.0)

    # -------------------------------------------------------- repositories

    @r.post("/repositories")
    def create_repository(payload: dict = Body(...)):
        return cp.repos.create(payload["repositoryName"], payload.get("repositoryDescription", ""))

    @r.get("/repositories")
    def list_repositories():
        return {"repositories": cp.repos.list()}

    @r.delete("/repositories/{name}")
    def delete_repository(name: str):
        return cp.repos.delete(name)

    # codebuild routes: emulator/api/codebuild_routes.py

    # codedeploy routes: emulator/api/codedeploy_routes.py

    # -------------------------------------------------------- codepipeline

    @r.post("/pipelines")
    def create_pipeline(payload: dict = Body(...)):
        decl = payload.get("pipeline", payload)
        return cp.pipelines.create(decl)

    @r.post("/pipelines/from-text")
    def create_pipeline_text(payload: dict = Body(...)):
        decl = load_pipeline(payload["text"], payload.get("file", "pipeline.json"))
        if payload.get("update") and cp.db.get("codepipeline-pipeline", decl["name"]):
            return cp.pipelines.update(decl)
        return cp.pipelines.create(decl)

    @r.get("/pipelines")
    def list_pipelines():
        return {"pipelines": [p["pipeline"] | {"metadata": p["metadata"]} for p in cp.pipelines.list()]}

    @r.get("/pipelines/{name}")
    def get_pipeline(name: str):
        return cp.pipelines.get(name)

    @r.get("/pipelines/{name}/state")
    def pipeline_state(name: str):
        return cp.executions.state(name)

    @r.post("/pipelines/{name}/executions")
    def start_execution(name: str):
        return {"pipelineExecutionId": cp.executions.start(name)}

    @r.get("/pipelines/{name}/executions")
    def list_executions(name: str):
        return {"pipelineExecutionSummaries": cp.executions.list(name)}

    @r.get("/executions/{execution_id}")
    def get_execution(execution_id: str):
        return {**cp.executions.get(execution_id), "stages": cp.executions.stages(execution_id),
                "actions": cp.executions.actions(execution_id)}

    @r.post("/executions/{execution_id}/stop")
    def stop_execution(execution_id: str, payload: dict = Body(default={})):
        return cp.executions.stop(execution_id, bool(payload.get("abandon")), payload.get("reason", ""))

    return r
