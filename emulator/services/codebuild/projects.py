"""CodeBuild projects: where a build's image, environment, timeout and buildspec come from."""

from __future__ import annotations

import re
import time

from emulator.domain.errors import Conflict, NotFound
from emulator.services.codebuild.build_environment import check_source_identifier, check_variable_list
from emulator.state.database import Database

KIND = "codebuild-project"

# computeType -> (vCPUs, memory MiB), AWS's EC2 sizes scaled to what one machine can give.
COMPUTE_TYPES = {
    "BUILD_GENERAL1_SMALL": (1.0, 3072),
    "BUILD_GENERAL1_MEDIUM": (2.0, 7168),
    "BUILD_GENERAL1_LARGE": (2.0, 15360),
}


def _check(project: dict) -> None:
    env = project.get("environment")
    if not isinstance(env, dict):
        raise ValueError("environment: expected a mapping with image and computeType")
    if env.get("computeType") not in COMPUTE_TYPES:
        raise ValueError(
            f"environment.computeType {env.get('computeType')!r} is not supported: use one of {', '.join(COMPUTE_TYPES)}"
        )
    check_variable_list(env.get("environmentVariables"), "environment.environmentVariables")
    timeout = project.get("timeoutInMinutes")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 5 <= timeout <= 2160:
        raise ValueError(f"timeoutInMinutes: expected a whole number from 5 to 2160, not {timeout!r}")
    for where, art in [("artifacts", project.get("artifacts") or {})] + [
            (f"secondaryArtifacts[{i}]", a) for i, a in enumerate(project.get("secondaryArtifacts") or [])]:
        if not isinstance(art, dict) or art.get("type", "NO_ARTIFACTS") not in ("CODEPIPELINE", "S3", "NO_ARTIFACTS"):
            raise ValueError(f"{where}.type: expected CODEPIPELINE, S3 or NO_ARTIFACTS")
        if art.get("type") == "S3" and not art.get("location"):
            raise ValueError(f"{where}.location: an S3 bucket name is required for type S3")
        if where != "artifacts" and not art.get("artifactIdentifier"):
            raise ValueError(f"{where}.artifactIdentifier: required")
    seen = set()
    for i, source in enumerate(project.get("secondarySources") or []):
        where = f"secondarySources[{i}]"
        if not isinstance(source, dict) or source.get("type") not in ("CODECOMMIT", "S3"):
            raise ValueError(f"{where}.type: expected CODECOMMIT or S3")
        check_source_identifier(source.get("sourceIdentifier"), f"{where}.sourceIdentifier")
        if source["sourceIdentifier"] in seen:
            raise ValueError(f"{where}.sourceIdentifier: {source['sourceIdentifier']!r} is used twice")
        seen.add(source["sourceIdentifier"])
    cache = project.get("cache") or {"type": "NO_CACHE"}
    if cache.get("type", "NO_CACHE") not in ("NO_CACHE", "LOCAL", "S3"):
        raise ValueError(f"cache.type: expected NO_CACHE, LOCAL or S3, not {cache.get('type')!r}")
    if cache.get("type") == "S3" and not cache.get("location"):
        raise ValueError("cache.location: an S3 cache needs a location (bucket[/prefix])")


class Projects:
    def __init__(self, db: Database):
        self.db = db

    def create(self, project: dict) -> dict:
        name = project.get("name")
        if not name:
            raise ValueError("A project needs a name")
        if self.db.get(KIND, name):
            raise Conflict(f"Project already exists: {name}")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9\-_]{1,254}", name):
            raise ValueError(f"name {name!r}: expected 2-255 letters, digits, - and _, starting with a letter or digit")
        env = project.setdefault("environment", {})
        env.setdefault("type", "LINUX_CONTAINER")
        env.setdefault("image", "pipelocal/build:1")
        env.setdefault("computeType", "BUILD_GENERAL1_SMALL")
        project.setdefault("source", {"type": "CODEPIPELINE"})
        project.setdefault("artifacts", {"type": "CODEPIPELINE"})
        project.setdefault("timeoutInMinutes", 60)
        _check(project)
        project["arn"] = f"arn:aws:codebuild:{self.db.region}:{self.db.account}:project/{name}"
        project["created"] = time.time()
        project["lastModified"] = project["created"]
        return self.db.put(KIND, name, project)

    def update(self, name: str, changes: dict) -> dict:
        """UpdateProject: the given top-level fields replace the stored ones; `environment` is merged."""
        project = self.get(name)
        for key, value in changes.items():
            if key in ("name", "arn", "created"):
                continue
            if key == "environment" and isinstance(value, dict):
                project["environment"] = {**project["environment"], **value}
            else:
                project[key] = value
        _check(project)
        project["lastModified"] = time.time()
        return self.db.put(KIND, name, project)

    def get(self, name: str) -> dict:
        project = self.db.get(KIND, name)
        if project is None:
            raise NotFound("Project", name)
        return project

    def list(self) -> list[dict]:
        return self.db.list(KIND)

    def delete(self, name: str) -> None:
        self.get(name)
        self.db.delete(KIND, name)
