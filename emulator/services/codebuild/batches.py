"""Batch builds (StartBuildBatch): the builds of a buildspec's `batch`, run one after another
through BuildService, dependencies first (batch_plan.py), with fast-fail and ignore-failure.

The batch document follows BatchGetBuildBatches: buildBatchStatus, buildGroups[] with identifier,
dependsOn, ignoreFailure and currentBuildSummary {arn, buildStatus}. Builds run one at a time on
this machine (CodeBuild runs independent ones in parallel).
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

from emulator.domain import statuses
from emulator.domain.buildspec import parse_buildspec
from emulator.domain.errors import NotFound
from emulator.orchestration import Orchestrator
from emulator.services.codebuild.batch_plan import expand_batch
from emulator.services.codebuild.builds import BuildRequest, BuildService

KIND = statuses.BUILD_BATCH


class BatchService:
    def __init__(self, orch: Orchestrator, builds: BuildService):
        self.orch = orch
        self.db = orch.db
        self.builds = builds

    def start_build_batch(self, request: BuildRequest) -> dict:
        """Parses the buildspec and every task's buildspec now: a bad one is refused (400) before any build."""
        project = self.builds.projects.get(request.project_name)
        text, file = self.builds._buildspec_text(project, request)
        tasks = expand_batch(parse_buildspec(text, file))
        for task in tasks:
            if task.buildspec:
                sub = dataclasses.replace(request, buildspec_override=task.buildspec)
                parse_buildspec(*self.builds._buildspec_text(project, sub))
        spec = parse_buildspec(text, file)
        batch_id = f"{project['name']}:{uuid.uuid4()}"
        doc = {
            "id": batch_id,
            "arn": f"arn:aws:codebuild:{self.db.region}:{self.db.account}:build-batch/{batch_id}",
            "projectName": project["name"], "startTime": time.time(), "complete": False,
            "buildBatchNumber": self.db.next_number(f"build-batch:{project['name']}"),
            "buildGroups": [{"identifier": t.identifier, "dependsOn": list(t.depend_on),
                             "ignoreFailure": t.ignore_failure, "currentBuildSummary": None} for t in tasks],
        }
        self.orch.create(KIND, batch_id, doc, parent=project["name"], status="IN_PROGRESS")
        threading.Thread(target=self._run, args=(batch_id, request, tasks, spec.batch.fast_fail),
                         name=f"batch-{doc['buildBatchNumber']}", daemon=True).start()
        return self.get(batch_id)

    def get(self, batch_id: str) -> dict:
        doc = self.db.get(KIND, batch_id)
        if doc is None:
            raise NotFound("BuildBatch", batch_id)
        return {**doc, "buildBatchStatus": doc.get("status")}

    def list_for_project(self, project_name: str) -> list[dict]:
        return [self.get(d["id"]) for d in reversed(self.db.list(KIND, parent=project_name))]

    def _run(self, batch_id: str, request: BuildRequest, tasks, fast_fail: bool) -> None:
        results: dict[str, tuple[str, bool]] = {}
        failed = False
        status = "FAULT"
        try:
            for task in tasks:
                blocked = [d for d in task.depend_on if results[d][0] != "SUCCEEDED" and not results[d][1]]
                if blocked or (failed and fast_fail):
                    results[task.identifier] = ("STOPPED", task.ignore_failure)
                    self._group(batch_id, task.identifier, None, "STOPPED")
                    continue
                overrides = [{"name": k, "value": v, "type": "PLAINTEXT"} for k, v in task.variables.items()]
                build = self.builds.start_build(dataclasses.replace(
                    request, initiator=f"batch/{batch_id}",
                    buildspec_override=task.buildspec or request.buildspec_override,
                    env_override_list=(request.env_override_list or []) + overrides,
                    image_override=task.image or request.image_override,
                    compute_type_override=task.compute_type or request.compute_type_override,
                    privileged_override=task.privileged_mode if task.privileged_mode is not None
                    else request.privileged_override))
                self._group(batch_id, task.identifier, build["arn"], "IN_PROGRESS")
                done = self.builds.wait(build["id"])
                results[task.identifier] = (done["buildStatus"], task.ignore_failure)
                self._group(batch_id, task.identifier, build["arn"], done["buildStatus"])
                if done["buildStatus"] != "SUCCEEDED" and not task.ignore_failure:
                    failed = True
            status = "SUCCEEDED" if all(s == "SUCCEEDED" or ignore for s, ignore in results.values()) else "FAILED"
        finally:
            self.orch.transition(KIND, batch_id, status, complete=True, endTime=time.time())

    def _group(self, batch_id: str, identifier: str, arn: str | None, build_status: str) -> None:
        groups = self.db.get(KIND, batch_id)["buildGroups"]
        for group in groups:
            if group["identifier"] == identifier:
                group["currentBuildSummary"] = {"arn": arn, "buildStatus": build_status}
        self.orch.update(KIND, batch_id, buildGroups=groups)
