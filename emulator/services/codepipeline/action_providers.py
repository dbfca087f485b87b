"""What each action type does: thin adapters from a pipeline action to a service call.

Artifacts travel as zip files in the artifact store, as in CodePipeline.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from emulator.services.codebuild.build_environment import SOURCE_IDENTIFIER
from emulator.services.codebuild.builds import BuildRequest, BuildService, SecondarySource
from emulator.services.codecommit.repositories import Repositories
from emulator.services.codedeploy.deployments import DeploymentService
from emulator.store.object_store import ObjectStore

Location = tuple[str, str]  # (bucket, key)


@dataclass
class ActionContext:
    pipeline_name: str
    execution_id: str
    action_name: str
    configuration: dict[str, str]
    input_artifacts: dict[str, Location]
    output_artifacts: list[str]
    source_revisions: dict[str, dict]  # source action name -> pinned revision
    artifact_bucket: str
    on_external_id: callable = None  # type: ignore[valid-type]
    timeout_minutes: int | None = None
    on_token: callable = None  # type: ignore[valid-type]
    stopped: callable = None  # type: ignore[valid-type]

    def new_location(self, artifact: str) -> Location:
        return self.artifact_bucket, f"{self.pipeline_name[:20]}/{artifact[:20]}/{secrets.token_hex(4)}"


@dataclass
class ActionOutcome:
    status: str  # Succeeded | Failed
    summary: str = ""
    external_id: str = ""
    output_artifacts: dict[str, Location] = field(default_factory=dict)
    output_variables: dict[str, str] = field(default_factory=dict)
    error: str = ""


class ActionProvider(Protocol):
    def run(self, ctx: ActionContext) -> ActionOutcome: ...


class CodeCommitSource:
    def __init__(self, repos: Repositories, store: ObjectStore):
        self.repos = repos
        self.store = store

    def pin(self, configuration: dict[str, str], commit_id: str | None = None) -> dict:
        """The revision an execution will use, fixed when the execution starts."""
        name, branch = configuration["RepositoryName"], configuration["BranchName"]
        if commit_id is None:
            branches = self.repos.branches(name)
            if branch not in branches:
                raise LookupError(f"The branch {branch!r} does not exist in repository {name!r}")
            commit_id = branches[branch]
        commit = self.repos.commit(name, commit_id)
        return {"RepositoryName": name, "BranchName": branch, "CommitId": commit.commit_id,
                "CommitMessage": commit.message, "AuthorDate": commit.author_date,
                "CommitterDate": commit.committer_date}

    def run(self, ctx: ActionContext) -> ActionOutcome:
        revision = ctx.source_revisions[ctx.action_name]
        if "error" in revision:
            return ActionOutcome("Failed", error=revision["error"])
        data = self.repos.archive_zip(revision["RepositoryName"], revision["CommitId"])
        outputs = {}
        for artifact in ctx.output_artifacts:
            location = ctx.new_location(artifact)
            self.store.put_bytes(*location, data)
            outputs[artifact] = location
        return ActionOutcome("Succeeded", summary=revision["CommitMessage"].splitlines()[0] if revision["CommitMessage"] else "",
                             external_id=revision["CommitId"], output_artifacts=outputs,
                             output_variables={k: v for k, v in revision.items()})


class S3Source:
    """Source/AWS/S3: the object's bytes become the output artifact, pinned by ETag when the execution starts."""

    def __init__(self, store: ObjectStore):
        self.store = store

    def pin(self, configuration: dict[str, str], revision: str | None = None) -> dict:
        bucket, key = configuration["S3Bucket"], configuration["S3ObjectKey"]
        head = self.store.head(bucket, key)
        if head is None:
            raise LookupError(f"The object s3://{bucket}/{key} does not exist (S3Bucket/S3ObjectKey)")
        return {"S3Bucket": bucket, "S3ObjectKey": key, "ETag": head.get("ETag", "").strip('"'),
                "VersionId": head.get("VersionId") or "null", "CommitId": head.get("ETag", "").strip('"'),
                "CommitMessage": f"s3://{bucket}/{key}"}

    def run(self, ctx: ActionContext) -> ActionOutcome:
        revision = ctx.source_revisions[ctx.action_name]
        if "error" in revision:
            return ActionOutcome("Failed", error=revision["error"])
        data = self.store.get_bytes(revision["S3Bucket"], revision["S3ObjectKey"])
        outputs = {}
        for artifact in ctx.output_artifacts:
            location = ctx.new_location(artifact)
            self.store.put_bytes(*location, data)
            outputs[artifact] = location
        return ActionOutcome("Succeeded", summary=f"s3://{revision['S3Bucket']}/{revision['S3ObjectKey']}",
                             external_id=revision["VersionId"], output_artifacts=outputs,
                             output_variables={"ETag": revision["ETag"], "VersionId": revision["VersionId"]})


