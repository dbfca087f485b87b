"""CodeDeploy's management routes: applications, groups, configurations, deployments, the fleet,
and bundle upload for `pipelocal deploy`."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Body, Request

from emulator.control_plane import ControlPlane
from emulator.services.codedeploy.deployments import BUNDLE_TYPES

# Where `pipelocal deploy` puts bundles it packs from a local directory or file.
LOCAL_BUNDLE_BUCKET = "pipelocal-deploy-bundles"
MAX_BUNDLE_BYTES = 512 * 1024 * 1024


def codedeploy_router(cp: ControlPlane) -> APIRouter:
    r = APIRouter(prefix="/api")

    # -------------------------------------------------------- applications and groups

    @r.post("/applications")
    def create_application(payload: dict = Body(...)):
        return cp.apps.create_application(payload["applicationName"])

    @r.get("/applications")
    def list_applications():
        return {"applications": cp.apps.list_applications()}

    @r.get("/applications/{app}")
    def get_application(app: str):
        return cp.apps.get_application(app)

    @r.post("/applications/{app}/deployment-groups")
    def create_group(app: str, payload: dict = Body(...)):
        payload = dict(payload)
        name = payload.pop("deploymentGroupName")
        return cp.apps.create_group(app, name, **payload)

    @r.get("/applications/{app}/deployment-groups")
    def list_groups(app: str):
        return {"deploymentGroups": cp.apps.list_groups(app)}

    @r.get("/applications/{app}/deployment-groups/{group}")
    def get_group(app: str, group: str):
        return cp.apps.get_group(app, group)

    @r.post("/applications/{app}/deployment-groups/{group}")
    def update_group(app: str, group: str, payload: dict = Body(...)):
        allowed = {"deploymentConfigName", "ec2TagFilters", "autoRollbackConfiguration", "deploymentStyle",
                   "loadBalancerInfo", "blueGreenDeploymentConfiguration"}
        unknown = set(payload) - allowed
        if unknown:
            raise ValueError(f"deployment group update: unknown field(s) {', '.join(sorted(unknown))}; expected any "
                             f"of {', '.join(sorted(allowed))}")
        if "deploymentConfigName" in payload:
            cp.apps.get_config(payload["deploymentConfigName"])
        return cp.apps.update_group(app, group, **payload)

    # -------------------------------------------------------- deployment configurations

    @r.post("/deployment-configs")
    def create_config(payload: dict = Body(...)):
        return cp.apps.create_config(payload["deploymentConfigName"], payload.get("minimumHealthyHosts"),
                                     payload.get("computePlatform", "Server"))

    @r.get("/deployment-configs")
    def list_configs():
        return {"deploymentConfigsList": cp.apps.list_configs()}

    @r.get("/deployment-configs/{name}")
    def get_config(name: str):
        return cp.apps.get_config(name)

    @r.delete("/deployment-configs/{name}")
    def delete_config(name: str):
        cp.apps.delete_config(name)
        return {}

    # -------------------------------------------------------- deployments

    @r.post("/deployments")
    def create_deployment(payload: dict = Body(...)):
        return cp.deployments.create_deployment(
            payload["applicationName"], payload["deploymentGroupName"], payload["revision"],
            config_name=payload.get("deploymentConfigName"), description=payload.get("description", ""),
            file_exists_behavior=payload.get("fileExistsBehavior") or "DISALLOW",
            ignore_application_stop_failures=bool(payload.get("ignoreApplicationStopFailures")),
            auto_rollback=payload.get("autoRollbackConfiguration"),
            target_instances=payload.get("targetInstances"), instance_names=payload.get("instanceNames"),
            appspec_file=payload.get("appspecFile"), lifecycle_events=payload.get("lifecycleEvents"))

    @r.get("/deployments")
    def list_deployments(application: str | None = None, group: str | None = None):
        return {"deployments": cp.deployments.list(application, group)}

    @r.get("/deployments/{deployment_id}")
    def get_deployment(deployment_id: str):
        return {**cp.deployments.get(deployment_id), "targets": cp.deployments.targets(deployment_id)}

    @r.post("/deployments/{deployment_id}/stop")
    def stop_deployment(deployment_id: str, payload: dict = Body(default={})):
        auto_rollback = payload.get("autoRollbackEnabled")
        return cp.deployments.stop(deployment_id, None if auto_rollback is None else bool(auto_rollback))

    @r.post("/deployments/{deployment_id}/continue")
    def continue_deployment(deployment_id: str, payload: dict = Body(default={})):
        return cp.deployments.continue_deployment(deployment_id, payload.get("deploymentWaitType", "READY_WAIT"))

    @r.post("/deployments/{deployment_id}/redeploy")
    def redeploy(deployment_id: str, payload: dict = Body(default={})):
        return cp.deployments.redeploy(deployment_id, config_name=payload.get("deploymentConfigName"),
                                       file_exists_behavior=payload.get("fileExistsBehavior"))

    @r.get("/deployments/{deployment_id}/instances/{instance_id}/events/{event}/log")
    def event_log(deployment_id: str, instance_id: str, event: str):
        return {"log": cp.deployments.event_log(deployment_id, instance_id, event)}

    @r.post("/bundles")
    async def upload_bundle(request: Request, bundleType: str = "tgz"):  # noqa: N803 - AWS's field name
        """Stores a bundle sent as the raw request body; answers the revision to deploy it."""
        if bundleType not in BUNDLE_TYPES:
            raise ValueError(f"bundleType {bundleType!r}: expected one of {', '.join(BUNDLE_TYPES)}")
        data = await request.body()
        if not data or len(data) > MAX_BUNDLE_BYTES:
            raise ValueError(f"a bundle of 1 byte to {MAX_BUNDLE_BYTES // (1024 * 1024)} MB is expected")
        key = f"local/{hashlib.sha256(data).hexdigest()[:20]}.{bundleType}"
        cp.store.ensure_bucket(LOCAL_BUNDLE_BUCKET)
        etag = cp.store.put_bytes(LOCAL_BUNDLE_BUCKET, key, data)
        return {"revisionType": "S3", "s3Location": {"bucket": LOCAL_BUNDLE_BUCKET, "key": key,
                                                     "bundleType": bundleType, "eTag": etag}}

    # -------------------------------------------------------- the fleet

    @r.get("/instances")
    def list_instances(all: bool = False):
        return {"instances": cp.fleet.list(include_terminated=all)}

    @r.post("/instances")
    def launch_instances(payload: dict = Body(...)):
        count = payload.get("count", 1)
        tags = payload.get("tags") or {}
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
            raise ValueError(f"count {count!r}: expected a whole number from 1 to 100")
        if not isinstance(tags, dict) or not all(isinstance(k, str) and k and isinstance(v, str)
                                                 for k, v in tags.items()):
            raise ValueError("tags: expected an object of Key: Value strings")
        return {"instances": cp.fleet.launch(count, tags, name_prefix=payload.get("namePrefix") or "web")}

    @r.get("/instances/{instance_id}")
    def get_instance(instance_id: str):
        return cp.fleet.get(instance_id)

    @r.delete("/instances/{instance_id}")
    def terminate_instance(instance_id: str):
        return cp.fleet.terminate(instance_id)

    return r
