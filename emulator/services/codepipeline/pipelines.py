"""Pipeline declarations: stored as AWS structures, versioned on every update."""

from __future__ import annotations

import fnmatch
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

    def watching(self, repository: str, branch: str, changed_files=None) -> list[tuple[str, str]]:
        """(pipeline name, source action name) of every pipeline a push to this branch starts.

        Without V2 `triggers`, a source action watches its `BranchName`. With triggers naming the
        action (`gitConfiguration.sourceActionName`), a push starts it only if one `push` filter
        matches: branch globs (includes, excludes) and, if given, a changed file matching the
        `filePaths` globs. `changed_files` is called only when a file-path filter needs it.
        """
        found = []
        for doc in self.list():
            pipeline = doc["pipeline"]
            for action in pipeline["stages"][0]["actions"]:
                config = action.get("configuration", {})
                if action["actionTypeId"]["provider"] != "CodeCommit" or config.get("RepositoryName") != repository:
                    continue
                filters = push_filters(pipeline, action["name"])
                if filters is None:
                    if config.get("BranchName") == branch:
                        found.append((pipeline["name"], action["name"]))
                elif any(_push_matches(f, branch, config.get("BranchName"), changed_files) for f in filters):
                    found.append((pipeline["name"], action["name"]))
        return found


    def watching_tag(self, repository: str, tag: str) -> list[tuple[str, str]]:
        """(pipeline name, source action name) of every pipeline a push of this tag starts: a V2
        trigger naming a CodeCommit source action on the repository, with a push filter whose `tags`
        include the tag (glob patterns; `excludes` win)."""
        found = []
        for doc in self.list():
            pipeline = doc["pipeline"]
            for action in pipeline["stages"][0]["actions"]:
                config = action.get("configuration", {})
                if action["actionTypeId"]["provider"] != "CodeCommit" or config.get("RepositoryName") != repository:
                    continue
                if any("tags" in f and _globs_match(tag, f["tags"]) for f in push_filters(pipeline, action["name"]) or []):
                    found.append((pipeline["name"], action["name"]))
        return found


def push_filters(pipeline: dict, action_name: str) -> list[dict] | None:
    """The push filters of the triggers naming this source action; None if no trigger names it."""
    filters = None
    for trigger in pipeline.get("triggers") or []:
        git = trigger.get("gitConfiguration") or {}
        if git.get("sourceActionName") == action_name:
            filters = (filters or []) + list(git.get("push") or [])
    return filters


def _globs_match(value: str, spec: dict | None, default: list[str] | None = None) -> bool:
    includes = (spec or {}).get("includes") or default or ["*"]
    excludes = (spec or {}).get("excludes") or []
    return any(fnmatch.fnmatchcase(value, p) for p in includes) and \
        not any(fnmatch.fnmatchcase(value, p) for p in excludes)


def _push_matches(push: dict, branch: str, action_branch: str | None, changed_files) -> bool:
    if "tags" in push and "branches" not in push:
        return False  # tag pushes are not watched
    if not _globs_match(branch, push.get("branches"), [action_branch] if action_branch else None):
        return False
    if push.get("filePaths"):
        files = changed_files() if callable(changed_files) else (changed_files or [])
        return any(_globs_match(f, push["filePaths"]) for f in files)
    return True
