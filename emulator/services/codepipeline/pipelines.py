"""Pipeline declarations: stored as AWS structures, versioned on every update."""

from __future__ import annotations

import time

from emulator.domain.errors import Conflict, NotFound
from emulator.domain.pipeline import validate_pipeline
from emulator.state.database import Database

KIND = "codepipeline-pipeline"


class Pipelines:
    def __init__(self, db: Database):
        self.db = db

    def create(self, declaration: dict) -> dict:
        decl = validate_pipeline(declaration)
        if self.db.get(KIND, decl["name"]):
            raise Conflict(f"A pipeline with the name '{decl['name']}' already exists in account '{self.db.account}'")
        decl["version"] = 1
        decl.setdefault("executionMode", "SUPERSEDED")
        decl.setdefault("pipelineType", "V1")
        now = time.time()
        doc = {"pipeline": decl, "metadata": {
            "pipelineArn": f"arn:aws:codepipeline:{self.db.region}:{self.db.account}:{decl['name']}",
            "created": now, "updated": now}}
        return self.db.put(KIND, decl["name"], doc)

    def update(self, declaration: dict) -> dict:
        decl = validate_pipeline(declaration)
        current = self.get(decl["name"])
        decl["version"] = current["pipeline"].get("version", 1) + 1
        decl.setdefault("executionMode", "SUPERSEDED")
        current["pipeline"] = decl
        current["metadata"]["updated"] = time.time()
        return self.db.put(KIND, decl["name"], current)

    def get(self, name: str) -> dict:
        doc = self.db.get(KIND, name)
        if doc is None:
            raise NotFound("Pipeline", name)
        return doc

    def list(self) -> list[dict]:
        return self.db.list(KIND)

    def delete(self, name: str) -> None:
        self.get(name)
        self.db.delete(KIND, name)

    def watching(self, repository: str, branch: str) -> list[tuple[str, str]]:
        """(pipeline name, source action name) of every pipeline whose source is this branch."""
        found = []
        for doc in self.list():
            for action in doc["pipeline"]["stages"][0]["actions"]:
                config = action.get("configuration", {})
                if (action["actionTypeId"]["provider"] == "CodeCommit" and config.get("RepositoryName") == repository
                        and config.get("BranchName") == branch):
                    found.append((doc["pipeline"]["name"], action["name"]))
        return found
