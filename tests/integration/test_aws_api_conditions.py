"""Stage conditions with CloudWatch alarm rules, and RollbackStage, through boto3 against a running
control plane: a CodeCommit source, a one-command CodeBuild stage whose onSuccess watches one alarm,
and a Deploy stage whose entry another alarm gates."""

from __future__ import annotations

import subprocess
import time

import boto3
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration

NAME = "api-conditions"
SPEC = ("version: 0.2\nphases:\n  build:\n    commands:\n      - echo built > out.txt\n"
        "artifacts:\n  files:\n    - out.txt\n")


@pytest.fixture(scope="module")
def aws(control_plane):
    def client(service: str):
        return boto3.client(service, endpoint_url=control_plane.settings.control_url, region_name="us-east-1",
                            aws_access_key_id="any", aws_secret_access_key="thing")
    return client


def error_of(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def alarm_condition(result: str, alarm: str) -> dict:
    return {"conditions": [{"result": result, "rules": [{
        "name": "Health", "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "CloudWatchAlarm",
                                         "version": "1"},
        "configuration": {"AlarmName": alarm}}]}]}


def declaration(entry_result: str) -> dict:
    return {
        "name": NAME, "roleArn": "arn:aws:iam::000000000000:role/cp", "pipelineType": "V2",
        "artifactStore": {"type": "S3", "location": "codepipeline-artifacts-pipelocal"},
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Src", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit",
                                                "version": "1"},
                "configuration": {"RepositoryName": NAME, "BranchName": "main"},
                "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "onSuccess": alarm_condition("FAIL", f"{NAME}-build-health"), "actions": [{
                "name": "Make", "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild",
                                                 "version": "1"},
                "configuration": {"ProjectName": NAME}, "inputArtifacts": [{"name": "Code"}],
                "outputArtifacts": [{"name": "Built"}]}]},
            {"name": "Deploy", "beforeEntry": alarm_condition(entry_result, f"{NAME}-deploy-gate"), "actions": [{
                "name": "Approve", "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual",
                                                    "version": "1"}}]},
        ],
    }


def finished(cp, execution_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = cp.get_pipeline_execution(pipelineName=NAME, pipelineExecutionId=execution_id)["pipelineExecution"]
        if execution["status"] not in ("InProgress", "Stopping"):
            return execution
        time.sleep(0.3)
    raise AssertionError(f"execution {execution_id} still running after {timeout} s")


def stage_state(cp, stage: str) -> dict:
    return next(s for s in cp.get_pipeline_state(name=NAME)["stageStates"] if s["stageName"] == stage)


@pytest.fixture(scope="module")
def release(aws, tmp_path_factory):
    """The repository (one commit per call), the build project and the two alarms."""
    url = aws("codecommit").create_repository(repositoryName=NAME)["repositoryMetadata"]["cloneUrlHttp"]
    work = tmp_path_factory.mktemp("conditions") / "app"
    subprocess.run(["git", "clone", "-q", url, str(work)], check=True, capture_output=True)

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=work, check=True,
                              capture_output=True, text=True).stdout.strip()

    def commit(message: str) -> str:
        (work / "buildspec.yml").write_text(SPEC)
        (work / "README").write_text(message)
        git("add", "-A")
        git("commit", "-q", "-m", message)
        git("push", "-q", "origin", "HEAD:main")
        return git("rev-parse", "HEAD")

    aws("codebuild").create_project(
        name=NAME, source={"type": "CODEPIPELINE"}, artifacts={"type": "CODEPIPELINE"},
        environment={"type": "LINUX_CONTAINER", "image": "pipelocal/build:1", "computeType": "BUILD_GENERAL1_SMALL"},
        serviceRole="arn:aws:iam::000000000000:role/cb")
    for alarm in (f"{NAME}-build-health", f"{NAME}-deploy-gate"):
        aws("cloudwatch").put_metric_alarm(
            AlarmName=alarm, Namespace="Conditions/Test", MetricName=alarm, Statistic="Sum", Period=60,
            EvaluationPeriods=1, Threshold=0.0, ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="ignore")  # no data: the state SetAlarmState gives holds
    return commit


def set_alarm(aws, alarm: str, state: str) -> None:
    aws("cloudwatch").set_alarm_state(AlarmName=f"{NAME}-{alarm}", StateValue=state, StateReason="set by the test")


