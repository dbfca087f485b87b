"""CodeBuild's API (CodeBuild_20161006) over the project and build services."""

from __future__ import annotations

import time

from emulator.api.aws_protocol import AwsError
from emulator.domain.errors import NotFound
from emulator.services.codebuild.batches import BatchService
from emulator.services.codebuild.builds import KIND as BUILD, BuildRequest, BuildService, SecondarySource
from emulator.services.codebuild.projects import KIND as PROJECT, Projects
from emulator.services.codecommit.repositories import Repositories
from emulator.store.object_store import ObjectStore

EMPTY_ZIP = b"PK\x05\x06" + b"\x00" * 18


class CodeBuildProvider:
    NOT_FOUND = {"Project": "ResourceNotFoundException", "Build": "ResourceNotFoundException",
                 "BuildBatch": "ResourceNotFoundException"}
    CONFLICT = "ResourceAlreadyExistsException"
    INVALID = "InvalidInputException"
    STATE = "InvalidInputException"

    def __init__(self, projects: Projects, builds: BuildService, repos: Repositories, store: ObjectStore,
                 batches: BatchService | None = None):
        self.projects = projects
        self.builds = builds
        self.repos = repos
        self.store = store
        self.batches = batches

    # ------------------------------------------------------------ projects

    def CreateProject(self, p: dict) -> dict:
        return {"project": self.projects.create(dict(p))}

    def UpdateProject(self, p: dict) -> dict:
        project = dict(self.projects.get(p["name"]))
        for key, value in p.items():
            project[key] = {**project.get(key, {}), **value} if key == "environment" else value
        project["lastModified"] = time.time()
        return {"project": self.projects.db.put(PROJECT, p["name"], project)}

    def DeleteProject(self, p: dict) -> dict:
        if self.projects.db.get(PROJECT, p["name"]):
            self.projects.delete(p["name"])
        return {}

    def ListProjects(self, p: dict) -> dict:
        names = [d["name"] for d in self.projects.list()]
        return {"projects": sorted(names, reverse=p.get("sortOrder") == "DESCENDING")}

    def BatchGetProjects(self, p: dict) -> dict:
        found = [self.projects.db.get(PROJECT, n.rsplit("/", 1)[-1]) for n in p["names"]]
        return {"projects": [d for d in found if d],
                "projectsNotFound": [n for n, d in zip(p["names"], found) if not d]}

    # ------------------------------------------------------------ builds

    def StartBuild(self, p: dict) -> dict:
        return {"build": self._shape(self.builds.start_build(self._request(p, p.get("timeoutInMinutesOverride"))))}

    def _request(self, p: dict, timeout: int | None) -> BuildRequest:
        """StartBuild's and StartBuildBatch's common fields."""
        project = self.projects.get(p["projectName"])
        source_zip, version, resolved = self._source(project, p.get("sourceVersion"))
        return BuildRequest(
            project_name=project["name"], source_zip=source_zip, source_version=version,
            resolved_source_version=resolved, initiator="pipelocal-api",
            env_override_list=p.get("environmentVariablesOverride") or None,
            buildspec_override=p.get("buildspecOverride"), image_override=p.get("imageOverride"),
            compute_type_override=p.get("computeTypeOverride"), privileged_override=p.get("privilegedModeOverride"),
            timeout_override=timeout, secondary_sources=self._secondary(project, p),
        )

    # ------------------------------------------------------------ batch builds (batches.py)

    def StartBuildBatch(self, p: dict) -> dict:
        request = self._request(p, p.get("buildTimeoutInMinutesOverride"))
        return {"buildBatch": self._batches().start_build_batch(request, p.get("buildBatchConfigOverride"))}

    def StopBuildBatch(self, p: dict) -> dict:
        return {"buildBatch": self._batches().stop(p["id"])}

    def RetryBuildBatch(self, p: dict) -> dict:
        if not p.get("id"):
            raise ValueError("id: the batch to retry is required")
        return {"buildBatch": self._batches().retry(p["id"], p.get("retryType"))}

    def BatchGetBuildBatches(self, p: dict) -> dict:
        found, missing = [], []
        for batch_id in p["ids"]:
            try:
                found.append(self._batches().get(batch_id))
            except NotFound:
                missing.append(batch_id)
        return {"buildBatches": found, "buildBatchesNotFound": missing}

    def ListBuildBatches(self, p: dict) -> dict:
        status = (p.get("filter") or {}).get("status")
        return {"ids": self._batches().list_ids(None, status, p.get("sortOrder", "DESCENDING") == "DESCENDING")}

    def ListBuildBatchesForProject(self, p: dict) -> dict:
        self.projects.get(p["projectName"])
        status = (p.get("filter") or {}).get("status")
        return {"ids": self._batches().list_ids(p["projectName"], status, p.get("sortOrder", "DESCENDING") == "DESCENDING")}

    def DeleteBuildBatch(self, p: dict) -> dict:
        return self._batches().delete(p["id"])

    def _batches(self) -> BatchService:
        if self.batches is None:
            raise AwsError("NotImplemented", "batch builds are not available in this control plane", 501)
        return self.batches

    def StopBuild(self, p: dict) -> dict:
        return {"build": self._shape(self.builds.stop(p["id"]))}

    def BatchGetBuilds(self, p: dict) -> dict:
        found, missing = [], []
        for build_id in p["ids"]:
            doc = self.builds.db.get(BUILD, build_id)
            (found if doc else missing).append(self._shape(self.builds.get(build_id)) if doc else build_id)
        return {"builds": found, "buildsNotFound": missing}

    def ListBuildsForProject(self, p: dict) -> dict:
        self.projects.get(p["projectName"])
        ids = [b["id"] for b in self.builds.list_for_project(p["projectName"])]
        return {"ids": ids if p.get("sortOrder", "DESCENDING") == "DESCENDING" else ids[::-1]}

    def ListBuilds(self, p: dict) -> dict:
        docs = sorted(self.builds.db.list(BUILD), key=lambda d: d.get("startTime", 0), reverse=True)
        ids = [d["id"] for d in docs]
        return {"ids": ids if p.get("sortOrder", "DESCENDING") == "DESCENDING" else ids[::-1]}

    def _secondary(self, project: dict, p: dict) -> list[SecondarySource] | None:
        """The project's secondarySources (or secondarySourcesOverride), each at the version
        secondarySourcesVersionOverride gives for its identifier."""
        sources = p.get("secondarySourcesOverride", project.get("secondarySources")) or []
        versions = {v["sourceIdentifier"]: v["sourceVersion"] for v in p.get("secondarySourcesVersionOverride") or []}
        known = {s.get("sourceIdentifier") for s in sources}
        for identifier in versions:
            if identifier not in known:
                raise AwsError("InvalidInputException", f"secondarySourcesVersionOverride: no secondary source has "
                                                        f"the sourceIdentifier {identifier!r}")
        out = []
        for i, source in enumerate(sources):
            identifier = source.get("sourceIdentifier")
            if not identifier:
                raise AwsError("InvalidInputException", f"secondarySources[{i}].sourceIdentifier: required")
            if source.get("type") in ("CODEPIPELINE", "NO_SOURCE"):
                raise AwsError("InvalidInputException", f"secondarySources[{i}] ({identifier}).type: "
                                                        f"{source.get('type')} cannot be a secondary source")
            requested = versions.get(identifier) or source.get("sourceVersion")
            data, _, resolved = self._source({"name": project["name"], "source": source}, requested)
            out.append(SecondarySource(identifier, data, {k: v for k, v in source.items() if k != "sourceIdentifier"},
                                       requested or resolved))
        return out or None

    def _source(self, project: dict, version: str | None) -> tuple[bytes, str, str]:
        """The source zip a build started outside a pipeline gets, by the project's source type."""
        source = project.get("source") or {}
        kind = source.get("type", "NO_SOURCE")
        if kind == "CODEPIPELINE":
            raise AwsError("InvalidInputException",
                           f"Project {project['name']} has source type CODEPIPELINE: its builds can only be "
                           "started by a pipeline")
        if kind == "NO_SOURCE":
            return EMPTY_ZIP, "", ""
        if kind == "CODECOMMIT":
            name = source.get("location", "").rstrip("/").rsplit("/", 1)[-1]
            branches = self.repos.branches(name)
            ref = version or ("main" if "main" in branches else next(iter(branches), ""))
            if not ref:
                raise AwsError("InvalidInputException", f"Repository {name} has no commits to build")
            commit = self.repos.commit(name, branches.get(ref, ref))
            return self.repos.archive_zip(name, commit.commit_id), ref, commit.commit_id
        if kind == "S3":
            bucket, _, key = source.get("location", "").partition("/")
            return self.store.get_bytes(bucket, key), f"arn:aws:s3:::{bucket}/{key}", ""
        raise AwsError("InvalidInputException", f"source.type {kind}: use CODECOMMIT, S3, NO_SOURCE or CODEPIPELINE")

    @staticmethod
    def _shape(build: dict) -> dict:
        return {**build, "buildStatus": build.get("buildStatus") or build.get("status")}
