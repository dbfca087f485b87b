"""CodeBuild builds: a buildspec run by the runner in a fresh container of the project's image.

The host side owns what happens outside user commands: queueing, provisioning, source download,
artifact upload, finalizing and teardown (which always runs). The runner inside the container
owns INSTALL through POST_BUILD and reports them over the internal API.
"""

from __future__ import annotations

import io
import re
import secrets
import tarfile
import threading
import time
import traceback
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from emulator import contracts
from emulator.domain import statuses
from emulator.domain.artifact_selection import NoArtifactsMatched, select_artifacts
from emulator.domain.buildspec import parse_buildspec, plan_phases
from emulator.domain.errors import NotFound, SpecError
from emulator.orchestration import Orchestrator
from emulator.runtime.container_payload import code_tar, tar_directory_tree
from emulator.runtime.container_runtime import LABEL_OWNER, LABEL_ROLE, ContainerRuntime, ContainerSpec
from emulator.services.codebuild import build_cache
from emulator.services.codebuild.build_environment import (
    ReferenceError_,
    build_variables,
    check_runtime_versions,
    check_source_identifier,
    check_variable_list,
    resolve_variables,
    secondary_source_dir,
)
from emulator.services.codebuild.projects import COMPUTE_TYPES, Projects
from emulator.services.codebuild.runtime_packs import RuntimePackError, RuntimeStore
from emulator.services.codebuild.reports import collect_reports
from emulator.services.parameters.store import ParameterStore
from emulator.store.object_store import ObjectStore

KIND = statuses.BUILD
PATH_PREFIX_VARIABLE = "PIPELOCAL_PATH_PREFIX"  # the runner puts it before the image's PATH
HOST_PHASES_BEFORE = ["SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE"]
RUNNER_PHASES = ["INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD"]


@dataclass
class SecondarySource:
    """A source besides the primary one, extracted to CODEBUILD_SRC_DIR_<identifier>."""

    identifier: str
    source_zip: bytes
    source: dict  # as BatchGetBuilds shows it in secondarySources: {type, location, sourceIdentifier}
    version: str = ""


@dataclass
class BuildRequest:
    project_name: str
    source_zip: bytes
    source_version: str = ""
    resolved_source_version: str = ""
    source_repo_url: str = ""
    initiator: str = "pipelocal"
    env_overrides: dict[str, str] | None = None
    output_location: tuple[str, str] | None = None  # (bucket, key) of the output artifact zip
    buildspec_override: str | None = None
    # environmentVariablesOverride of StartBuild: [{name, value, type}], type PLAINTEXT,
    # PARAMETER_STORE or SECRETS_MANAGER; applied after env_overrides' project layer
    env_override_list: list[dict] | None = None
    image_override: str | None = None
    compute_type_override: str | None = None
    privileged_override: bool | None = None
    timeout_override: int | None = None
    secondary_sources: list[SecondarySource] | None = None
    # artifactIdentifier -> (bucket, key) of a zip: buildspec secondary-artifacts a pipeline action takes
    # as its output artifacts (an action with several outputs)
    secondary_output_locations: dict[str, tuple[str, str]] | None = None


@dataclass
class Endpoints:
    """Addresses as seen from inside containers."""

    control_url: str
    store_url: str
    store_access_key: str
    store_secret_key: str