def test_alarm_conditions_and_manual_rollback(aws, release):
    cp = aws("codepipeline")
    first_commit = release("first")
    set_alarm(aws, "deploy-gate", "ALARM")
    set_alarm(aws, "build-health", "OK")

    # Entry condition FAIL: the build runs, then the gate's alarm stops the execution at Deploy.
    cp.create_pipeline(pipeline=declaration("FAIL"))
    e1 = cp.list_pipeline_executions(pipelineName=NAME)["pipelineExecutionSummaries"][0]["pipelineExecutionId"]
    failed = finished(cp, e1)
    assert failed["status"] == "Failed"
    assert "Deploy" in failed["statusSummary"] and f"'{NAME}-deploy-gate' is in ALARM" in failed["statusSummary"]
    deploy = stage_state(cp, "Deploy")
    assert deploy["latestExecution"] == {"pipelineExecutionId": e1, "status": "Failed", "type": "STANDARD"}
    entry = deploy["beforeEntryConditionState"]
    assert entry["latestExecution"]["status"] == "Failed"
    assert entry["conditionStates"][0]["ruleStates"][0]["ruleName"] == "Health"
    assert "latestExecution" not in deploy["actionStates"][0]  # the approval never started
    assert stage_state(cp, "Build")["onSuccessConditionState"]["latestExecution"]["status"] == "Succeeded"

    # onSuccess FAIL: the build succeeds, its stage fails on the health alarm.
    set_alarm(aws, "build-health", "ALARM")
    e2 = finished(cp, cp.start_pipeline_execution(name=NAME)["pipelineExecutionId"])
    assert e2["status"] == "Failed" and "onSuccess" in e2["statusSummary"] and "build-health" in e2["statusSummary"]
    assert stage_state(cp, "Build")["latestExecution"]["status"] == "Failed"
    set_alarm(aws, "build-health", "OK")

    # Entry condition SKIP: Deploy is Skipped and the execution succeeds.
    cp.update_pipeline(pipeline=declaration("SKIP"))
    e3 = finished(cp, cp.start_pipeline_execution(name=NAME)["pipelineExecutionId"])
    assert e3["status"] == "Succeeded"
    assert stage_state(cp, "Deploy")["latestExecution"]["status"] == "Skipped"
    second_commit = release("second")
    e4 = finished(cp, cp.start_pipeline_execution(name=NAME)["pipelineExecutionId"])
    assert e4["status"] == "Succeeded" and e4["artifactRevisions"][0]["revisionId"] == second_commit

    # RollbackStage: what AWS refuses, then Build back to e3's commit and artifacts.
    refusals = [
        ({"stageName": "Source", "targetPipelineExecutionId": e3["pipelineExecutionId"]},
         "UnableToRollbackStageException"),
        ({"stageName": "Deploy", "targetPipelineExecutionId": e3["pipelineExecutionId"]},  # Skipped there
         "UnableToRollbackStageException"),
        ({"stageName": "Build", "targetPipelineExecutionId": e1}, "PipelineExecutionOutdatedException"),
        ({"stageName": "Nope", "targetPipelineExecutionId": e3["pipelineExecutionId"]}, "StageNotFoundException"),
        ({"stageName": "Build", "targetPipelineExecutionId": "00000000-0000-0000-0000-000000000000"},
         "PipelineExecutionNotFoundException"),
    ]
    for request, code in refusals:
        assert error_of(cp.rollback_stage, pipelineName=NAME, **request)[0] == code, request
    rollback_id = cp.rollback_stage(pipelineName=NAME, stageName="Build",
                                    targetPipelineExecutionId=e3["pipelineExecutionId"])["pipelineExecutionId"]
    rolled = finished(cp, rollback_id)
    assert rolled["status"] == "Succeeded" and rolled["executionType"] == "ROLLBACK"
    assert rolled["trigger"]["triggerType"] == "ManualRollback"
    assert rolled["rollbackMetadata"]["rollbackTargetPipelineExecutionId"] == e3["pipelineExecutionId"]
    assert rolled["artifactRevisions"][0]["revisionId"] == first_commit != second_commit
    ran = cp.list_action_executions(pipelineName=NAME, filter={"pipelineExecutionId": rollback_id})[
        "actionExecutionDetails"]
    assert [(a["stageName"], a["status"]) for a in ran] == [("Build", "Succeeded")]
    assert stage_state(cp, "Build")["latestExecution"]["type"] == "ROLLBACK"
    code, message = error_of(cp.rollback_stage, pipelineName=NAME, stageName="Build",
                             targetPipelineExecutionId=rollback_id)
    assert code == "UnableToRollbackStageException" and "rollback" in message
