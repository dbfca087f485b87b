"""The AWS endpoint through real boto3 clients against a running control plane: every listed
operation of CodeCommit, CodeBuild, CodeDeploy and CodePipeline, and their error names."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration
ACCOUNT_RE = r"arn:aws:[a-z]+:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"


@pytest.fixture(scope="module")
def aws(control_plane):
    def client(service: str):
        return boto3.client(service, endpoint_url=control_plane.settings.control_url, region_name="us-east-1",
                            aws_access_key_id="any", aws_secret_access_key="thing")
    return client


def error_of(call, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


# ---------------------------------------------------------------- protocol

def test_malformed_requests_get_aws_shaped_errors(control_plane):
    url = control_plane.settings.control_url + "/"
    cases = [
        ({"X-Amz-Target": "CodePipeline_20150709.Nope"}, b"{}", 400, "UnknownOperationException"),
        ({"X-Amz-Target": "CodePipeline_20150709.GetPipeline"}, b"{not json", 400, "SerializationException"),
        ({"X-Amz-Target": "CodePipeline_20150709.GetPipeline"}, b'{"name": 7}', 400, "ValidationException"),
        ({"X-Amz-Target": "CodePipeline_20150709.ListWebhooks"}, b"{}", 501, "NotImplemented"),
        ({}, b"{}", 400, "UnknownOperationException"),
    ]
    for headers, body, status, code in cases:
        response = httpx.post(url, content=body, headers={**headers, "Content-Type": "application/x-amz-json-1.1"})
        assert (response.status_code, response.json()["__type"]) == (status, code), (headers, body, response.text)
        assert response.json()["message"]


def test_unimplemented_operations_answer_not_implemented(aws):
    code, message = error_of(aws("codepipeline").list_webhooks)
    assert code == "NotImplemented" and "ListWebhooks" in message


# ---------------------------------------------------------------- CodeCommit

def test_codecommit_repositories_and_branches(aws, control_plane, tmp_path):
    cc = aws("codecommit")
    meta = cc.create_repository(repositoryName="api-repo", repositoryDescription="d")["repositoryMetadata"]
    assert meta["repositoryName"] == "api-repo" and meta["cloneUrlHttp"].endswith("/v1/repos/api-repo")
    assert meta["Arn"] == f"arn:aws:codecommit:{control_plane.settings.region}:{meta['accountId']}:api-repo"
    assert error_of(cc.create_repository, repositoryName="api-repo")[0] == "RepositoryNameExistsException"
    assert error_of(cc.create_repository, repositoryName="bad name!")[0] == "InvalidRepositoryNameException"
    assert error_of(cc.get_repository, repositoryName="missing")[0] == "RepositoryDoesNotExistException"

    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", meta["cloneUrlHttp"], "w")
    (work / "f.txt").write_text("x")
    git(work, "add", "-A")
    git(work, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "one")
    git(work, "push", "-q", "origin", "HEAD:main")
    head = git(work, "rev-parse", "HEAD")

    assert cc.get_branch(repositoryName="api-repo", branchName="main")["branch"] == {
        "branchName": "main", "commitId": head}
    assert cc.list_branches(repositoryName="api-repo")["branches"] == ["main"]
    assert error_of(cc.get_branch, repositoryName="api-repo", branchName="nope")[0] == "BranchDoesNotExistException"
    assert cc.get_repository(repositoryName="api-repo")["repositoryMetadata"]["defaultBranch"] == "main"
    assert cc.get_commit(repositoryName="api-repo", commitId=head)["commit"]["message"] == "one"
    names = [r["repositoryName"] for r in cc.list_repositories()["repositories"]]
    assert "api-repo" in names
    batch = cc.batch_get_repositories(repositoryNames=["api-repo", "missing"])
    assert [r["repositoryName"] for r in batch["repositories"]] == ["api-repo"]
    assert batch["repositoriesNotFound"] == ["missing"]
    assert cc.delete_repository(repositoryName="api-repo")["repositoryId"] == meta["repositoryId"]
    assert "repositoryId" not in cc.delete_repository(repositoryName="api-repo")
    assert error_of(cc.get_repository, repositoryName="api-repo")[0] == "RepositoryDoesNotExistException"


# ---------------------------------------------------------------- CodeBuild

def test_codebuild_projects_and_builds(aws, control_plane):
    cb = aws("codebuild")
    spec = ("version: 0.2\nphases:\n  build:\n    commands:\n      - echo hello $GREETING\n"
            "      - test \"$FROM_SSM\" = ssm-value && echo parameter-resolved\n")
    aws("ssm").put_parameter(Name="/api/build-param", Value="ssm-value", Type="String", Overwrite=True)
    project = cb.create_project(
        name="api-project", source={"type": "NO_SOURCE", "buildspec": spec}, artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "LINUX_CONTAINER", "image": "pipelocal/build:1", "computeType": "BUILD_GENERAL1_SMALL"},
        serviceRole="arn:aws:iam::000000000000:role/cb")["project"]
    assert project["arn"].endswith(":project/api-project")
    assert error_of(cb.create_project, name="api-project", source={"type": "NO_SOURCE"},
                    artifacts={"type": "NO_ARTIFACTS"}, environment=project["environment"],
                    serviceRole="r")[0] == "ResourceAlreadyExistsException"
    assert "api-project" in cb.list_projects()["projects"]
    updated = cb.update_project(name="api-project", timeoutInMinutes=15)["project"]
    assert updated["timeoutInMinutes"] == 15
    got = cb.batch_get_projects(names=["api-project", "nope"])
    assert [p["name"] for p in got["projects"]] == ["api-project"] and got["projectsNotFound"] == ["nope"]

    build = cb.start_build(projectName="api-project", environmentVariablesOverride=[
        {"name": "GREETING", "value": "world", "type": "PLAINTEXT"},
        {"name": "FROM_SSM", "value": "/api/build-param", "type": "PARAMETER_STORE"}])["build"]
    assert build["projectName"] == "api-project" and build["buildStatus"] == "IN_PROGRESS"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        done = cb.batch_get_builds(ids=[build["id"], "api-project:missing"])
        if done["builds"][0]["buildComplete"]:
            break
        time.sleep(1)
    finished = done["builds"][0]
    assert done["buildsNotFound"] == ["api-project:missing"]
    assert finished["buildStatus"] == "SUCCEEDED", finished
    phase_types = [p["phaseType"] for p in finished["phases"]]
    assert phase_types[0] == "SUBMITTED" and "BUILD" in phase_types
    log = "".join(c["text"] for c in control_plane.client.get(f"/builds/{build['id']}/log")["chunks"])
    assert "hello world" in log and "parameter-resolved" in log
    assert cb.list_builds_for_project(projectName="api-project")["ids"] == [build["id"]]
    assert build["id"] in cb.list_builds()["ids"]
    assert cb.stop_build(id=build["id"])["build"]["buildStatus"] == "SUCCEEDED"

    assert error_of(cb.start_build, projectName="nope")[0] == "ResourceNotFoundException"
    cb.create_project(name="api-pipeline-only", source={"type": "CODEPIPELINE"},
                      artifacts={"type": "CODEPIPELINE"}, environment=project["environment"], serviceRole="r")
    code, message = error_of(cb.start_build, projectName="api-pipeline-only")
    assert code == "InvalidInputException" and "CODEPIPELINE" in message
    cb.delete_project(name="api-project")
    assert error_of(cb.start_build, projectName="api-project")[0] == "ResourceNotFoundException"


# ---------------------------------------------------------------- CodeDeploy

def _bundle() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("appspec.yml", "version: 0.0\nos: linux\nfiles:\n  - source: /hello.txt\n"
                                  "    destination: /tmp/api-test/\n")
        z.writestr("hello.txt", "hello")
    return out.getvalue()


def test_codedeploy_applications_groups_configs_deployments(aws, control_plane):
    cd = aws("codedeploy")
    app_id = cd.create_application(applicationName="api-app", computePlatform="Server")["applicationId"]
    assert cd.get_application(applicationName="api-app")["application"]["applicationId"] == app_id
    assert "api-app" in cd.list_applications()["applications"]
    assert [a["applicationName"] for a in cd.batch_get_applications(applicationNames=["api-app"])["applicationsInfo"]] \
        == ["api-app"]
    assert error_of(cd.create_application, applicationName="api-app")[0] == "ApplicationAlreadyExistsException"
    assert error_of(cd.get_application, applicationName="nope")[0] == "ApplicationDoesNotExistException"

    group_id = cd.create_deployment_group(
        applicationName="api-app", deploymentGroupName="api-group", serviceRoleArn="arn:aws:iam::0:role/cd",
        ec2TagFilters=[{"Key": "Environment", "Value": "demo", "Type": "KEY_AND_VALUE"}],
        deploymentConfigName="CodeDeployDefault.AllAtOnce")["deploymentGroupId"]
    info = cd.get_deployment_group(applicationName="api-app", deploymentGroupName="api-group")["deploymentGroupInfo"]
    assert info["deploymentGroupId"] == group_id and info["deploymentConfigName"] == "CodeDeployDefault.AllAtOnce"
    assert cd.list_deployment_groups(applicationName="api-app")["deploymentGroups"] == ["api-group"]
    assert error_of(cd.create_deployment_group, applicationName="api-app", deploymentGroupName="api-group",
                    serviceRoleArn="r")[0] == "DeploymentGroupAlreadyExistsException"
    assert error_of(cd.get_deployment_group, applicationName="api-app",
                    deploymentGroupName="nope")[0] == "DeploymentGroupDoesNotExistException"
    cd.update_deployment_group(applicationName="api-app", currentDeploymentGroupName="api-group",
                               deploymentConfigName="CodeDeployDefault.OneAtATime")
    assert cd.get_deployment_group(applicationName="api-app", deploymentGroupName="api-group")[
        "deploymentGroupInfo"]["deploymentConfigName"] == "CodeDeployDefault.OneAtATime"

    assert "CodeDeployDefault.HalfAtATime" in cd.list_deployment_configs()["deploymentConfigsList"]
    config = cd.get_deployment_config(deploymentConfigName="CodeDeployDefault.HalfAtATime")["deploymentConfigInfo"]
    assert config["minimumHealthyHosts"] == {"type": "FLEET_PERCENT", "value": 50}
    assert error_of(cd.get_deployment_config, deploymentConfigName="Nope")[0] == "DeploymentConfigDoesNotExistException"

    control_plane.store.ensure_bucket("api-bundles")
    control_plane.store.put_bytes("api-bundles", "b.zip", _bundle())
    revision = {"revisionType": "S3", "s3Location": {"bucket": "api-bundles", "key": "b.zip", "bundleType": "zip"}}
    assert error_of(cd.create_deployment, applicationName="api-app", deploymentGroupName="nope",
                    revision=revision)[0] == "DeploymentGroupDoesNotExistException"
    deployment_id = cd.create_deployment(applicationName="api-app", deploymentGroupName="api-group",
                                         revision=revision)["deploymentId"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        deployment = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        if deployment["status"] in ("Succeeded", "Failed", "Stopped"):
            break
        time.sleep(1)
    assert deployment["status"] == "Succeeded", deployment
    assert deployment["deploymentOverview"]["Succeeded"] == 2
    assert deployment_id in cd.list_deployments(applicationName="api-app", deploymentGroupName="api-group",
                                                includeOnlyStatuses=["Succeeded"])["deployments"]
    assert cd.list_deployments(applicationName="api-app", includeOnlyStatuses=["Failed"])["deployments"] == []
    assert [d["deploymentId"] for d in cd.batch_get_deployments(deploymentIds=[deployment_id])["deploymentsInfo"]] \
        == [deployment_id]

    instances = cd.list_deployment_instances(deploymentId=deployment_id)["instancesList"]
    assert len(instances) == 2
    summary = cd.get_deployment_instance(deploymentId=deployment_id, instanceId=instances[0])["instanceSummary"]
    assert summary["status"] == "Succeeded"
    assert {e["lifecycleEventName"] for e in summary["lifecycleEvents"]} >= {"Install", "AfterInstall"}
    targets = cd.list_deployment_targets(deploymentId=deployment_id)["targetIds"]
    assert sorted(targets) == sorted(instances)
    got = cd.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=targets)["deploymentTargets"]
    assert {t["instanceTarget"]["status"] for t in got} == {"Succeeded"}
    assert cd.get_deployment_target(deploymentId=deployment_id, targetId=targets[0])["deploymentTarget"][
        "instanceTarget"]["targetArn"].endswith(targets[0])
    assert error_of(cd.get_deployment_instance, deploymentId=deployment_id,
                    instanceId="i-nope")[0] == "InstanceDoesNotExistException"
    assert error_of(cd.stop_deployment, deploymentId=deployment_id)[0] == "DeploymentAlreadyCompletedException"
    assert error_of(cd.get_deployment, deploymentId="d-NOPE12345")[0] == "DeploymentDoesNotExistException"

    cd.delete_deployment_group(applicationName="api-app", deploymentGroupName="api-group")
    assert cd.list_deployment_groups(applicationName="api-app")["deploymentGroups"] == []
    cd.delete_application(applicationName="api-app")
    assert error_of(cd.get_application, applicationName="api-app")[0] == "ApplicationDoesNotExistException"


def test_codedeploy_on_premises_registration(aws):
    cd = aws("codedeploy")
    cd.register_on_premises_instance(instanceName="rack-1", iamUserArn="arn:aws:iam::000000000000:user/r1")
    assert error_of(cd.register_on_premises_instance, instanceName="rack-1",
                    iamUserArn="arn:aws:iam::000000000000:user/r1")[0] == "InstanceNameAlreadyRegisteredException"
    assert error_of(cd.register_on_premises_instance, instanceName="rack-2")[0] == "IamArnRequiredException"
    cd.add_tags_to_on_premises_instances(instanceNames=["rack-1"], tags=[{"Key": "Env", "Value": "lab"}])
    assert cd.list_on_premises_instances(tagFilters=[{"Key": "Env", "Value": "lab", "Type": "KEY_AND_VALUE"}])[
        "instanceNames"] == ["rack-1"]
    assert cd.get_on_premises_instance(instanceName="rack-1")["instanceInfo"]["tags"] == [{"Key": "Env", "Value": "lab"}]
    cd.deregister_on_premises_instance(instanceName="rack-1")
    assert cd.list_on_premises_instances(registrationStatus="Registered")["instanceNames"] == []
    assert error_of(cd.get_on_premises_instance, instanceName="rack-9")[0] == "InstanceNotRegisteredException"


# ---------------------------------------------------------------- CodePipeline (structure and lookups)

def declaration(name: str, **changes) -> dict:
    decl = {
        "name": name, "roleArn": "arn:aws:iam::000000000000:role/cp",
        "artifactStore": {"type": "S3", "location": "codepipeline-artifacts-pipelocal"},
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Src", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit",
                                                "version": "1"},
                "configuration": {"RepositoryName": "r", "BranchName": "main"},
                "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "actions": [{
                "name": "Make", "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild",
                                                 "version": "1"},
                "configuration": {"ProjectName": "p"}, "inputArtifacts": [{"name": "Code"}]}]},
        ],
    }
    decl.update(changes)
    return decl


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d["stages"].pop(), "two stages"),
    (lambda d: d["stages"][1]["actions"][0].update(inputArtifacts=[{"name": "Nope"}]), "Make"),
    (lambda d: d["stages"][1].update(name="Source"), "Source"),
    (lambda d: d["stages"][1]["actions"][0]["actionTypeId"].update(category="Source"), "Make"),
    (lambda d: d["stages"][0]["actions"][0]["configuration"].pop("BranchName"), "BranchName"),
    (lambda d: d["stages"][1]["actions"][0].update(runOrder=1000), "runOrder"),
    (lambda d: d["stages"][1]["actions"][0]["actionTypeId"].update(provider="Jenkins"), "provider"),
])
def test_invalid_structure_names_the_fault(aws, mutate, needle):
    decl = declaration("api-invalid")
    mutate(decl)
    code, message = error_of(aws("codepipeline").create_pipeline, pipeline=decl)
    assert code == "InvalidStructureException"
    assert needle in message


def test_pipeline_lifecycle_and_lookups(aws, control_plane):
    cp = aws("codepipeline")
    created = cp.create_pipeline(pipeline=declaration("api-pipe"))["pipeline"]
    assert created["version"] == 1
    assert error_of(cp.create_pipeline, pipeline=declaration("api-pipe"))[0] == "PipelineNameInUseException"
    got = cp.get_pipeline(name="api-pipe")
    assert got["pipeline"]["stages"][1]["actions"][0]["name"] == "Make"
    arn = got["metadata"]["pipelineArn"]
    assert arn.startswith(f"arn:aws:codepipeline:{control_plane.settings.region}:") and arn.endswith(":api-pipe")
    assert "api-pipe" in [p["name"] for p in cp.list_pipelines()["pipelines"]]
    assert cp.update_pipeline(pipeline=declaration("api-pipe"))["pipeline"]["version"] == 2
    assert error_of(cp.get_pipeline, name="api-pipe", version=1)[0] == "PipelineVersionNotFoundException"
    state = cp.get_pipeline_state(name="api-pipe")
    assert [s["stageName"] for s in state["stageStates"]] == ["Source", "Build"]
    assert state["pipelineVersion"] == 2
    # creating the pipeline started it; its source repository does not exist, so Source fails and says why
    summaries = cp.list_pipeline_executions(pipelineName="api-pipe")["pipelineExecutionSummaries"]
    assert [s["trigger"]["triggerType"] for s in summaries] == ["CreatePipeline"]
    first = summaries[0]["pipelineExecutionId"]
    deadline = time.monotonic() + 30
    while cp.get_pipeline_execution(pipelineName="api-pipe", pipelineExecutionId=first)[
            "pipelineExecution"]["status"] == "InProgress" and time.monotonic() < deadline:
        time.sleep(0.2)
    source = cp.list_action_executions(pipelineName="api-pipe")["actionExecutionDetails"][0]
    assert (source["actionName"], source["status"]) == ("Src", "Failed")
    assert "'r'" in source["output"]["executionResult"]["externalExecutionSummary"]

    assert error_of(cp.get_pipeline, name="nope")[0] == "PipelineNotFoundException"
    assert error_of(cp.get_pipeline_state, name="nope")[0] == "PipelineNotFoundException"
    assert error_of(cp.start_pipeline_execution, name="nope")[0] == "PipelineNotFoundException"
    assert error_of(cp.get_pipeline_execution, pipelineName="api-pipe",
                    pipelineExecutionId="00000000-0000-0000-0000-000000000000")[0] == \
        "PipelineExecutionNotFoundException"
    assert error_of(cp.stop_pipeline_execution, pipelineName="api-pipe",
                    pipelineExecutionId="00000000-0000-0000-0000-000000000000")[0] == \
        "PipelineExecutionNotFoundException"
    assert error_of(cp.list_action_executions, pipelineName="nope")[0] == "PipelineNotFoundException"

    cp.delete_pipeline(name="api-pipe")
    cp.delete_pipeline(name="api-pipe")  # deleting a missing pipeline succeeds, as on AWS
    assert error_of(cp.get_pipeline, name="api-pipe")[0] == "PipelineNotFoundException"


def test_arns_share_one_account_and_region(aws, control_plane):
    import re

    aws("codepipeline").create_pipeline(pipeline=declaration("api-arns"))
    arns = [
        aws("codepipeline").get_pipeline(name="api-arns")["metadata"]["pipelineArn"],
        aws("codecommit").create_repository(repositoryName="api-arns")["repositoryMetadata"]["Arn"],
        aws("codebuild").create_project(name="api-arns", source={"type": "CODEPIPELINE"},
                                        artifacts={"type": "CODEPIPELINE"},
                                        environment={"type": "LINUX_CONTAINER", "image": "pipelocal/build:1",
                                                     "computeType": "BUILD_GENERAL1_SMALL"},
                                        serviceRole="r")["project"]["arn"],
    ]
    found = {re.match(ACCOUNT_RE, arn).group("region", "account") for arn in arns}
    assert found == {(control_plane.settings.region, control_plane.settings.account_id)}, arns


# ---------------------------------------------------------------- SSM and Secrets Manager (for buildspec env)

def test_parameters_and_secrets(aws):
    ssm, sm = aws("ssm"), aws("secretsmanager")
    assert ssm.put_parameter(Name="/api/db-host", Value="db.local", Type="String")["Version"] == 1
    assert error_of(ssm.put_parameter, Name="/api/db-host", Value="x", Type="String")[0] == "ParameterAlreadyExists"
    assert ssm.put_parameter(Name="/api/db-host", Value="db2.local", Type="String", Overwrite=True)["Version"] == 2
    assert ssm.get_parameter(Name="/api/db-host")["Parameter"]["Value"] == "db2.local"
    got = ssm.get_parameters(Names=["/api/db-host", "/api/missing"])
    assert [p["Name"] for p in got["Parameters"]] == ["/api/db-host"] and got["InvalidParameters"] == ["/api/missing"]
    assert error_of(ssm.get_parameter, Name="/api/missing")[0] == "ParameterNotFound"

    arn = sm.create_secret(Name="api/token", SecretString='{"key": "s3cr3t"}')["ARN"]
    assert arn.startswith("arn:aws:secretsmanager:")
    assert error_of(sm.create_secret, Name="api/token", SecretString="x")[0] == "ResourceExistsException"
    sm.put_secret_value(SecretId="api/token", SecretString='{"key": "rotated"}')
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == '{"key": "rotated"}'
    assert sm.get_secret_value(SecretId="api/token", VersionStage="AWSPREVIOUS")["SecretString"] == '{"key": "s3cr3t"}'
    assert error_of(sm.get_secret_value, SecretId="api/none")[0] == "ResourceNotFoundException"
    sm.delete_secret(SecretId="api/token")
    assert error_of(sm.get_secret_value, SecretId="api/token")[0] == "ResourceNotFoundException"


# ---------------------------------------------------------------- pagination

def _failing_pipeline(name: str) -> dict:
    """A pipeline whose first execution fails at once (its source object does not exist): cheap to list."""
    return {"name": name, "roleArn": "arn:aws:iam::000000000000:role/cp",
            "artifactStore": {"type": "S3", "location": "codepipeline-artifacts-pipelocal"},
            "stages": [
                {"name": "Source", "actions": [{
                    "name": "Src", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3",
                                                    "version": "1"},
                    "configuration": {"S3Bucket": "api-page-nothing", "S3ObjectKey": "none.zip",
                                      "PollForSourceChanges": "false"},
                    "outputArtifacts": [{"name": "Code"}]}]},
                {"name": "Gate", "actions": [{
                    "name": "Approve", "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual",
                                                        "version": "1"}}]}]}


def test_list_operations_page_with_boto3_paginators_and_the_cli(aws, control_plane):
    cp, cc, cb = aws("codepipeline"), aws("codecommit"), aws("codebuild")
    for i in range(3):
        cp.create_pipeline(pipeline=_failing_pipeline(f"api-page-{i}"))
        cc.create_repository(repositoryName=f"api-page-{i}")
    everything = [p["name"] for p in cp.list_pipelines(maxResults=1000)["pipelines"]]
    assert {f"api-page-{i}" for i in range(3)} <= set(everything)

    first = cp.list_pipelines(maxResults=2)
    assert len(first["pipelines"]) == 2 and first["nextToken"]
    pages = list(cp.get_paginator("list_pipelines").paginate(PaginationConfig={"PageSize": 2}))
    assert len(pages) == (len(everything) + 1) // 2
    assert [p["name"] for page in pages for p in page["pipelines"]] == everything

    repos = [r["repositoryName"] for page in cc.get_paginator("list_repositories").paginate()
             for r in page["repositories"]]
    assert {f"api-page-{i}" for i in range(3)} <= set(repos) and len(repos) == len(set(repos))

    for i in range(3):
        cp.start_pipeline_execution(name="api-page-0")
    executions = cp.get_paginator("list_pipeline_executions").paginate(
        pipelineName="api-page-0", PaginationConfig={"PageSize": 1})
    assert sum(len(page["pipelineExecutionSummaries"]) for page in executions) == 4

    assert error_of(cp.list_pipelines, nextToken="garbage")[0] == "InvalidNextTokenException"
    assert error_of(cp.list_pipeline_executions, pipelineName="api-page-0",
                    nextToken=first["nextToken"])[0] == "InvalidNextTokenException"  # ListPipelines' token
    assert error_of(cb.list_projects, nextToken="garbage")[0] == "InvalidInputException"
    assert error_of(cc.list_repositories, nextToken="garbage")[0] == "InvalidContinuationTokenException"
    assert error_of(aws("codedeploy").list_applications, nextToken="garbage")[0] == "InvalidNextTokenException"
    assert error_of(cp.list_pipelines, maxResults=1001)[0] == "ValidationException"

    env = {**os.environ, "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_PAGER": ""}
    cli = [str(Path(sys.executable).with_name("aws")), "--endpoint-url", control_plane.settings.control_url,
           "--output", "json", "codepipeline", "list-pipelines"]
    one = json.loads(subprocess.run([*cli, "--max-items", "1"], env=env, capture_output=True, text=True,
                                    check=True).stdout)
    assert len(one["pipelines"]) == 1 and one["NextToken"]
    rest = json.loads(subprocess.run([*cli, "--starting-token", one["NextToken"]], env=env, capture_output=True,
                                     text=True, check=True).stdout)
    assert [p["name"] for p in one["pipelines"] + rest["pipelines"]] == everything
    small_pages = json.loads(subprocess.run([*cli, "--page-size", "1"], env=env, capture_output=True, text=True,
                                            check=True).stdout)
    assert [p["name"] for p in small_pages["pipelines"]] == everything


# ---------------------------------------------------------------- CodeBuild actions with several inputs and outputs

MULTI_SPEC = """version: 0.2
phases:
  build:
    commands:
      - test "$CODEBUILD_SRC_DIR" = "$(pwd)"
      - cp "$CODEBUILD_SRC_DIR_Tools/tool.txt" a.txt
      - echo "tools at $CODEBUILD_SRC_DIR_Tools" > b.txt
