"""CodeBuild projects: where a build's image, environment, timeout and buildspec come from."""

from __future__ import annotations

import time

from emulator.domain.errors import Conflict, NotFound
from emulator.state.database import Database

KIND = "codebuild-project"

# computeType -> (vCPUs, memory MiB), AWS's EC2 sizes scaled to what one machine can give.
COMPUTE_TYPES = {
    "BUILD_GENERAL1_SMALL": (1.0, 3072),
    "BUILD_GENERAL1_MEDIUM": (2.0, 7168),
    "BUILD_GENERAL1_LARGE": (2.0, 15360),
}


class Projects:
    def __init__(self, db: Database):
        self.db = db

    def create(self, project: dict) -> dict:
        name = project.get("name")
        if not name:
            raise ValueError("A project needs a name")
        if self.db.get(KIND, name):
            raise Conflict(f"Project already exists: {name}")
        env = project.setdefault("environment", {})
        env.setdefault("type", "LINUX_CONTAINER")
        env.setdefault("image", "pipelocal/build:1")
        env.setdefault("computeType", "BUILD_GENERAL1_SMALL")
        if env["computeType"] not in COMPUTE_TYPES:
            raise ValueError(
                f"environment.computeType {env['computeType']!r} is not supported: use one of {', '.join(COMPUTE_TYPES)}"
            )
        project.setdefault("source", {"type": "CODEPIPELINE"})
        project.setdefault("artifacts", {"type": "CODEPIPELINE"})
        project.setdefault("timeoutInMinutes", 60)
        project["arn"] = f"arn:aws:codebuild:{self.db.region}:{self.db.account}:project/{name}"
        project["created"] = time.time()
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
