"""The seed pipeline built entirely with the plain `aws` CLI (v1) against a running control plane,
as docs/aws-api.md shows it, then watched until it succeeds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator.cli import demo

pytestmark = pytest.mark.integration
AWS = str(Path(sys.executable).with_name("aws"))


@pytest.fixture(scope="module")
def aws(control_plane):
    env = {**os.environ, "AWS_ENDPOINT_URL": control_plane.settings.control_url,
           "AWS_ENDPOINT_URL_S3": control_plane.settings.store_url,
           "AWS_ACCESS_KEY_ID": control_plane.settings.s3_access_key,
           "AWS_SECRET_ACCESS_KEY": control_plane.settings.s3_secret_key,
           "AWS_DEFAULT_REGION": control_plane.settings.region, "AWS_PAGER": ""}
    env.pop("AWS_PROFILE", None)

    def run(*args: str, check: bool = True) -> dict | subprocess.CompletedProcess:
        done = subprocess.run([AWS, *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=120)
        if not check:
            return done
        assert done.returncode == 0, (args, done.stderr)
        return json.loads(done.stdout) if done.stdout.strip() else {}
    return run


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def own_instances(control_plane):
    """Instances of this test's own: the seed's deployment group deploys the same files to the
    Environment=demo ones, and CodeDeploy refuses files another deployment group installed."""
    launched = control_plane.client.post("/instances", {"count": 2, "tags": {"Environment": "cli-demo"}})["instances"]
    yield launched
    for instance in launched:
        control_plane.client.delete(f"/instances/{instance['instanceId']}")


def test_seed_pipeline_through_the_aws_cli(aws, tmp_path, own_instances):
    repo = aws("codecommit", "create-repository", "--repository-name", "cli-app")["repositoryMetadata"]
    work = tmp_path / "cli-app"
    git(tmp_path, "clone", "-q", repo["cloneUrlHttp"], "cli-app")
    shutil.copytree(demo.DEMO_DIR / "app", work, dirs_exist_ok=True)
    git(work, "add", "-A")
    git(work, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "release via the aws cli")
    git(work, "push", "-q", "origin", "HEAD:main")
    commit = git(work, "rev-parse", "HEAD")
    assert aws("codecommit", "get-branch", "--repository-name", "cli-app", "--branch-name", "main")[
        "branch"]["commitId"] == commit

    environment = "type=LINUX_CONTAINER,image=pipelocal/build:1,computeType=BUILD_GENERAL1_SMALL"
    aws("codebuild", "create-project", "--name", "cli-app-build", "--source", "type=CODEPIPELINE",
        "--artifacts", "type=CODEPIPELINE", "--environment", environment, "--service-role", "cb-role")
    (tmp_path / "package.json").write_text(json.dumps({
        "name": "cli-app-package", "source": {"type": "CODEPIPELINE",
                                              "buildspec": (demo.DEMO_DIR / "package-buildspec.yml").read_text()},
        "artifacts": {"type": "CODEPIPELINE"}, "serviceRole": "cb-role",
        "environment": {"type": "LINUX_CONTAINER", "image": "pipelocal/build:1",
                        "computeType": "BUILD_GENERAL1_SMALL"}}))
    aws("codebuild", "create-project", "--cli-input-json", f"file://{tmp_path / 'package.json'}")
    aws("deploy", "create-application", "--application-name", "cli-app")
    aws("deploy", "create-deployment-group", "--application-name", "cli-app", "--deployment-group-name",
        "cli-app-fleet", "--service-role-arn", "arn:aws:iam::000000000000:role/cd",
        "--ec2-tag-filters", "Key=Environment,Value=cli-demo,Type=KEY_AND_VALUE",
        "--deployment-config-name", "CodeDeployDefault.OneAtATime")
    aws("s3", "mb", "s3://my-app-build-artifacts", check=False)  # may exist from the seed tests

    declaration = json.loads((demo.DEMO_DIR / "pipeline.json").read_text())["pipeline"]
    declaration["name"] = "cli-pipeline"
    source, build, deploy = declaration["stages"]
    source["actions"][0]["configuration"]["RepositoryName"] = "cli-app"
    build["actions"][0]["configuration"]["ProjectName"] = "cli-app-build"
    build["actions"][1]["configuration"]["ProjectName"] = "cli-app-package"
    deploy["actions"][0]["configuration"] = {"ApplicationName": "cli-app", "DeploymentGroupName": "cli-app-fleet"}
    (tmp_path / "pipeline.json").write_text(json.dumps({"pipeline": declaration}))
    created = aws("codepipeline", "create-pipeline", "--cli-input-json", f"file://{tmp_path / 'pipeline.json'}")
    assert created["pipeline"]["version"] == 1

    started = aws("codepipeline", "list-pipeline-executions", "--pipeline-name", "cli-pipeline")
    execution_id = started["pipelineExecutionSummaries"][0]["pipelineExecutionId"]  # creating it started it
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        execution = aws("codepipeline", "get-pipeline-execution", "--pipeline-name", "cli-pipeline",
                        "--pipeline-execution-id", execution_id)["pipelineExecution"]
        if execution["status"] not in ("InProgress", "Stopping"):
            break
        time.sleep(2)
    state = aws("codepipeline", "get-pipeline-state", "--name", "cli-pipeline")
    assert execution["status"] == "Succeeded", (execution, state)
    assert [r["revisionId"] for r in execution["artifactRevisions"]] == [commit]
    assert {s["stageName"]: s["latestExecution"]["status"] for s in state["stageStates"]} == {
        "Source": "Succeeded", "Build": "Succeeded", "Deploy": "Succeeded"}

    history = aws("codepipeline", "list-pipeline-executions", "--pipeline-name", "cli-pipeline")
    summary = history["pipelineExecutionSummaries"][0]
    assert summary["pipelineExecutionId"] == execution_id
    assert summary["sourceRevisions"] == [{"actionName": "Source", "revisionId": commit,
                                           "revisionSummary": "release via the aws cli"}]
    actions = aws("codepipeline", "list-action-executions", "--pipeline-name", "cli-pipeline",
                  "--filter", f"pipelineExecutionId={execution_id}")["actionExecutionDetails"]
    by_name = {a["actionName"]: a for a in actions}
    assert set(by_name) == {"Source", "Build", "Package", "Deploy"}
    assert by_name["Source"]["output"]["outputVariables"]["CommitId"] == commit
    assert by_name["Package"]["output"]["outputArtifacts"][0]["name"] == "DeployBundle"

    build_id = by_name["Build"]["output"]["executionResult"]["externalExecutionId"]
    builds = aws("codebuild", "batch-get-builds", "--ids", build_id)["builds"]
    assert builds[0]["buildStatus"] == "SUCCEEDED" and builds[0]["resolvedSourceVersion"] == commit
    deployment_id = by_name["Deploy"]["output"]["executionResult"]["externalExecutionId"]
    deployment = aws("deploy", "get-deployment", "--deployment-id", deployment_id)["deploymentInfo"]
    assert deployment["status"] == "Succeeded" and deployment["deploymentOverview"]["Succeeded"] == 2
    assert len(aws("deploy", "list-deployment-instances", "--deployment-id", deployment_id)["instancesList"]) == 2

    refused = aws("codepipeline", "stop-pipeline-execution", "--pipeline-name", "cli-pipeline",
                  "--pipeline-execution-id", execution_id, check=False)
    assert refused.returncode != 0 and "PipelineExecutionNotStoppableException" in refused.stderr
    missing = aws("codepipeline", "get-pipeline", "--name", "no-such-pipeline", check=False)
    assert missing.returncode != 0 and "PipelineNotFoundException" in missing.stderr