class BuildService:
    def __init__(self, orch: Orchestrator, projects: Projects, store: ObjectStore, runtime: ContainerRuntime,
                 endpoints: Endpoints, max_concurrent: int = 2, params: ParameterStore | None = None,
                 cache_dir: Path | None = None):
        self.params = params
        self.cache_dir = cache_dir  # LOCAL cache entries, by project
        self._runtime_mounts: dict[str, list[tuple[str, str]]] = {}
        self.orch = orch
        self.db = orch.db
        self.projects = projects
        self.store = store
        self.runtime = runtime
        self.endpoints = endpoints
        self._slots = threading.Semaphore(max_concurrent)
        self._plans: dict[str, contracts.BuildPlan] = {}
        self._results: dict[str, contracts.RunnerResult] = {}

    # ------------------------------------------------------------ API

    def start_build(self, request: BuildRequest) -> dict:
        project = dict(self.projects.get(request.project_name))
        check_variable_list(request.env_override_list, "environmentVariablesOverride")
        for name in request.env_overrides or {}:
            if name.startswith("CODEBUILD_"):
                raise ValueError(f"environment variable {name}: names starting with CODEBUILD_ are reserved")
        environment = dict(project["environment"])
        if request.image_override:
            environment["image"] = request.image_override
        if request.compute_type_override:
            if request.compute_type_override not in COMPUTE_TYPES:
                raise ValueError(f"computeTypeOverride {request.compute_type_override!r}: use one of {', '.join(COMPUTE_TYPES)}")
            environment["computeType"] = request.compute_type_override
        if request.privileged_override is not None:
            environment["privilegedMode"] = bool(request.privileged_override)
        project["environment"] = environment
        for i, secondary in enumerate(request.secondary_sources or []):
            check_source_identifier(secondary.identifier, f"secondarySources[{i}].sourceIdentifier")
        identifiers = [s.identifier for s in request.secondary_sources or []]
        if len(set(identifiers)) != len(identifiers):
            raise ValueError(f"secondarySources: each sourceIdentifier must be unique ({', '.join(identifiers)})")
        if request.timeout_override:
            if not 5 <= int(request.timeout_override) <= 2160:
                raise ValueError("timeoutInMinutesOverride: expected 5 to 2160")
            project["timeoutInMinutes"] = int(request.timeout_override)
        number = self.db.next_number(f"build:{project['name']}")
        build_id = f"{project['name']}:{uuid.uuid4()}"
        now = time.time()
        doc = {
            "id": build_id,
            "arn": f"arn:aws:codebuild:{self.db.region}:{self.db.account}:build/{build_id}",
            "buildNumber": number,
            "projectName": project["name"],
            "startTime": now,
            "currentPhase": "SUBMITTED",
            "sourceVersion": request.source_version,
            "resolvedSourceVersion": request.resolved_source_version,
            "initiator": request.initiator,
            "buildComplete": False,
            "phases": [{"phaseType": "SUBMITTED", "phaseStatus": "SUCCEEDED", "startTime": now, "endTime": now,
                        "durationInSeconds": 0}],
            "environment": {k: v for k, v in project["environment"].items() if k != "environmentVariables"},
            "timeoutInMinutes": project.get("timeoutInMinutes", 60),
            "logs": {"groupName": f"/aws/codebuild/{project['name']}", "streamName": build_id.split(":", 1)[1]},
            "exportedEnvironmentVariables": [],
            "_token": secrets.token_hex(16),
        }
        if request.output_location:
            doc["artifacts"] = {"location": f"arn:aws:s3:::{request.output_location[0]}/{request.output_location[1]}"}
        if request.secondary_sources:
            doc["secondarySources"] = [{**s.source, "sourceIdentifier": s.identifier} for s in request.secondary_sources]
            doc["secondarySourceVersions"] = [{"sourceIdentifier": s.identifier, "sourceVersion": s.version}
                                              for s in request.secondary_sources if s.version]
        if request.secondary_output_locations:
            doc["secondaryArtifacts"] = [{"artifactIdentifier": name, "location": f"arn:aws:s3:::{b}/{k}"}
                                         for name, (b, k) in request.secondary_output_locations.items()]
        self.orch.create(KIND, build_id, doc, parent=project["name"], status="IN_PROGRESS")
        self._set_phase(build_id, "QUEUED")
        threading.Thread(target=self._run, args=(build_id, project, request), name=f"build-{number}",
                         daemon=True).start()
        return self.get(build_id)

    def get(self, build_id: str) -> dict:
        doc = self.db.get(KIND, build_id)
        if doc is None:
            raise NotFound("Build", build_id)
        return {k: v for k, v in doc.items() if not k.startswith("_")}

    def list_for_project(self, project_name: str) -> list[dict]:
        return [self.get(d["id"]) for d in reversed(self.db.list(KIND, parent=project_name))]

    def wait(self, build_id: str, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            doc = self.get(build_id)
            if doc.get("buildComplete"):
                return doc
            if deadline is not None and time.monotonic() > deadline:
                return doc
            self.orch.wait_for_change(1.0)

    def stop(self, build_id: str) -> dict:
        doc = self.get(build_id)
        if not doc.get("buildComplete"):
            self.orch.update(KIND, build_id, _stopRequested=True)
            self.runtime.stop(_container_name(doc), timeout=2)
        return self.get(build_id)

    def log_text(self, build_id: str) -> str:
        return self.db.log_text(KIND, build_id)

    # ------------------------------------------------------------ internal API (runner)

    def check_token(self, build_id: str, token: str | None) -> bool:
        doc = self.db.get(KIND, build_id)
        return bool(doc and token and secrets.compare_digest(doc.get("_token", ""), token))

    def plan(self, build_id: str) -> contracts.BuildPlan:
        plan = self._plans.get(build_id)
        if plan is None:
            raise NotFound("BuildPlan", build_id)
        return plan

    def report_phase(self, build_id: str, report: contracts.PhaseReport) -> None:
        if report.status == "IN_PROGRESS":
            self._set_phase(build_id, report.phase, start=report.start_time)
        else:
            self._end_phase(build_id, report.phase, report.status, report.message, end=report.end_time)

    def append_log(self, build_id: str, chunk: contracts.LogChunk) -> None:
        self.db.append_log(KIND, build_id, chunk.text)
        self.orch.notify()

    def report_result(self, build_id: str, result: contracts.RunnerResult) -> None:
        self._results[build_id] = result

    # ------------------------------------------------------------ recovery

    def recover(self) -> list[str]:
        """After a restart: builds that were running end FAILED with the reason "interrupted"."""
        ended = []
        for doc in self.db.list(KIND, statuses=["IN_PROGRESS"]):
            self.runtime.remove(_container_name(doc))
            phase = doc.get("currentPhase", "SUBMITTED")
            self._end_phase(doc["id"], phase, "FAILED", "interrupted: the control plane stopped during this phase")
            self._finish(doc["id"], "FAILED", "interrupted")
            ended.append(doc["id"])
        return ended

    # ------------------------------------------------------------ the build

    def _run(self, build_id: str, project: dict, request: BuildRequest) -> None:
        container = None
        status = "FAULT"
        try:
            with self._slots:
                self._end_phase(build_id, "QUEUED", "SUCCEEDED")
                self._set_phase(build_id, "PROVISIONING")
                try:
                    plan, spec = self._prepare(build_id, project, request)
                except (SpecError, ReferenceError_, RuntimePackError) as exc:
                    code = "YAML_FILE_ERROR" if isinstance(exc, SpecError) else "CLIENT_ERROR"
                    self._log(build_id, f"[Container] {_stamp()} Phase context status code: {code} "
                                        f"Message: {exc}\n")
                    self._end_phase(build_id, "PROVISIONING", "SUCCEEDED")
                    self._set_phase(build_id, "DOWNLOAD_SOURCE")
                    self._end_phase(build_id, "DOWNLOAD_SOURCE", "FAILED", f"{code}: {exc}")
                    status = "FAILED"
                    return
                cache = self._cache(build_id, project, spec, plan, request)
                container = self._launch(build_id, project, request, plan, cache[2] if cache else None)
                self._end_phase(build_id, "PROVISIONING", "SUCCEEDED")
                self._set_phase(build_id, "DOWNLOAD_SOURCE")
                self._end_phase(build_id, "DOWNLOAD_SOURCE", "SUCCEEDED")
                status = self._await_runner(build_id, container, project)
                if status in ("SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"):
                    self._reports(build_id, container, spec, plan)
                if status in ("SUCCEEDED", "FAILED") and self._upload_due(build_id):
                    status = self._upload(build_id, container, spec, request, plan, status)
                if cache and status in ("SUCCEEDED", "FAILED"):
                    saved = build_cache.save(spec.cache, cache[0], cache[1], plan.src_dir,
                                             lambda path: self.runtime.copy_from(container, path))
                    if saved:
                        self._log(build_id, f"[Container] {_stamp()} Saved {saved} files to the cache (key {cache[1]})\n")
        except Exception as exc:  # a fault of pipelocal itself, never of the user's build
            self._log(build_id, f"[Container] {_stamp()} pipelocal error: {exc}\n{traceback.format_exc()}")
            status = "FAULT"
        finally:
            if container:
                self.runtime.remove(container)
            self._plans.pop(build_id, None)
            self._finish(build_id, status)

    def _prepare(self, build_id: str, project: dict, request: BuildRequest):
        doc = self.db.get(KIND, build_id)
        text, file = self._buildspec_text(project, request)
        spec = parse_buildspec(text, file)
        check_runtime_versions(spec, file)
        _check_secondary_artifacts(spec, project, file, request.secondary_output_locations or {})
        for secondary in request.secondary_sources or []:
            if not zipfile.is_zipfile(io.BytesIO(secondary.source_zip)):
                raise SpecError(f"secondary source {secondary.identifier}", "(archive)", "a zip archive of the source")
        src_dir = f"/codebuild/output/src{doc['buildNumber']}/src"
        runtimes = self._runtimes(build_id).mounts_for(spec, file)
        user_env, secret_values = resolve_variables(spec, project, request.env_override_list, self.params)
        env = build_variables(
            doc=doc, project=project, spec=spec, src_dir=src_dir, request=request, region=self.db.region,
            account=self.db.account, user_env=user_env,
        )
        env.update(self.endpoint_env())
        env.update(runtimes.env)
        if runtimes.path_prefix:
            env[PATH_PREFIX_VARIABLE] = ":".join(runtimes.path_prefix)
        self._runtime_mounts[build_id] = runtimes.mounts
        plan = contracts.BuildPlan(
            build_id=build_id, src_dir=src_dir, shell=spec.env.shell or "bash", env=env,
            secret_values=secret_values,
            run_as=spec.run_as, phases=plan_phases(spec), exported_variables=list(spec.env.exported_variables),
        )
        self._plans[build_id] = plan
        return plan, spec

    def _runtimes(self, build_id: str) -> RuntimeStore:
        root = (self.cache_dir.parent if self.cache_dir else Path.home() / ".pipelocal" / "data") / "runtimes"
        return RuntimeStore(root, log=lambda line: self._log(build_id, f"[Container] {_stamp()} {line}\n"))

    def _buildspec_text(self, project: dict, request: BuildRequest) -> tuple[str, str]:
        override = request.buildspec_override or project.get("source", {}).get("buildspec")
        if override and "\n" in override:
            return override, f"project {project['name']} buildspec"
        path = override or "buildspec.yml"
        try:
            with zipfile.ZipFile(io.BytesIO(request.source_zip)) as archive:
                return archive.read(path).decode("utf-8"), path
        except KeyError:
            raise SpecError(path, "(file)", f"a buildspec file at {path} in the source") from None
        except zipfile.BadZipFile:
            raise SpecError("source", "(archive)", "a zip archive of the source") from None

    def endpoint_env(self) -> dict[str, str]:
        """What points a build's aws CLI at the installation's store and AWS endpoint."""
        e = self.endpoints
        return {
            "AWS_ACCESS_KEY_ID": e.store_access_key,
            "AWS_SECRET_ACCESS_KEY": e.store_secret_key,
            "AWS_ENDPOINT_URL_S3": e.store_url,
            "AWS_ENDPOINT_URL": e.control_url,
        }

    def _cache(self, build_id: str, project: dict, spec, plan, request: BuildRequest):
        """(store, key, archive to restore or None) when the buildspec and the project use a cache."""
        kind = (project.get("cache") or {}).get("type", "NO_CACHE")
        if spec.cache is None or kind == "NO_CACHE":
            if spec.cache is not None:
                self._log(build_id, f"[Container] {_stamp()} The buildspec has a cache, but the project's cache type "
                                    f"is NO_CACHE: nothing is restored or saved\n")
            return None
        if kind == "S3":
            store = build_cache.S3CacheStore(self.store, project["cache"]["location"])
        elif self.cache_dir is not None:
            store = build_cache.LocalCacheStore(self.cache_dir / project["name"])
        else:
            return None
        with zipfile.ZipFile(io.BytesIO(request.source_zip)) as archive:
            source = {i.filename: archive.read(i) for i in archive.infolist() if not i.is_dir()}
        key = build_cache.evaluate_key(spec.cache.key, plan.env, source)
        data, found = build_cache.restore(spec.cache, store, key, list(spec.cache.fallback_keys))
        message = f"restored from key {found}" if data else f"no entry for key {key}"
        self._log(build_id, f"[Container] {_stamp()} Cache ({kind}): {message}\n")
        return store, key, build_cache.placed(data, plan.src_dir) if data else None

    def _launch(self, build_id: str, project: dict, request: BuildRequest, plan: contracts.BuildPlan,
                cache_archive: bytes | None = None) -> str:
        doc = self.db.get(KIND, build_id)
        with zipfile.ZipFile(io.BytesIO(request.source_zip)) as archive:
            files = {i.filename: archive.read(i) for i in archive.infolist() if not i.is_dir()}
        cpus, memory = COMPUTE_TYPES.get(project["environment"].get("computeType"), (None, None))
        spec = ContainerSpec(
            image=project["environment"]["image"],
            name=_container_name(doc),
            command=["python3", "-m", "runners"],
            env={
                "PYTHONPATH": "/opt/pipelocal",
                contracts.ENV_CONTROL_URL: self.endpoints.control_url,
                contracts.ENV_BUILD_ID: build_id,
                contracts.ENV_TOKEN: doc["_token"],
            },
            labels={LABEL_ROLE: "build", LABEL_OWNER: build_id},
            working_dir=plan.src_dir,
            cpus=cpus,
            memory_mb=memory,
            privileged=bool(project["environment"].get("privilegedMode")),
            mounts=self._runtime_mounts.pop(build_id, []),
            files={"/": _merge_tars(*([cache_archive] if cache_archive else []), code_tar("runners"),
                                    tar_directory_tree(files, plan.src_dir),
                                    *_secondary_trees(request.secondary_sources or [], plan.src_dir))},
        )
        info = self.runtime.start(spec)
        return info.name

    def _await_runner(self, build_id: str, container: str, project: dict) -> str:
        timeout = float(project.get("timeoutInMinutes", 60)) * 60
        exit_code = self.runtime.wait(container, timeout=timeout)
        doc = self.db.get(KIND, build_id)
        if exit_code is None:
            self.runtime.stop(container, timeout=1)
            phase = doc.get("currentPhase", "BUILD")
            self._log(build_id, f"[Container] {_stamp()} Build timed out after {project.get('timeoutInMinutes', 60)} minutes\n")
            self._end_phase(build_id, phase, "TIMED_OUT", f"Build timed out after {project.get('timeoutInMinutes')} minutes")
            return "TIMED_OUT"
        if doc.get("_stopRequested"):
            self._end_phase(build_id, doc.get("currentPhase", "BUILD"), "STOPPED", "Build was stopped")
            return "STOPPED"
        result = self._results.pop(build_id, None)
        if result is None:
            tail = "".join(self.runtime.logs(container))[-2000:]
            self._log(build_id, f"[Container] {_stamp()} The build runner exited with code {exit_code} "
                                f"without a result.\n{tail}\n")
            self._end_phase(build_id, doc.get("currentPhase", "INSTALL"), "FAILED",
                            f"the build container exited with code {exit_code}")
            return "FAILED"
        if result.exported_variables:
            self.orch.update(KIND, build_id, exportedEnvironmentVariables=[
                {"name": k, "value": v} for k, v in result.exported_variables.items()])
        return "SUCCEEDED" if result.succeeded else "FAILED"

    def _reports(self, build_id: str, container: str, spec, plan) -> None:
        """Test and coverage reports named in `reports`, parsed from the container and stored on the build."""
        if not spec.reports:
            return
        try:
            files = _read_tree(self.runtime.copy_from(container, plan.src_dir))
        except Exception as exc:  # noqa: BLE001 - a missing directory means no reports, not a fault
            self._log(build_id, f"[Container] {_stamp()} Reports: could not read the source directory: {exc}\n")
            return
        doc = self.db.get(KIND, build_id)
        reports = collect_reports(spec, {k: v[0] for k, v in files.items()}, doc["projectName"],
                                  self.db.region, self.db.account, build_id)
        for report in reports:
            summary = report["testSummary"] if "testSummary" in report else report.get("codeCoverageSummary", {})
            self._log(build_id, f"[Container] {_stamp()} Report {report['name']}: {report['status']} {summary}\n")
        self.orch.update(KIND, build_id, reportArns=[r["arn"] for r in reports], reports=reports)

    def _upload_due(self, build_id: str) -> bool:
        """UPLOAD_ARTIFACTS is always attempted, except after an INSTALL or PRE_BUILD failure."""
        phases = {p["phaseType"]: p.get("phaseStatus") for p in self.db.get(KIND, build_id)["phases"]}
        return phases.get("INSTALL") != "FAILED" and phases.get("PRE_BUILD") != "FAILED"

    def _upload(self, build_id, container, spec, request: BuildRequest, plan, status: str) -> str:
        """The primary artifact (to the pipeline's output location, or the project's S3 artifacts) and
        each secondary artifact the project declares with an S3 location."""
        self._set_phase(build_id, "UPLOAD_ARTIFACTS")
        artifacts = spec.artifacts
        project = self.projects.get(self.db.get(KIND, build_id)["projectName"])
        targets = []  # (artifact spec, bucket, key or prefix, zip?, identifier)
        if artifacts is not None:
            if request.output_location is not None:
                targets.append((artifacts, *request.output_location, True, None))
            elif (project.get("artifacts") or {}).get("type") == "S3":
                targets.append((artifacts, *self._s3_target(build_id, project["artifacts"], artifacts, plan.env), None))
            declared = {a.get("artifactIdentifier"): a for a in project.get("secondaryArtifacts") or []}
            pipeline_outputs = request.secondary_output_locations or {}
            for identifier, secondary in artifacts.secondary_artifacts.items():
                if identifier in pipeline_outputs:
                    targets.append((secondary, *pipeline_outputs[identifier], True, identifier))
                    continue
                target = declared.get(identifier) or {}
                if target.get("type") == "S3":
                    targets.append((secondary, *self._s3_target(build_id, target, secondary, plan.env), identifier))
        if not targets:
            self._end_phase(build_id, "UPLOAD_ARTIFACTS", "SUCCEEDED")
            return status
        files = _read_tree(self.runtime.copy_from(container, plan.src_dir))
        uploaded = []
        for art, bucket, key, as_zip, identifier in targets:
            try:
                pairs = select_artifacts(
                    sorted(files), files=list(art.files), base_directory=art.base_directory,
                    discard_paths=art.discard_paths, exclude_paths=list(art.exclude_paths or []),
                )
            except NoArtifactsMatched as exc:
                message = f"CLIENT_ERROR: no matching artifact paths found ({exc})"
                self._log(build_id, f"[Container] {_stamp()} Phase context status code: {message}\n")
                self._end_phase(build_id, "UPLOAD_ARTIFACTS", "FAILED", message)
                return "FAILED"
            self.store.ensure_bucket(bucket)
            if as_zip:
                self.store.put_bytes(bucket, key, _zip_pairs(pairs, files))
            else:
                for source, target in pairs:
                    self.store.put_bytes(bucket, f"{key.rstrip('/')}/{target}", files[source][0])
            location = f"arn:aws:s3:::{bucket}/{key}"
            uploaded.append({"artifactIdentifier": identifier, "location": location})
            self._log(build_id, f"[Container] {_stamp()} Uploaded {len(pairs)} artifact files to s3://{bucket}/{key}\n")
        primary = [u for u in uploaded if u["artifactIdentifier"] is None]
        changes = {"secondaryArtifacts": [u for u in uploaded if u["artifactIdentifier"]]}
        if primary:
            changes["artifacts"] = {"location": primary[0]["location"]}
        self.orch.update(KIND, build_id, **changes)
        self._end_phase(build_id, "UPLOAD_ARTIFACTS", "SUCCEEDED")
        return status

    def _s3_target(self, build_id: str, target: dict, art, env: dict[str, str]) -> tuple[str, str, bool]:
        """(bucket, key, zip?) of a project artifacts entry: location/[path/][build id/]name, as CodeBuild lays it out."""
        bucket = target.get("location") or ""
        if not bucket:
            raise SpecError("project", "artifacts.location", "an S3 bucket name for artifacts of type S3")
        name = art.name or target.get("name") or self.db.get(KIND, build_id)["projectName"]
        name = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), ""), name)
        parts = [p for p in (art.s3_prefix, target.get("path")) if p]
        if target.get("namespaceType") == "BUILD_ID" or art.s3_prefix:
            parts.append(build_id.split(":", 1)[1])
        parts.append(name)
        return bucket, "/".join(p.strip("/") for p in parts), target.get("packaging", "NONE") == "ZIP"

    # ------------------------------------------------------------ phases

    def _set_phase(self, build_id: str, phase: str, start: float | None = None) -> None:
        doc = self.db.get(KIND, build_id)
        phases = [p for p in doc["phases"] if p["phaseType"] != phase]
        phases.append({"phaseType": phase, "startTime": start or time.time()})
        self.orch.update(KIND, build_id, phases=phases, currentPhase=phase, message=f"{phase} IN_PROGRESS")

    def _end_phase(self, build_id: str, phase: str, status: str, message: str | None = None,
                   end: float | None = None) -> None:
        doc = self.db.get(KIND, build_id)
        phases = doc["phases"]
        entry = next((p for p in phases if p["phaseType"] == phase), None)
        if entry is None:
            entry = {"phaseType": phase, "startTime": end or time.time()}
            phases.append(entry)
        entry["phaseStatus"] = status
        entry["endTime"] = end or time.time()
        entry["durationInSeconds"] = max(0, int(round(entry["endTime"] - entry["startTime"])))
        if message:
            entry["contexts"] = [{"statusCode": _status_code(status, message), "message": message}]
        self.orch.update(KIND, build_id, phases=phases, currentPhase=phase, message=f"{phase} {status}")

    def _finish(self, build_id: str, status: str, reason: str | None = None) -> None:
        for phase in ("FINALIZING", "COMPLETED"):
            self._set_phase(build_id, phase)
            if phase == "FINALIZING":
                self._end_phase(build_id, phase, "SUCCEEDED")
        doc = self.db.get(KIND, build_id)
        if doc["status"] == "IN_PROGRESS":
            self.orch.transition(KIND, build_id, status, buildStatus=status, buildComplete=True,
                                 currentPhase="COMPLETED", message=reason or status)

    def _log(self, build_id: str, text: str) -> None:
        self.db.append_log(KIND, build_id, text)
        self.orch.notify()


