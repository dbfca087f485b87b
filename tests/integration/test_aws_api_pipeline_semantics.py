"""CodePipeline semantics through boto3 against a running control plane, on a pipeline that needs no
containers (an S3 source and a manual approval): approvals, variables, retry, stop and abandon,
disabled transitions and superseding."""

from __future__ import annotations

import io
import time
import zipfile

import boto3
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cp(control_plane):
    control_plane.store.ensure_bucket("api-source")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("README", "source for the approval pipeline")
    control_plane.store.put_bytes("api-source", "app.zip", out.getvalue())
    return boto3.client("codepipeline", endpoint_url=control_plane.settings.control_url, region_name="us-east-1",
                        aws_access_key_id="a", aws_secret_access_key="b")


def declaration(name: str) -> dict:
    return {
        "name": name, "roleArn": "arn:aws:iam::000000000000:role/cp", "pipelineType": "V2",
        "artifactStore": {"type": "S3", "location": "codepipeline-artifacts-pipelocal"},
        "variables": [{"name": "release", "defaultValue": "r0"}],
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Src", "namespace": "SourceVariables",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": "api-source", "S3ObjectKey": "app.zip"},
                "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Gate", "actions": [{
                "name": "Approve",
                "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
                "configuration": {"CustomData": "#{variables.release} #{codepipeline.PipelineExecutionId} "
                                                "#{SourceVariables.ETag}"}}]},
        ],
    }


def error_of(call, **kwargs) -> str:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"]


def wait_for(probe, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout} s")


def status(cp, pipeline: str, execution_id: str) -> str:
    return cp.get_pipeline_execution(pipelineName=pipeline, pipelineExecutionId=execution_id)[
        "pipelineExecution"]["status"]


def waiting_token(cp, pipeline: str, execution_id: str) -> str | None:
    state = cp.get_pipeline_state(name=pipeline)
    gate = next(s for s in state["stageStates"] if s["stageName"] == "Gate")
    latest = gate["actionStates"][0].get("latestExecution", {})
    if gate.get("latestExecution", {}).get("pipelineExecutionId") == execution_id and latest.get("status") == \
            "InProgress":
        return latest.get("token")
    return None


def approve(cp, pipeline: str, token: str, decision: str = "Approved") -> None:
    cp.put_approval_result(pipelineName=pipeline, stageName="Gate", actionName="Approve", token=token,
                           result={"summary": f"{decision} by the test", "status": decision})


