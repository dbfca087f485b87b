"""REST routes of CodeBuild (projects, builds, reports) and of the Parameter Store / Secrets Manager stand-in."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Body, Query

from emulator.control_plane import ControlPlane
from emulator.services.codebuild.builds import BuildRequest


def codebuild_router(cp: ControlPlane) -> APIRouter:
    r = APIRouter(prefix="/api")

    # -------------------------------------------------------- projects

    @r.post("/projects")
    def create_project(payload: dict = Body(...)):
        return cp.projects.create(payload)

    @r.get("/projects")
    def list_projects():
        return {"projects": cp.projects.list()}

    @r.get("/projects/{name}")
    def get_project(name: str):
        return cp.projects.get(name)

    @r.patch("/projects/{name}")
    def update_project(name: str, payload: dict = Body(...)):
        return cp.projects.update(name, payload)

    @r.delete("/projects/{name}")
    def delete_project(name: str):
        cp.projects.delete(name)
        return {"deleted": name}

    @r.get("/projects/{name}/builds")
    def project_builds(name: str):
        cp.projects.get(name)
        return {"builds": cp.builds.list_for_project(name)}

    @r.post("/projects/{name}/builds")
    def start_build(name: str, payload: dict = Body(...)):
        """StartBuild with the source as a base64 zip (`sourceZip`) and AWS's override fields."""
        return cp.builds.start_build(_request(name, payload))

    @r.post("/projects/{name}/build-batches")
    def start_build_batch(name: str, payload: dict = Body(...)):
        """StartBuildBatch: the same fields as StartBuild; the buildspec needs a batch section."""
        return cp.batches.start_build_batch(_request(name, payload), payload.get("buildBatchConfigOverride"))

    @r.get("/projects/{name}/build-batches")
    def project_batches(name: str):
        cp.projects.get(name)
        return {"buildBatches": cp.batches.list_for_project(name)}

    @r.get("/build-batches/{batch_id}")
    def get_build_batch(batch_id: str):
        return cp.batches.get(batch_id)

    @r.post("/build-batches/{batch_id}/stop")
    def stop_build_batch(batch_id: str):
        return cp.batches.stop(batch_id)

    @r.post("/build-batches/{batch_id}/retry")
    def retry_build_batch(batch_id: str, payload: dict = Body(default={})):
        """RetryBuildBatch: `retryType` RETRY_FAILED_BUILDS (default) or RETRY_ALL_BUILDS."""
        return cp.batches.retry(batch_id, payload.get("retryType"))

    @r.delete("/build-batches/{batch_id}")
    def delete_build_batch(batch_id: str):
        return cp.batches.delete(batch_id)

    def _request(name: str, payload: dict) -> BuildRequest:
        try:
            source = base64.b64decode(payload.get("sourceZip", ""), validate=True)
        except (binascii.Error, TypeError):
            raise ValueError("sourceZip: expected a base64-encoded zip of the source") from None
        output = payload.get("outputLocation")
        request = BuildRequest(
            project_name=name, source_zip=source,
            source_version=payload.get("sourceVersion", ""),
            resolved_source_version=payload.get("resolvedSourceVersion", ""),
            source_repo_url=payload.get("sourceRepoUrl", ""),
            initiator=payload.get("initiator", "pipelocal"),
            buildspec_override=payload.get("buildspecOverride"),
            env_override_list=payload.get("environmentVariablesOverride"),
            image_override=payload.get("imageOverride"),
            compute_type_override=payload.get("computeTypeOverride"),
            privileged_override=payload.get("privilegedModeOverride"),
            timeout_override=payload.get("timeoutInMinutesOverride"),
            output_location=(output["bucket"], output["key"]) if output else None,
        )
        return request

    # -------------------------------------------------------- builds

    @r.get("/builds/{build_id}")
    def get_build(build_id: str):
        return cp.builds.get(build_id)

    @r.get("/builds/{build_id}/log")
    def build_log(build_id: str, after: int = 0):
        cp.builds.get(build_id)
        lines = cp.db.read_log("build", build_id, after)
        return {"chunks": [{"seq": s, "text": t} for s, t in lines]}

    @r.post("/builds/{build_id}/stop")
    def stop_build(build_id: str):
        return cp.builds.stop(build_id)

    # -------------------------------------------------------- parameters and secrets

    @r.post("/parameters")
    def put_parameter(payload: dict = Body(...)):
        return cp.params.put_parameter(payload["name"], payload["value"], payload.get("type", "String"),
                                       bool(payload.get("overwrite", False)))

    @r.get("/parameters")
    def list_parameters():
        return {"parameters": cp.params.list_parameters()}

    @r.get("/parameters/value")
    def get_parameter(name: str = Query(...), with_decryption: bool = Query(False, alias="withDecryption")):
        return cp.params.get_parameter(name, with_decryption)

    @r.delete("/parameters/value")
    def delete_parameter(name: str = Query(...)):
        cp.params.delete_parameter(name)
        return {"deleted": name}

    @r.post("/secrets")
    def create_secret(payload: dict = Body(...)):
        return cp.params.create_secret(payload["name"], payload["secretString"])

    @r.put("/secrets/value")
    def put_secret_value(payload: dict = Body(...)):
        return cp.params.put_secret_value(payload["secretId"], payload["secretString"])

    @r.get("/secrets")
    def list_secrets():
        return {"secrets": cp.params.list_secrets()}

    @r.get("/secrets/value")
    def get_secret_value(secret_id: str = Query(..., alias="secretId"),
                         version_stage: str | None = Query(None, alias="versionStage")):
        return cp.params.get_secret_value(secret_id, version_stage)

    @r.delete("/secrets/value")
    def delete_secret(secret_id: str = Query(..., alias="secretId")):
        cp.params.delete_secret(secret_id)
        return {"deleted": secret_id}

    return r