def _check_secondary_artifacts(spec, project: dict, file: str, pipeline_outputs: dict) -> None:
    """Each buildspec secondary artifact must be declared in the project's secondaryArtifacts or be an
    output artifact of the pipeline action; each such output needs its secondary artifact."""
    present = spec.artifacts.secondary_artifacts if spec.artifacts is not None else {}
    missing = [name for name in pipeline_outputs if name not in present]
    if missing:
        raise SpecError(file, "artifacts.secondary-artifacts",
                        f"an identifier for each output artifact of the pipeline action: with more than one "
                        f"output artifact, each is taken from secondary-artifacts by its name (no "
                        f"secondary-artifacts entry for output artifact {', '.join(map(repr, missing))}; "
                        f"present: {', '.join(sorted(present)) or 'none'})")
    if not present:
        return
    declared = {a.get("artifactIdentifier") for a in project.get("secondaryArtifacts") or []} | set(pipeline_outputs)
    for identifier in spec.artifacts.secondary_artifacts:
        if identifier not in declared:
            raise SpecError(file, f"artifacts.secondary-artifacts.{identifier}",
                            f"an artifactIdentifier declared in the project's secondaryArtifacts "
                            f"({', '.join(sorted(filter(None, declared))) or 'none declared'})")


def _secondary_trees(sources: list[SecondarySource], src_dir: str) -> list[bytes]:
    """A tar per secondary source, each unzipped into its own directory (created even when empty)."""
    trees = []
    for source in sources:
        target = secondary_source_dir(src_dir, source.identifier)
        try:
            with zipfile.ZipFile(io.BytesIO(source.source_zip)) as archive:
                files = {i.filename: archive.read(i) for i in archive.infolist() if not i.is_dir()}
        except zipfile.BadZipFile:
            raise SpecError(f"secondary source {source.identifier}", "(archive)", "a zip archive") from None
        directory = io.BytesIO()
        with tarfile.open(fileobj=directory, mode="w") as tar:
            info = tarfile.TarInfo(target.strip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        trees += [directory.getvalue(), tar_directory_tree(files, target)]
    return trees


def _container_name(doc: dict) -> str:
    return f"pipelocal-build-{doc['projectName']}-{doc['buildNumber']}-{doc['id'][-8:]}"


def _stamp() -> str:
    return time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime())


def _status_code(status: str, message: str) -> str:
    if ":" in message and message.split(":", 1)[0].isupper():
        return message.split(":", 1)[0]
    return {"FAILED": "COMMAND_EXECUTION_ERROR", "TIMED_OUT": "BUILD_TIMED_OUT"}.get(status, status)


def _zip_pairs(pairs, files) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for source, target in pairs:
            data, mode = files[source]
            info = zipfile.ZipInfo(target, date_time=time.localtime()[:6])
            info.external_attr = (mode & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def _merge_tars(*tars: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as merged:
        for data in tars:
            with tarfile.open(fileobj=io.BytesIO(data)) as part:
                for member in part.getmembers():
                    merged.addfile(member, part.extractfile(member) if member.isfile() else None)
    return out.getvalue()


def _read_tree(stream) -> dict[str, tuple[bytes, int]]:
    """Regular files of a container directory (tar stream) keyed by path relative to that directory."""
    data = b"".join(stream)
    files: dict[str, tuple[bytes, int]] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            name = member.name.split("/", 1)[1] if "/" in member.name else member.name
            if name.startswith("./"):
                name = name[2:]
            extracted = tar.extractfile(member)
            files[name] = (extracted.read() if extracted else b"", member.mode)
    return files