class ManualApproval:
    """Approval/AWS/Manual: holds the stage until PutApprovalResult, a stop, or the timeout (7 days)."""

    DEFAULT_TIMEOUT_MINUTES = 7 * 24 * 60

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._results: dict[str, dict | None] = {}

    def run(self, ctx: ActionContext) -> ActionOutcome:
        token = str(uuid.uuid4())
        minutes = ctx.timeout_minutes or self.DEFAULT_TIMEOUT_MINUTES
        deadline = time.monotonic() + minutes * 60
        with self._cond:
            self._results[token] = None
        if ctx.on_token:
            ctx.on_token(token)
        with self._cond:
            try:
                while self._results[token] is None:
                    if ctx.stopped and ctx.stopped():
                        return ActionOutcome("Failed", error="The execution was stopped while waiting for approval")
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return ActionOutcome("Failed", error=f"The approval timed out after {minutes} minutes")
                    self._cond.wait(min(remaining, 1.0))
                result = self._results[token]
            finally:
                self._results.pop(token, None)
        summary = result.get("summary", "")
        if result["status"] == "Approved":
            return ActionOutcome("Succeeded", summary=f"Approved: {summary}" if summary else "Approved")
        return ActionOutcome("Failed", summary=summary, error=f"Rejected: {summary}" if summary else "Rejected")

    def decide(self, token: str, status: str, summary: str) -> bool:
        """Records the result for a waiting approval; False if no approval waits on this token."""
        with self._cond:
            if token not in self._results or self._results[token] is not None:
                return False
            self._results[token] = {"status": status, "summary": summary}
            self._cond.notify_all()
            return True


