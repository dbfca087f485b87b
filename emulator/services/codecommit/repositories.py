"""Hosted git repositories: bare repositories on disk, served over HTTP by `git http-backend`."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from emulator.domain.errors import Conflict, NotFound
from emulator.state.database import Database

KIND = "codecommit-repository"
_NAME = re.compile(r"^[\w.-]{1,100}$")


@dataclass
class Commit:
    commit_id: str
    message: str
    author_date: str
    committer_date: str


class Repositories:
    def __init__(self, db: Database, root: Path, public_url: str):
        self.db = db
        self.root = root
        self.public_url = public_url.rstrip("/")
        root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.root / f"{name}.git"

    def create(self, name: str, description: str = "") -> dict:
        if not _NAME.match(name) or name.endswith(".git"):
            raise ValueError(
                f"Repository name {name!r} is invalid: use letters, digits, '.', '_' and '-' (1-100 characters)"
            )
        if self.db.get(KIND, name):
            raise Conflict(f"Repository named {name} already exists")
        path = self.path(name)
        if path.exists():
            shutil.rmtree(path)
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
        subprocess.run(["git", "-C", str(path), "config", "http.receivepack", "true"], check=True)
        metadata = {
            "repositoryId": str(uuid.uuid4()),
            "repositoryName": name,
            "repositoryDescription": description,
            "Arn": f"arn:aws:codecommit:{self.db.region}:{self.db.account}:{name}",
            "accountId": self.db.account,
            "cloneUrlHttp": f"{self.public_url}/v1/repos/{name}",
            "creationDate": time.time(),
            "lastModifiedDate": time.time(),
        }
        return self.db.put(KIND, name, metadata)

    def get(self, name: str) -> dict:
        repo = self.db.get(KIND, name)
        if repo is None:
            raise NotFound("Repository", name)
        return repo

    def list(self) -> list[dict]:
        return self.db.list(KIND)

    def delete(self, name: str) -> dict:
        repo = self.get(name)
        self.db.delete(KIND, name)
        shutil.rmtree(self.path(name), ignore_errors=True)
        return repo

    def branches(self, name: str) -> dict[str, str]:
        """Branch name -> commit id."""
        out = self._git(name, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
        return dict(line.split(" ", 1) for line in out.splitlines() if line)

    def tags(self, name: str) -> dict[str, str]:
        """Tag name -> the commit it points at (annotated tags peeled to their commit)."""
        out = self._git(name, "for-each-ref", "--format=%(refname:lstrip=2) %(objectname) %(*objectname)",
                        "refs/tags")
        found = {}
        for line in out.splitlines():
            parts = line.split(" ")
            if len(parts) >= 2 and parts[0]:
                found[parts[0]] = parts[2] if len(parts) > 2 and parts[2] else parts[1]
        return found

    def commit(self, name: str, ref: str) -> Commit:
        out = self._git(name, "log", "-1", "--format=%H%x00%aI%x00%cI%x00%B", ref)
        commit_id, author_date, committer_date, message = out.split("\x00", 3)
        return Commit(commit_id, message.strip(), author_date, committer_date)

    def changed_files(self, name: str, before: str | None, after: str) -> list[str]:
        """Paths a push changed: between the old and new tip, or the new tip's own files for a new branch."""
        if before:
            out = self._git(name, "diff", "--name-only", before, after)
        else:
            out = self._git(name, "show", "--pretty=format:", "--name-only", after)
        return [line for line in out.splitlines() if line]

    def archive_zip(self, name: str, commit_id: str) -> bytes:
        """The tree of one commit as a zip: CodePipeline's CODE_ZIP source artifact."""
        return subprocess.run(
            ["git", "-C", str(self.path(name)), "archive", "--format=zip", commit_id],
            check=True, capture_output=True,
        ).stdout

    def _git(self, name: str, *args: str) -> str:
        if not self.path(name).exists():
            raise NotFound("Repository", name)
        return subprocess.run(
            ["git", "-C", str(self.path(name)), *args], check=True, capture_output=True, text=True
        ).stdout