artifacts:
  files: [a.txt]
  secondary-artifacts:
    BuildA:
      files: [a.txt]
    BuildB:
      files: [b.txt]
"""


def _zip(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return out.getvalue()


def _wait_execution(cp, pipeline: str, execution_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = cp.get_pipeline_execution(pipelineName=pipeline, pipelineExecutionId=execution_id)["pipelineExecution"]
        if doc["status"] not in ("InProgress", "Stopping"):
            return doc
        time.sleep(1)
    raise AssertionError(f"execution {execution_id} of {pipeline} did not end")


def test_codebuild_several_inputs_and_outputs(aws, control_plane):
    cp, cb = aws("codepipeline"), aws("codebuild")
    store = control_plane.store
    store.ensure_bucket("api-multi")
    store.put_bytes("api-multi", "app.zip", _zip({"buildspec.yml": MULTI_SPEC, "main.txt": "app"}))
    store.put_bytes("api-multi", "tools.zip", _zip({"tool.txt": "tool-v1"}))
    environment = {"type": "LINUX_CONTAINER", "image": "pipelocal/build:1", "computeType": "BUILD_GENERAL1_SMALL"}
    cb.create_project(name="api-multi", source={"type": "CODEPIPELINE"}, artifacts={"type": "CODEPIPELINE"},
                      environment=environment, serviceRole="r")

    def source(name: str, key: str) -> dict:
        return {"name": name, "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": "api-multi", "S3ObjectKey": key, "PollForSourceChanges": "false"},
                "outputArtifacts": [{"name": name}]}

    def build(name: str, primary: str, outputs: list[str]) -> dict:
        return {"name": name, "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild",
                                               "version": "1"},
                "configuration": {"ProjectName": "api-multi", "PrimarySource": primary},
                "inputArtifacts": [{"name": "App"}, {"name": "Tools"}],
                "outputArtifacts": [{"name": o} for o in outputs]}

    cp.create_pipeline(pipeline={
        "name": "api-multi", "roleArn": "arn:aws:iam::000000000000:role/cp",
        "artifactStore": {"type": "S3", "location": "codepipeline-artifacts-pipelocal"},
        "stages": [{"name": "Source", "actions": [source("App", "app.zip"), source("Tools", "tools.zip")]},
                   {"name": "Build", "actions": [build("Make", "App", ["BuildA", "BuildB"]),
                                                 build("BadOutput", "App", ["BuildC", "BuildD"]),
                                                 build("BadPrimary", "Nope", ["BuildE"])]}]})
    # StartBuild with a secondary source, meanwhile
    cb.create_project(name="api-multi-direct", source={"type": "S3", "location": "api-multi/app.zip",
                                                       "buildspec": "version: 0.2\nphases:\n  build:\n    commands:\n"
                                                                    "      - cat $CODEBUILD_SRC_DIR_tools/tool.txt\n"},
                      secondarySources=[{"type": "S3", "location": "api-multi/tools.zip", "sourceIdentifier": "tools"}],
                      artifacts={"type": "NO_ARTIFACTS"}, environment=environment, serviceRole="r")
    direct = cb.start_build(projectName="api-multi-direct",
                            secondarySourcesVersionOverride=[{"sourceIdentifier": "tools", "sourceVersion": "v1"}])
    assert error_of(cb.start_build, projectName="api-multi-direct", secondarySourcesVersionOverride=[
        {"sourceIdentifier": "nope", "sourceVersion": "v1"}])[0] == "InvalidInputException"
    assert error_of(cb.create_project, name="api-multi-bad", source={"type": "NO_SOURCE"},
                    secondarySources=[{"type": "S3", "location": "api-multi/tools.zip", "sourceIdentifier": "my-tools"}],
                    artifacts={"type": "NO_ARTIFACTS"}, environment=environment, serviceRole="r")[0] \
        == "InvalidInputException"

    execution_id = cp.list_pipeline_executions(pipelineName="api-multi")["pipelineExecutionSummaries"][0][
        "pipelineExecutionId"]
    assert _wait_execution(cp, "api-multi", execution_id)["status"] == "Failed"  # the two bad actions
    actions = {a["actionName"]: a for a in cp.list_action_executions(
        pipelineName="api-multi", filter={"pipelineExecutionId": execution_id})["actionExecutionDetails"]}
    make = actions["Make"]
    assert make["status"] == "Succeeded", make
    outputs = {o["name"]: o["s3location"] for o in make["output"]["outputArtifacts"]}
    assert set(outputs) == {"BuildA", "BuildB"}
    with zipfile.ZipFile(io.BytesIO(store.get_bytes(outputs["BuildA"]["bucket"], outputs["BuildA"]["key"]))) as z:
        assert z.namelist() == ["a.txt"] and z.read("a.txt") == b"tool-v1"
    with zipfile.ZipFile(io.BytesIO(store.get_bytes(outputs["BuildB"]["bucket"], outputs["BuildB"]["key"]))) as z:
        assert z.namelist() == ["b.txt"] and b"/secondary/Tools" in z.read("b.txt")
    built = cb.batch_get_builds(ids=[make["output"]["executionResult"]["externalExecutionId"]])["builds"][0]
    assert [s["sourceIdentifier"] for s in built["secondarySources"]] == ["Tools"]
    assert {a["artifactIdentifier"] for a in built["secondaryArtifacts"]} == {"BuildA", "BuildB"}

    assert actions["BadOutput"]["status"] == "Failed"
    assert "'BuildC'" in actions["BadOutput"]["output"]["executionResult"]["externalExecutionSummary"]
    assert actions["BadPrimary"]["status"] == "Failed"
    assert "'Nope'" in actions["BadPrimary"]["output"]["executionResult"]["externalExecutionSummary"]

    deadline = time.monotonic() + 180
    while not (done := cb.batch_get_builds(ids=[direct["build"]["id"]])["builds"][0])["buildComplete"]:
        assert time.monotonic() < deadline, done
        time.sleep(1)
    assert done["buildStatus"] == "SUCCEEDED", done
    assert done["secondarySources"][0]["sourceIdentifier"] == "tools"
    assert done["secondarySourceVersions"] == [{"sourceIdentifier": "tools", "sourceVersion": "v1"}]
    log = "".join(c["text"] for c in control_plane.client.get(f"/builds/{done['id']}/log")["chunks"])
    assert "tool-v1" in log
