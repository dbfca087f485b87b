"""`pipelocal repo` and `pipelocal pipeline` are thin wrappers over the AWS API: run the real command
against a running control plane and check what the API then reports."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import boto3
import pytest

pytestmark = pytest.mark.integration
PIPELOCAL = str(Path(sys.executable).with_name("pipelocal"))


@pytest.fixture(scope="module")
def run(control_plane):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([PIPELOCAL, *args], env=control_plane.env, capture_output=True, text=True, timeout=120)
    return run


@pytest.fixture(scope="module")
def api(control_plane):
    return boto3.client("codepipeline", endpoint_url=control_plane.settings.control_url, region_name="us-east-1",
                        aws_access_key_id="a", aws_secret_access_key="b")


def test_repo_commands(run, control_plane):
    created = run("repo", "create", "cli-cmd-repo", "--description", "d")
    assert created.returncode == 0, created.stdout + created.stderr
    assert "/v1/repos/cli-cmd-repo" in created.stdout
    taken = run("repo", "create", "cli-cmd-repo")
    assert taken.returncode == 1 and "RepositoryNameExistsException" in taken.stdout
    assert "cli-cmd-repo" in run("repo", "list").stdout
    assert run("repo", "branches", "cli-cmd-repo").stdout.strip() == ""
    assert run("repo", "delete", "cli-cmd-repo").returncode == 0
    missing = run("repo", "delete", "cli-cmd-repo")
    assert missing.returncode == 1 and "RepositoryDoesNotExistException" in missing.stdout


def test_pipeline_commands(run, api, control_plane, tmp_path):
    control_plane.store.ensure_bucket("cli-cmd-source")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("README", "x")
    control_plane.store.put_bytes("cli-cmd-source", "src.zip", out.getvalue())
    declaration = {"pipeline": {
        "name": "cli-cmd-pipeline", "roleArn": "arn:aws:iam::000000000000:role/cp", "pipelineType": "V2",
        "artifactStore": {"type": "S3", "location": "codepipeline-artifacts-pipelocal"},
        "variables": [{"name": "release", "defaultValue": "r0"}],
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Src", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3",
                                                "version": "1"},
                "configuration": {"S3Bucket": "cli-cmd-source", "S3ObjectKey": "src.zip"},
                "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Gate", "actions": [{
                "name": "Approve", "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual",
                                                    "version": "1"}}]},
        ]}}
    broken = tmp_path / "broken.yaml"
    broken.write_text("pipeline:\n  name: cli-cmd-broken\n  stages:\n    - name: Only\n      actions: []\n")
    refused = run("pipeline", "create", "-f", str(broken))
    assert refused.returncode == 1 and "InvalidStructureException" in refused.stdout and "broken.yaml:3" in \
        refused.stdout, refused.stdout

    good = tmp_path / "pipeline.json"
    good.write_text(json.dumps(declaration))
    created = run("pipeline", "create", "-f", str(good))
    assert created.returncode == 0, created.stdout
    assert "version 1; first execution" in created.stdout
    first = created.stdout.split("first execution")[1].split()[0]
    assert "cli-cmd-pipeline" in run("pipeline", "list").stdout

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        approved = run("pipeline", "approve", "cli-cmd-pipeline", "Gate", "Approve", "--summary", "ok")
        if approved.returncode == 0:
            break
        time.sleep(0.5)
    assert approved.returncode == 0, approved.stdout
    while time.monotonic() < deadline and api.get_pipeline_execution(
            pipelineName="cli-cmd-pipeline", pipelineExecutionId=first)["pipelineExecution"]["status"] != "Succeeded":
        time.sleep(0.2)
    assert api.get_pipeline_execution(pipelineName="cli-cmd-pipeline", pipelineExecutionId=first)[
        "pipelineExecution"]["status"] == "Succeeded"

    started = run("pipeline", "start", "cli-cmd-pipeline", "--no-watch", "--variable", "release=r9")
    assert started.returncode == 0, started.stdout
    second = started.stdout.split("execution")[1].split()[0]
    variables = api.get_pipeline_execution(pipelineName="cli-cmd-pipeline", pipelineExecutionId=second)[
        "pipelineExecution"]["variables"]
    assert {"name": "release", "resolvedValue": "r9"} in variables
    stopped = run("pipeline", "stop", "cli-cmd-pipeline", second, "--abandon", "--reason", "test")
    assert stopped.returncode == 0 and "Stopped" in stopped.stdout, stopped.stdout
    history = run("pipeline", "executions", "cli-cmd-pipeline").stdout
    assert first in history and second in history and "Succeeded" in history and "Stopped" in history

    assert run("pipeline", "disable-transition", "cli-cmd-pipeline", "Gate", "--reason", "freeze").returncode == 0
    gate = api.get_pipeline_state(name="cli-cmd-pipeline")["stageStates"][1]
    assert gate["inboundTransitionState"]["enabled"] is False
    assert run("pipeline", "enable-transition", "cli-cmd-pipeline", "Gate").returncode == 0
    assert run("pipeline", "delete", "cli-cmd-pipeline").returncode == 0
    missing = run("pipeline", "get", "cli-cmd-pipeline")
    assert missing.returncode == 1 and "PipelineNotFoundException" in missing.stdout