class CodeBuildAction:
    """Build/Test with CodeBuild: the primary input is the build's source, every other input a secondary
    source at CODEBUILD_SRC_DIR_<artifact name>. One output artifact is the buildspec's `artifacts`;
    with several, each is the buildspec `secondary-artifacts` entry of the same name."""

    def __init__(self, builds: BuildService, store: ObjectStore):
        self.builds = builds
        self.store = store

    def run(self, ctx: ActionContext) -> ActionOutcome:
        config = ctx.configuration
        inputs = list(ctx.input_artifacts)
        if not inputs:
            return ActionOutcome("Failed", error="A CodeBuild action needs at least one input artifact")
        if len(inputs) > 1 and not config.get("PrimarySource"):
            return ActionOutcome("Failed", error=f"configuration.PrimarySource is required when a CodeBuild action "
                                                 f"has several input artifacts (one of {', '.join(inputs)})")
        primary = config.get("PrimarySource") or inputs[0]
        if primary not in ctx.input_artifacts:
            return ActionOutcome("Failed", error=f"configuration.PrimarySource {primary!r} is not an input artifact "
                                                 f"of this action (inputs: {', '.join(inputs)})")
        for name in inputs:
            if name != primary and not SOURCE_IDENTIFIER.fullmatch(name):
                return ActionOutcome("Failed", error=f"Input artifact {name!r} cannot be a secondary source: its "
                                                     f"name becomes CODEBUILD_SRC_DIR_{name}, so use letters, digits "
                                                     f"and underscores only")
        source = self.store.get_bytes(*ctx.input_artifacts[primary])
        secondary = [SecondarySource(identifier=name, source_zip=self.store.get_bytes(*location),
                                     source={"type": "CODEPIPELINE", "location": _arn(location)})
                     for name, location in ctx.input_artifacts.items() if name != primary]
        env_list = _environment_variables(config.get("EnvironmentVariables"))
        revision = next(iter(ctx.source_revisions.values()), {})
        locations = {name: ctx.new_location(name) for name in ctx.output_artifacts}
        single = locations[ctx.output_artifacts[0]] if len(locations) == 1 else None
        build = self.builds.start_build(BuildRequest(
            project_name=config["ProjectName"], source_zip=source,
            source_version=_arn(ctx.input_artifacts[primary]),
            resolved_source_version=revision.get("CommitId", ""),
            initiator=f"codepipeline/{ctx.pipeline_name}", env_override_list=env_list or None,
            output_location=single, secondary_sources=secondary or None,
            secondary_output_locations=locations if len(locations) > 1 else None,
        ))
        if ctx.on_external_id:
            ctx.on_external_id(build["id"])
        done = self.builds.wait(build["id"])
        variables = {v["name"]: v["value"] for v in done.get("exportedEnvironmentVariables", [])}
        if done["buildStatus"] != "SUCCEEDED":
            failed = next((p for p in done["phases"] if p.get("phaseStatus") not in (None, "SUCCEEDED")), {})
            reason = (failed.get("contexts") or [{}])[0].get("message", "")
            return ActionOutcome("Failed", external_id=build["id"], output_variables=variables,
                                 error=f"Build {done['buildStatus']} in phase {failed.get('phaseType', '?')}: {reason}")
        return ActionOutcome("Succeeded", external_id=build["id"], summary=f"Build {done['buildNumber']} succeeded",
                             output_artifacts=locations, output_variables=variables)


class CodeDeployAction:
    def __init__(self, deployments: DeploymentService):
        self.deployments = deployments

    def run(self, ctx: ActionContext) -> ActionOutcome:
        config = ctx.configuration
        bucket, key = next(iter(ctx.input_artifacts.values()))
        revision = next(iter(ctx.source_revisions.values()), {})
        deployment = self.deployments.create_deployment(
            config["ApplicationName"], config["DeploymentGroupName"],
            {"revisionType": "S3", "s3Location": {"bucket": bucket, "key": key, "bundleType": "zip"}},
            description=f"codepipeline/{ctx.pipeline_name} {revision.get('CommitId', '')[:8]}".strip(),
        )
        if ctx.on_external_id:
            ctx.on_external_id(deployment["deploymentId"])
        done = self.deployments.wait(deployment["deploymentId"])
        if done["status"] != "Succeeded":
            error = done.get("errorInformation", {}).get("message", done["status"])
            return ActionOutcome("Failed", external_id=done["deploymentId"],
                                 error=f"Deployment {done['deploymentId']} {done['status']}: {error}")
        return ActionOutcome("Succeeded", external_id=done["deploymentId"],
                             summary=f"Deployment {done['deploymentId']} succeeded")


def _arn(location: Location) -> str:
    return f"arn:aws:s3:::{location[0]}/{location[1]}"


def _environment_variables(text: str | None) -> list[dict]:
    """The action's EnvironmentVariables: a JSON array of {name, value, type}; PARAMETER_STORE and
    SECRETS_MANAGER entries are resolved by the build like a project's."""
    if not text:
        return []
    import json

    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"configuration.EnvironmentVariables: expected a JSON array ({exc})") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("name") for i in items):
        raise ValueError("configuration.EnvironmentVariables: expected a JSON array of {name, value, type}")
    return [{"name": i["name"], "value": str(i.get("value", "")), "type": i.get("type", "PLAINTEXT")} for i in items]