def test_approval_variables_retry_and_stop(cp):
    name = "api-approval"
    cp.create_pipeline(pipeline=declaration(name))
    first = cp.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]
    assert len(first) == 1 and first[0]["trigger"]["triggerType"] == "CreatePipeline"
    e1 = first[0]["pipelineExecutionId"]
    token = wait_for(lambda: waiting_token(cp, name, e1))

    actions = cp.list_action_executions(pipelineName=name, filter={"pipelineExecutionId": e1})["actionExecutionDetails"]
    by_name = {a["actionName"]: a for a in actions}
    etag = by_name["Src"]["output"]["outputVariables"]["ETag"]
    assert etag and by_name["Src"]["output"]["outputArtifacts"][0]["name"] == "Code"
    assert by_name["Approve"]["input"]["resolvedConfiguration"]["CustomData"] == f"r0 {e1} {etag}"

    assert error_of(cp.put_approval_result, pipelineName=name, stageName="Gate", actionName="Approve",
                    token="00000000-0000-0000-0000-000000000000",
                    result={"summary": "x", "status": "Approved"}) == "InvalidApprovalTokenException"
    assert error_of(cp.put_approval_result, pipelineName=name, stageName="Nope", actionName="Approve", token=token,
                    result={"summary": "x", "status": "Approved"}) == "StageNotFoundException"
    approve(cp, name, token, "Rejected")
    assert wait_for(lambda: status(cp, name, e1) == "Failed")
    assert error_of(cp.put_approval_result, pipelineName=name, stageName="Gate", actionName="Approve", token=token,
                    result={"summary": "x", "status": "Approved"}) == "ApprovalAlreadyCompletedException"

    assert cp.retry_stage_execution(pipelineName=name, stageName="Gate", pipelineExecutionId=e1,
                                    retryMode="FAILED_ACTIONS")["pipelineExecutionId"] == e1
    second_token = wait_for(lambda: waiting_token(cp, name, e1))
    assert second_token != token
    approve(cp, name, second_token)
    assert wait_for(lambda: status(cp, name, e1) == "Succeeded")
    assert error_of(cp.retry_stage_execution, pipelineName=name, stageName="Gate", pipelineExecutionId=e1,
                    retryMode="FAILED_ACTIONS") == "StageNotRetryableException"
    source_runs = [a for a in cp.list_action_executions(pipelineName=name, filter={"pipelineExecutionId": e1})[
        "actionExecutionDetails"] if a["actionName"] == "Src"]
    assert len(source_runs) == 1  # the retry reran only the failed stage

    assert error_of(cp.start_pipeline_execution, name=name,
                    variables=[{"name": "undeclared", "value": "x"}]) == "ValidationException"
    e2 = cp.start_pipeline_execution(name=name, variables=[{"name": "release", "value": "r1"}])["pipelineExecutionId"]
    wait_for(lambda: waiting_token(cp, name, e2))
    execution = cp.get_pipeline_execution(pipelineName=name, pipelineExecutionId=e2)["pipelineExecution"]
    assert {"name": "release", "resolvedValue": "r1"} in execution["variables"]
    approve_run = [a for a in cp.list_action_executions(pipelineName=name, filter={"pipelineExecutionId": e2})[
        "actionExecutionDetails"] if a["actionName"] == "Approve"][0]
    assert approve_run["input"]["resolvedConfiguration"]["CustomData"].startswith(f"r1 {e2} ")

    cp.stop_pipeline_execution(pipelineName=name, pipelineExecutionId=e2, abandon=True, reason="abandon test")
    assert status(cp, name, e2) == "Stopped"
    abandoned = [a for a in cp.list_action_executions(pipelineName=name, filter={"pipelineExecutionId": e2})[
        "actionExecutionDetails"] if a["actionName"] == "Approve"][0]
    assert abandoned["status"] == "Abandoned"
    assert error_of(cp.stop_pipeline_execution, pipelineName=name,
                    pipelineExecutionId=e2) == "PipelineExecutionNotStoppableException"

    e3 = cp.start_pipeline_execution(name=name)["pipelineExecutionId"]
    wait_for(lambda: waiting_token(cp, name, e3))
    cp.stop_pipeline_execution(pipelineName=name, pipelineExecutionId=e3, reason="stop and wait")
    assert wait_for(lambda: status(cp, name, e3) == "Stopped")


def test_disabled_transition_holds_and_supersedes(cp):
    name = "api-transition"
    cp.create_pipeline(pipeline=declaration(name))
    created = cp.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"][0]["pipelineExecutionId"]
    approve(cp, name, wait_for(lambda: waiting_token(cp, name, created)))
    wait_for(lambda: status(cp, name, created) == "Succeeded")

    cp.disable_stage_transition(pipelineName=name, stageName="Gate", transitionType="Inbound", reason="freeze")
    gate = next(s for s in cp.get_pipeline_state(name=name)["stageStates"] if s["stageName"] == "Gate")
    assert gate["inboundTransitionState"]["enabled"] is False
    assert gate["inboundTransitionState"]["disabledReason"] == "freeze"
    assert error_of(cp.disable_stage_transition, pipelineName=name, stageName="Nope", transitionType="Inbound",
                    reason="x") == "StageNotFoundException"

    older = cp.start_pipeline_execution(name=name)["pipelineExecutionId"]
    wait_for(lambda: any(a["actionName"] == "Src" and a["status"] == "Succeeded" for a in cp.list_action_executions(
        pipelineName=name, filter={"pipelineExecutionId": older})["actionExecutionDetails"]))
    newer = cp.start_pipeline_execution(name=name)["pipelineExecutionId"]
    assert wait_for(lambda: status(cp, name, older) == "Superseded")
    assert status(cp, name, newer) == "InProgress"
    time.sleep(1.5)
    assert waiting_token(cp, name, newer) is None  # still held in front of the disabled transition

    cp.enable_stage_transition(pipelineName=name, stageName="Gate", transitionType="Inbound")
    approve(cp, name, wait_for(lambda: waiting_token(cp, name, newer)))
    assert wait_for(lambda: status(cp, name, newer) == "Succeeded")
    history = [s["status"] for s in cp.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]]
    assert history == ["Succeeded", "Superseded", "Succeeded"]


