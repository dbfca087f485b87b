"""CodeCommit's API (CodeCommit_20150413) over the hosted git repositories."""

from __future__ import annotations

from emulator.api.aws_protocol import AwsError
from emulator.services.codecommit.repositories import KIND as REPOSITORY, Repositories


class CodeCommitProvider:
    NOT_FOUND = {"Repository": "RepositoryDoesNotExistException", "Branch": "BranchDoesNotExistException",
                 "Commit": "CommitIdDoesNotExistException"}
    CONFLICT = "RepositoryNameExistsException"
    INVALID = "InvalidRepositoryNameException"

    def __init__(self, repos: Repositories):
        self.repos = repos

    def _metadata(self, name: str) -> dict:
        repo = dict(self.repos.get(name))
        branches = self.repos.branches(name)
        if branches:
            repo["defaultBranch"] = "main" if "main" in branches else sorted(branches)[0]
        return repo

    def CreateRepository(self, p: dict) -> dict:
        try:
            self.repos.create(p["repositoryName"], p.get("repositoryDescription", ""))
        except ValueError as exc:
            if "already exists" in str(exc):
                raise
            raise AwsError("InvalidRepositoryNameException", str(exc)) from None
        return {"repositoryMetadata": self._metadata(p["repositoryName"])}

    def GetRepository(self, p: dict) -> dict:
        return {"repositoryMetadata": self._metadata(p["repositoryName"])}

    def BatchGetRepositories(self, p: dict) -> dict:
        found, missing = [], []
        for name in p["repositoryNames"]:
            if self.repos.db.get(REPOSITORY, name):
                found.append(self._metadata(name))
            else:
                missing.append(name)
        return {"repositories": found, "repositoriesNotFound": missing}

    def ListRepositories(self, p: dict) -> dict:
        repos = sorted(self.repos.list(), key=lambda r: r["repositoryName"],
                       reverse=p.get("order") == "descending")
        if p.get("sortBy") == "lastModifiedDate":
            repos.sort(key=lambda r: r.get("lastModifiedDate", 0), reverse=p.get("order") == "descending")
        return {"repositories": [{"repositoryName": r["repositoryName"], "repositoryId": r["repositoryId"]}
                                 for r in repos]}

    def DeleteRepository(self, p: dict) -> dict:
        if not self.repos.db.get(REPOSITORY, p["repositoryName"]):
            return {}  # AWS answers a missing repository with an empty result
        return {"repositoryId": self.repos.delete(p["repositoryName"])["repositoryId"]}

    def GetBranch(self, p: dict) -> dict:
        if "repositoryName" not in p:
            raise AwsError("RepositoryNameRequiredException", "A repository name is required")
        if "branchName" not in p:
            raise AwsError("BranchNameRequiredException", "A branch name is required")
        branches = self.repos.branches(p["repositoryName"])
        if p["branchName"] not in branches:
            raise AwsError("BranchDoesNotExistException",
                           f"Branch {p['branchName']} does not exist in repository {p['repositoryName']}")
        return {"branch": {"branchName": p["branchName"], "commitId": branches[p["branchName"]]}}

    def ListBranches(self, p: dict) -> dict:
        return {"branches": sorted(self.repos.branches(p["repositoryName"]))}

    def GetCommit(self, p: dict) -> dict:
        self.repos.get(p["repositoryName"])
        try:
            commit = self.repos.commit(p["repositoryName"], p["commitId"])
        except Exception:
            raise AwsError("CommitIdDoesNotExistException",
                           f"Commit {p['commitId']} does not exist in repository {p['repositoryName']}") from None
        return {"commit": {"commitId": commit.commit_id, "message": commit.message,
                           "author": {"date": commit.author_date}, "committer": {"date": commit.committer_date}}}
