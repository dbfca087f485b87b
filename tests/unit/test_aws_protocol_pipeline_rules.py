"""Structure rules CreatePipeline enforces beyond stages and actions: pipeline type, variables,
namespaces and artifact stores, each refused with the key at fault."""

from __future__ import annotations

import copy
import json

import pytest

from emulator.domain.pipeline import InvalidStructure, load_pipeline, validate_pipeline

BASE = {
    "name": "p", "roleArn": "arn:aws:iam::000000000000:role/cp",
    "artifactStore": {"type": "S3", "location": "bucket"},
    "stages": [
        {"name": "Source", "actions": [{
            "name": "Src", "namespace": "SourceVariables",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
            "configuration": {"S3Bucket": "b", "S3ObjectKey": "k"}, "outputArtifacts": [{"name": "Code"}]}]},
        {"name": "Gate", "actions": [{
            "name": "Approve", "timeoutInMinutes": 60,
            "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]},
    ],
}


def variant(**changes) -> dict:
    decl = copy.deepcopy(BASE)
    decl.update(changes)
    return decl


def test_s3_source_and_manual_approval_are_valid():
    assert validate_pipeline(variant())["stages"][1]["actions"][0]["timeoutInMinutes"] == 60
    assert validate_pipeline(variant(pipelineType="V2", executionMode="QUEUED",
                                     variables=[{"name": "release", "defaultValue": "r0"}]))


@pytest.mark.parametrize("decl, key, expected", [
    (variant(executionMode="QUEUED"), "pipeline.executionMode", "requires pipelineType V2"),
    (variant(executionMode="PARALLEL", pipelineType="V1"), "pipeline.executionMode", "requires pipelineType V2"),
    (variant(variables=[{"name": "x"}]), "pipeline.variables", "V2 feature"),
    (variant(pipelineType="V3"), "pipeline.pipelineType", "V1 or V2"),
    (variant(pipelineType="V2", variables=[{"name": "bad name"}]), "pipeline.variables[0].name", "1-128"),
    (variant(pipelineType="V2", variables=[{"name": "x"}, {"name": "x"}]), "pipeline.variables[1].name",
     "declared twice"),
    (variant(pipelineType="V2", variables=[{"name": "x", "defaultValue": ""}]),
     "pipeline.variables[0].defaultValue", "1-1000"),
    (variant(artifactStores={"us-east-1": {"type": "S3", "location": "b"}}), "pipeline.artifactStore",
     "exactly one"),
])
def test_pipeline_level_rules(decl, key, expected):
    with pytest.raises(InvalidStructure) as info:
        validate_pipeline(decl)
    assert info.value.key == key and expected in info.value.expected


def test_missing_artifact_store_is_refused():
    decl = variant()
    del decl["artifactStore"]
    with pytest.raises(InvalidStructure, match="exactly one of artifactStore and artifactStores"):
        validate_pipeline(decl)


@pytest.mark.parametrize("mutate, key, expected", [
    (lambda d: d["stages"][1]["actions"][0].update(namespace="SourceVariables"), "action Approve: namespace",
     "is taken"),
    (lambda d: d["stages"][1]["actions"][0].update(namespace="codepipeline"), "action Approve: namespace",
     "is taken"),
    (lambda d: d["stages"][1]["actions"][0].update(namespace="no spaces"), "action Approve: namespace",
     "1-100 characters"),
    (lambda d: d["stages"][1]["actions"][0].update(timeoutInMinutes=2), "action Approve: timeoutInMinutes",
     "5 to 86400"),
    (lambda d: d["stages"][0]["actions"][0].update(timeoutInMinutes=10), "action Src: timeoutInMinutes",
     "manual approval actions only"),
    (lambda d: d["stages"][0]["actions"][0]["configuration"].pop("S3ObjectKey"),
     "action Src: configuration.S3ObjectKey", "required for S3"),
    (lambda d: d["stages"][1]["actions"][0].update(inputArtifacts=[{"name": "Code"}]),
     "action Approve: inputArtifacts", "0-0 input artifacts for Manual"),
])
def test_action_rules_name_stage_and_action(mutate, key, expected):
    decl = variant()
    mutate(decl)
    with pytest.raises(InvalidStructure) as info:
        validate_pipeline(decl)
    assert key in info.value.key and expected in info.value.expected


def test_errors_from_a_file_carry_the_line():
    decl = variant()
    decl["stages"][1]["actions"][0]["namespace"] = "SourceVariables"
    text = json.dumps({"pipeline": decl}, indent=1)
    with pytest.raises(InvalidStructure) as info:
        load_pipeline(text, "p.json")
    line = next(i for i, l in enumerate(text.splitlines(), 1) if '"namespace": "SourceVariables"' in l and i > 15)
    assert info.value.line == line and str(info.value).startswith(f"p.json:{line}:")


# ---------------------------------------------------------------- V2 triggers

def codecommit_pipeline(name: str, triggers: list | None = None) -> dict:
    decl = variant(name=name, pipelineType="V2")
    decl["stages"][0]["actions"][0] = {
        "name": "Src", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
        "configuration": {"RepositoryName": "repo", "BranchName": "main"}, "outputArtifacts": [{"name": "Code"}]}
    if triggers is not None:
        decl["triggers"] = triggers
    return decl


def trigger(**push) -> list:
    return [{"providerType": "CodeStarSourceConnection",
             "gitConfiguration": {"sourceActionName": "Src", "push": [push]}}]


@pytest.mark.parametrize("triggers, key, expected", [
    ([{"providerType": "CodeCommit", "gitConfiguration": {"sourceActionName": "Src"}}],
     "pipeline.triggers[0].providerType", "CodeStarSourceConnection"),
    ([{"providerType": "CodeStarSourceConnection", "gitConfiguration": {"sourceActionName": "Nope"}}],
     "pipeline.triggers[0].gitConfiguration.sourceActionName", "Src"),
    ([{"providerType": "CodeStarSourceConnection",
       "gitConfiguration": {"sourceActionName": "Src", "push": [{}, {}, {}, {}]}}],
     "pipeline.triggers[0].gitConfiguration.push", "1-3 filters"),
    (trigger(branches={"includes": [f"b{i}" for i in range(9)]}),
     "pipeline.triggers[0].gitConfiguration.push[0].branches.includes", "1-8 glob patterns"),
])
def test_trigger_rules(triggers, key, expected):
    with pytest.raises(InvalidStructure) as info:
        validate_pipeline(codecommit_pipeline("p", triggers))
    assert info.value.key == key and expected in info.value.expected


def test_pushes_start_what_the_trigger_filters_allow(tmp_path):
    from emulator.services.codepipeline.pipelines import Pipelines
    from emulator.state.database import Database

    pipelines = Pipelines(Database(tmp_path / "db.sqlite", "000000000000", "us-east-1"))
    pipelines.create(codecommit_pipeline("plain"))
    pipelines.create(codecommit_pipeline("releases", trigger(branches={"includes": ["release/*"],
                                                                        "excludes": ["release/old*"]})))
    pipelines.create(codecommit_pipeline("docs", trigger(filePaths={"includes": ["docs/**"]})))
    asked = []

    def files(paths):
        return lambda: asked.append(1) or paths

    def started(branch, changed):
        return sorted(p for p, _ in pipelines.watching("repo", branch, changed))

    assert started("main", files(["src/app.js"])) == ["plain"]
    assert started("main", files(["docs/guide.md"])) == ["docs", "plain"]
    assert started("release/1.2", files(["src/app.js"])) == ["releases"]
    assert started("release/old-1", files(["src/app.js"])) == []
    assert started("feature", files(["docs/x.md"])) == []
    assert pipelines.watching("other-repo", "main", files(["docs/x.md"])) == []
    assert asked  # file paths were read only when a filePaths filter needed them


def test_tag_pushes_start_pipelines_whose_push_filters_include_the_tag(tmp_path):
    from emulator.services.codepipeline.pipelines import Pipelines
    from emulator.state.database import Database

    pipelines = Pipelines(Database(tmp_path / "db.sqlite", "000000000000", "us-east-1"))
    pipelines.create(codecommit_pipeline("plain"))
    pipelines.create(codecommit_pipeline("releases", trigger(tags={"includes": ["v*"], "excludes": ["v*-beta"]})))
    pipelines.create(codecommit_pipeline("branches", trigger(branches={"includes": ["main"]})))

    def started(tag):
        return sorted(p for p, _ in pipelines.watching_tag("repo", tag))

    assert started("v1.2") == ["releases"]
    assert started("v2-beta") == []
    assert started("nightly") == []
    assert pipelines.watching_tag("other-repo", "v1.2") == []
    assert sorted(p for p, _ in pipelines.watching("repo", "main", [])) == ["branches", "plain"]  # not on branches


def test_tags_of_a_repository_are_peeled_to_their_commits(tmp_path):
    import subprocess

    from emulator.services.codecommit.repositories import Repositories
    from emulator.state.database import Database

    repos = Repositories(Database(tmp_path / "db.sqlite", "000000000000", "us-east-1"), tmp_path / "repos",
                         "http://127.0.0.1:1")
    repos.create("r")
    work = tmp_path / "w"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    git = ["git", "-C", str(work), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "one"], check=True)
    subprocess.run([*git, "tag", "light"], check=True)
    subprocess.run([*git, "tag", "-a", "annotated", "-m", "release"], check=True)
    subprocess.run([*git, "push", "-q", str(repos.path("r")), "HEAD:refs/heads/main", "--tags"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    assert repos.tags("r") == {"annotated": head, "light": head}


# ---------------------------------------------------------------- stage onFailure

@pytest.mark.parametrize("stage_index, on_failure, changes, key, expected", [
    (1, {"result": "ROLLBACK"}, {}, "stage Gate: onFailure", "V2 feature"),
    (1, {"result": "SKIP"}, {"pipelineType": "V2"}, "stage Gate: onFailure.result", "ROLLBACK, RETRY or FAIL"),
    (0, {"result": "ROLLBACK"}, {"pipelineType": "V2"}, "stage Source: onFailure.result", "source stage"),
    (1, {"result": "ROLLBACK"}, {"pipelineType": "V2", "executionMode": "PARALLEL"}, "stage Gate: onFailure.result",
     "PARALLEL"),
    (1, {"result": "RETRY", "retryConfiguration": {"retryMode": "SOME"}}, {"pipelineType": "V2"},
     "stage Gate: onFailure.retryConfiguration.retryMode", "FAILED_ACTIONS or ALL_ACTIONS"),
])
def test_on_failure_rules(stage_index, on_failure, changes, key, expected):
    decl = variant(**changes)
    decl["stages"][stage_index]["onFailure"] = on_failure
    with pytest.raises(InvalidStructure) as info:
        validate_pipeline(decl)
    assert info.value.key == key and expected in info.value.expected


def test_on_failure_retry_and_rollback_are_valid_on_v2():
    for result in ("RETRY", "ROLLBACK"):
        decl = variant(pipelineType="V2")
        decl["stages"][1]["onFailure"] = {"result": result}
        assert validate_pipeline(decl)["stages"][1]["onFailure"] == {"result": result}