def test_trigger_file_path_filter_decides_which_pushes_start(cp, control_plane, tmp_path):
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=work, check=True, capture_output=True, text=True).stdout.strip()

    cc = boto3.client("codecommit", endpoint_url=control_plane.settings.control_url, region_name="us-east-1",
                      aws_access_key_id="a", aws_secret_access_key="b")
    url = cc.create_repository(repositoryName="api-trigger")["repositoryMetadata"]["cloneUrlHttp"]
    work = tmp_path / "w"
    subprocess.run(["git", "clone", "-q", url, str(work)], check=True, capture_output=True)
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")

    def push(path: str, text: str) -> str:
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(text)
        git("add", "-A")
        git("commit", "-q", "-m", f"change {path}")
        git("push", "-q", "origin", "HEAD:main")
        return git("rev-parse", "HEAD")

    push("README", "first")
    decl = declaration("api-trigger")
    decl["stages"][0]["actions"][0] = {
        "name": "Src", "namespace": "SourceVariables",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
        "configuration": {"RepositoryName": "api-trigger", "BranchName": "main"},
        "outputArtifacts": [{"name": "Code"}]}
    decl["stages"][1]["actions"][0]["configuration"] = {"CustomData": "#{SourceVariables.CommitId}"}
    decl["triggers"] = [{"providerType": "CodeStarSourceConnection", "gitConfiguration": {
        "sourceActionName": "Src", "push": [{"branches": {"includes": ["main"]},
                                             "filePaths": {"includes": ["src/**"]}},
                                            {"tags": {"includes": ["v*"], "excludes": ["v*-beta"]}}]}}]
    cp.create_pipeline(pipeline=decl)

    def revisions() -> list[str]:
        return [r["revisionId"] for s in cp.list_pipeline_executions(pipelineName="api-trigger")[
            "pipelineExecutionSummaries"] for r in s["sourceRevisions"]]

    assert len(revisions()) == 1  # the execution CreatePipeline started
    ignored = push("README", "docs only")
    wanted = push("src/app.js", "code")
    assert wait_for(lambda: wanted in revisions())
    assert ignored not in revisions()

    def tag(name: str, commit: str) -> None:
        git("tag", name, commit)
        git("push", "-q", "origin", f"refs/tags/{name}")

    tag("v0-beta", ignored)
    tag("nightly", ignored)
    tag("v1.0", ignored)  # a release tag on a commit no branch push started
    assert wait_for(lambda: ignored in revisions())
    tagged = next(s for s in cp.list_pipeline_executions(pipelineName="api-trigger")["pipelineExecutionSummaries"]
                  if s["sourceRevisions"][0]["revisionId"] == ignored)
    assert tagged["trigger"]["triggerType"] == "WebhookV2" and "tag v1.0" in tagged["trigger"]["triggerDetail"]
    assert revisions().count(ignored) == 1  # v0-beta (excluded) and nightly (not included) started nothing


def test_on_failure_retry_then_rollback(cp):
    name = "api-on-failure"
    decl = declaration(name)
    decl["stages"][1]["onFailure"] = {"result": "RETRY", "retryConfiguration": {"retryMode": "FAILED_ACTIONS"}}
    cp.create_pipeline(pipeline=decl)
    e1 = cp.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"][0]["pipelineExecutionId"]
    first = wait_for(lambda: waiting_token(cp, name, e1))
    approve(cp, name, first, "Rejected")
    retried = wait_for(lambda: (waiting_token(cp, name, e1) or "") if waiting_token(cp, name, e1) != first else None)
    assert status(cp, name, e1) == "InProgress"  # the stage retried by itself instead of failing the execution
    approve(cp, name, retried)
    assert wait_for(lambda: status(cp, name, e1) == "Succeeded")

    decl["stages"][1]["onFailure"] = {"result": "ROLLBACK"}
    cp.update_pipeline(pipeline=decl)
    e2 = cp.start_pipeline_execution(name=name)["pipelineExecutionId"]
    approve(cp, name, wait_for(lambda: waiting_token(cp, name, e2)))
    assert wait_for(lambda: status(cp, name, e2) == "Succeeded")  # the rollback target, on the current version
    e3 = cp.start_pipeline_execution(name=name)["pipelineExecutionId"]
    approve(cp, name, wait_for(lambda: waiting_token(cp, name, e3)), "Rejected")
    assert wait_for(lambda: status(cp, name, e3) == "Failed")
    summaries = wait_for(lambda: [s for s in cp.list_pipeline_executions(pipelineName=name)[
        "pipelineExecutionSummaries"] if s.get("executionType") == "ROLLBACK"])
    rollback = summaries[0]
    assert rollback["trigger"]["triggerType"] == "AutomatedRollback"
    assert rollback["rollbackMetadata"]["rollbackTargetPipelineExecutionId"] == e2
    approve(cp, name, wait_for(lambda: waiting_token(cp, name, rollback["pipelineExecutionId"])))
    assert wait_for(lambda: status(cp, name, rollback["pipelineExecutionId"]) == "Succeeded")
    ran = {a["stageName"] for a in cp.list_action_executions(
        pipelineName=name, filter={"pipelineExecutionId": rollback["pipelineExecutionId"]})["actionExecutionDetails"]}
    assert ran == {"Gate"}  # only the failed stage ran, with the target's artifacts


def test_queued_mode_runs_every_execution_in_turn(cp):
    name = "api-queued"
    cp.create_pipeline(pipeline={**declaration(name), "executionMode": "QUEUED"})
    e1 = cp.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"][0]["pipelineExecutionId"]
    token = wait_for(lambda: waiting_token(cp, name, e1))
    later = [cp.start_pipeline_execution(name=name)["pipelineExecutionId"] for _ in range(2)]
    time.sleep(1.5)  # both wait in front of Gate; in SUPERSEDED mode the first would now be Superseded
    assert [status(cp, name, e) for e in later] == ["InProgress", "InProgress"]
    approve(cp, name, token)
    for _ in later:
        def next_waiting():
            gate = next(s for s in cp.get_pipeline_state(name=name)["stageStates"] if s["stageName"] == "Gate")
            action = gate["actionStates"][0].get("latestExecution", {})
            return action.get("token") if action.get("status") == "InProgress" else None
        approve(cp, name, wait_for(next_waiting))
    for execution_id in [e1, *later]:
        assert wait_for(lambda: status(cp, name, execution_id) == "Succeeded")


def test_s3_upload_starts_the_pipeline_unless_polling_is_off(cp, control_plane):
    store = control_plane.store
    for key in ("poll.zip", "nopoll.zip"):
        store.put_bytes("api-source", key, b"PK\x05\x06" + b"\x00" * 18)
    polled, quiet = declaration("api-s3-poll"), declaration("api-s3-nopoll")
    polled["stages"][0]["actions"][0]["configuration"]["S3ObjectKey"] = "poll.zip"
    quiet["stages"][0]["actions"][0]["configuration"].update(S3ObjectKey="nopoll.zip", PollForSourceChanges="false")
    cp.create_pipeline(pipeline=polled)
    cp.create_pipeline(pipeline=quiet)

    def summaries(name: str) -> list[dict]:
        return cp.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]

    time.sleep(3 * control_plane.settings.s3_poll_seconds)  # polls that see nothing new start nothing
    assert len(summaries("api-s3-poll")) == 1 and len(summaries("api-s3-nopoll")) == 1

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("README", "second upload")
    etag = store.put_bytes("api-source", "poll.zip", out.getvalue()).strip('"')
    store.put_bytes("api-source", "nopoll.zip", out.getvalue())
    newest = wait_for(lambda: len(summaries("api-s3-poll")) == 2 and summaries("api-s3-poll")[0])
    assert newest["trigger"]["triggerType"] == "PollForSourceChanges"
    assert newest["sourceRevisions"][0]["revisionId"] == etag
    time.sleep(3 * control_plane.settings.s3_poll_seconds)
    assert len(summaries("api-s3-poll")) == 2  # one upload, one execution
    assert len(summaries("api-s3-nopoll")) == 1
    untouched = [s for name in ("api-approval", "api-transition") for s in summaries(name)]
    assert untouched and all(s["trigger"]["triggerType"] != "PollForSourceChanges" for s in untouched)  # app.zip
    for name in ("api-s3-poll", "api-s3-nopoll"):
        for summary in summaries(name):
            if summary["status"] == "InProgress":
                cp.stop_pipeline_execution(pipelineName=name, pipelineExecutionId=summary["pipelineExecutionId"],
                                           abandon=True)
