"""Pipeline declarations validated the way CodePipeline validates them (aws-semantics.md section 4.1)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Callable

import pytest

from emulator.domain.errors import SpecError
from emulator.domain.pipeline import InvalidStructure, load_pipeline, stage_groups, validate_pipeline

DEMO = Path(__file__).resolve().parents[2] / "emulator" / "demo_app" / "pipeline.json"
DEMO_TEXT = DEMO.read_text()


def baseline() -> dict:
    """The inner declaration of the demo pipeline (a fresh copy every call)."""
    return copy.deepcopy(json.loads(DEMO_TEXT)["pipeline"])


def action(category: str, provider: str, name: str, run_order: int = 1, inputs=(), outputs=(), config=None) -> dict:
    defaults = {
        "CodeCommit": {"RepositoryName": "r", "BranchName": "main"},
        "CodeBuild": {"ProjectName": "p"},
        "CodeDeploy": {"ApplicationName": "a", "DeploymentGroupName": "g"},
    }
    return {
        "name": name,
        "actionTypeId": {"category": category, "owner": "AWS", "provider": provider, "version": "1"},
        "configuration": dict(defaults[provider]) if config is None else config,
        "inputArtifacts": [{"name": n} for n in inputs],
        "outputArtifacts": [{"name": n} for n in outputs],
        "runOrder": run_order,
    }


def build_action(name="Extra", run_order=1, inputs=("SourceArtifact",), outputs=()) -> dict:
    return action("Build", "CodeBuild", name, run_order, inputs, outputs)


# ---------------------------------------------------------------- the valid baseline


def test_demo_pipeline_is_valid_with_and_without_the_wrapper():
    wrapped = load_pipeline(DEMO_TEXT, "pipeline.json")
    assert wrapped["name"] == "demo-pipeline"
    assert [s["name"] for s in wrapped["stages"]] == ["Source", "Build", "Deploy"]
    inner = load_pipeline(json.dumps(baseline()), "pipeline.json")
    assert inner == wrapped
    # validate_pipeline on plain dicts gives the same plain JSON-able declaration
    assert validate_pipeline(baseline()) == wrapped
    json.dumps(wrapped)  # no line bookkeeping left


def test_validated_declaration_is_plain_json_types():
    decl = load_pipeline(DEMO_TEXT, "pipeline.json")
    assert type(decl) is dict
    assert type(decl["stages"]) is list
    assert type(decl["stages"][1]["actions"][0]) is dict


def test_yaml_declaration_is_accepted():
    text = """\
pipeline:
  name: yaml-pipe
  roleArn: arn:aws:iam::000000000000:role/x
  artifactStore: {type: S3, location: b}
  stages:
    - name: Source
      actions:
        - name: Src
          actionTypeId: {category: Source, owner: AWS, provider: CodeCommit, version: "1"}
          configuration: {RepositoryName: r, BranchName: main}
          outputArtifacts: [{name: Src}]
    - name: Build
      actions:
        - name: B
          actionTypeId: {category: Build, owner: AWS, provider: CodeBuild, version: "1"}
          configuration: {ProjectName: p}
          inputArtifacts: [{name: Src}]
"""
    decl = load_pipeline(text, "pipeline.yml")
    assert decl["name"] == "yaml-pipe"
    assert decl["stages"][1]["actions"][0]["inputArtifacts"] == [{"name": "Src"}]


# ---------------------------------------------------------------- table of valid variations


def _mut_same_action_name_other_stage(d):
    d["stages"][2]["actions"][0]["name"] = "Build"  # "Build" is also an action in stage Build


def _mut_runorder_gaps(d):
    d["stages"][1]["actions"][1]["runOrder"] = 999  # runOrder need not be contiguous


def _mut_same_stage_lower_runorder(d):
    d["stages"][1]["actions"].append(build_action("Test", 1000 - 1, inputs=("DeployBundle",)))


def _mut_five_inputs(d):
    outs = [f"O{i}" for i in range(5)]
    d["stages"][1]["actions"][0]["outputArtifacts"] = [{"name": n} for n in outs]
    d["stages"][2]["actions"].append(build_action("Multi", 1, inputs=outs))
    d["stages"][2]["actions"][-1]["actionTypeId"]["category"] = "Test"


def _mut_execution_modes(mode):
    def mutate(d):
        d["executionMode"] = mode
        d["pipelineType"] = "V2"
    return mutate


def _mut_known_top_keys(d):
    d.update(version=3, pipelineType="V2", variables=[{"name": "x", "defaultValue": "1"}], triggers=[])


VALID = {
    "same action name in different stages": _mut_same_action_name_other_stage,
    "runOrder gaps": _mut_runorder_gaps,
    "input from the same stage, lower runOrder": _mut_same_stage_lower_runorder,
    "CodeBuild with five inputs": _mut_five_inputs,
    "executionMode QUEUED": _mut_execution_modes("QUEUED"),
    "executionMode PARALLEL": _mut_execution_modes("PARALLEL"),
    "executionMode SUPERSEDED": _mut_execution_modes("SUPERSEDED"),
    "all known top-level keys": _mut_known_top_keys,
    "runOrder omitted (defaults to 1)": lambda d: d["stages"][2]["actions"][0].pop("runOrder"),
}


@pytest.mark.parametrize("mutate", list(VALID.values()), ids=list(VALID))
def test_valid_variations_are_accepted(mutate: Callable[[dict], None]):
    decl = baseline()
    mutate(decl)
    assert validate_pipeline(decl)["stages"] == decl["stages"]


def test_input_may_come_from_lower_runorder_listed_after_the_consumer():
    """runOrder, not the position in the list, decides what is earlier."""
    decl = baseline()
    build, package = decl["stages"][1]["actions"]
    build["inputArtifacts"] = [{"name": "DeployBundle"}]
    build["runOrder"] = 2
    package["runOrder"] = 1
    validate_pipeline(decl)


# ---------------------------------------------------------------- table of refusals


def _set(path, value):
    def mutate(d):
        target = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def _delete(path):
    def mutate(d):
        target = d
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return mutate


def _append_action(stage_index, new_action):
    def mutate(d):
        d["stages"][stage_index]["actions"].append(copy.deepcopy(new_action))
    return mutate


def _only_one_stage(d):
    d["stages"] = d["stages"][:1]


def _duplicate_stage_name(d):
    d["stages"][2]["name"] = "Build"


def _source_in_second_stage(d):
    d["stages"][1]["actions"].append(action("Source", "CodeCommit", "Src2", outputs=("Src2Out",)))


def _build_in_first_stage(d):
    d["stages"][0]["actions"].append(build_action("EarlyBuild"))


def _duplicate_output_other_stage(d):
    d["stages"][1]["actions"][0]["outputArtifacts"] = [{"name": "SourceArtifact"}]


def _duplicate_output_same_stage(d):
    d["stages"][1]["actions"][0]["outputArtifacts"] = [{"name": "DeployBundle"}]


def _duplicate_output_same_action(d):
    d["stages"][1]["actions"][1]["outputArtifacts"] = [{"name": "Twice"}, {"name": "Twice"}]


def _input_same_runorder(d):
    d["stages"][1]["actions"][1]["runOrder"] = 1
    d["stages"][1]["actions"].append(build_action("Test", 1, inputs=("DeployBundle",)))


def _input_from_later_stage(d):
    d["stages"][1]["actions"][0]["inputArtifacts"] = [{"name": "LaterOut"}]
    d["stages"][2]["actions"].append(build_action("Late", 1, outputs=("LaterOut",)))
    d["stages"][2]["actions"][-1]["actionTypeId"]["category"] = "Test"


def _input_from_higher_runorder(d):
    d["stages"][1]["actions"][0]["inputArtifacts"] = [{"name": "DeployBundle"}]


def _unknown_input(d):
    d["stages"][2]["actions"][0]["inputArtifacts"] = [{"name": "Nowhere"}]


def _codedeploy_two_inputs(d):
    d["stages"][2]["actions"][0]["inputArtifacts"] = [{"name": "DeployBundle"}, {"name": "SourceArtifact"}]


def _codebuild_six_inputs(d):
    outs = [f"O{i}" for i in range(6)]
    d["stages"][1]["actions"][0]["outputArtifacts"] = [{"name": n} for n in outs[:5]]
    d["stages"][1]["actions"][1]["outputArtifacts"] = [{"name": "DeployBundle"}, {"name": "O5"}]
    d["stages"][2]["actions"].append(action("Test", "CodeBuild", "Six", 1, inputs=outs))


def _codebuild_six_outputs(d):
    d["stages"][1]["actions"][1]["outputArtifacts"] = [{"name": f"Out{i}"} for i in range(6)]


REFUSED = {
    # name: (mutation, substring of error key, substring of the message)
    "only one stage": (_only_one_stage, "pipeline.stages", "at least two stages"),
    "no stages": (_delete(["stages"]), "pipeline.stages", "at least two stages"),
    "unknown top-level key": (_set(["colour"], "blue"), "pipeline.colour", "one of"),
    "executionMode lowercase": (_set(["executionMode"], "queued"), "pipeline.executionMode", "QUEUED"),
    "executionMode unknown": (_set(["executionMode"], "SERIAL"), "pipeline.executionMode", "PARALLEL"),
    "pipeline name with space": (_set(["name"], "my pipeline"), "pipeline.name", "1-100"),
    "duplicate stage names": (_duplicate_stage_name, "stages[2].name", "'Build' is used twice"),
    "duplicate action names in a stage": (
        _set(["stages", 1, "actions", 1, "name"], "Build"), "stage Build, action Build: name", "unique"),
    "source action outside the first stage": (
        _source_in_second_stage, "stage Build, action Src2: actionTypeId.category", "first stage"),
    "non-source action in the first stage": (
        _build_in_first_stage, "stage Source, action EarlyBuild: actionTypeId.category", "only source actions"),
    "output used in an earlier stage": (
        _duplicate_output_other_stage, "stage Build, action Build: outputArtifacts", "'SourceArtifact' is used twice"),
    "output used in the same stage": (
        _duplicate_output_same_stage, "stage Build, action Package: outputArtifacts", "'DeployBundle' is used twice"),
    "output named twice by one action": (
        _duplicate_output_same_action, "stage Build, action Package: outputArtifacts", "'Twice' is used twice"),
    "input from same runOrder": (_input_same_runorder, "stage Build, action Test: inputArtifacts", "'DeployBundle'"),
    "input from higher runOrder": (
        _input_from_higher_runorder, "stage Build, action Build: inputArtifacts", "'DeployBundle'"),
    "input from a later stage": (_input_from_later_stage, "stage Build, action Build: inputArtifacts", "'LaterOut'"),
    "input nobody produces": (_unknown_input, "stage Deploy, action Deploy: inputArtifacts", "'Nowhere'"),
    "runOrder 0": (_set(["stages", 2, "actions", 0, "runOrder"], 0), "stage Deploy, action Deploy: runOrder", "1 to 999"),
    "runOrder 1000": (_set(["stages", 2, "actions", 0, "runOrder"], 1000), "action Deploy: runOrder", "1 to 999"),
    "runOrder negative": (_set(["stages", 2, "actions", 0, "runOrder"], -1), "action Deploy: runOrder", "1 to 999"),
    "runOrder string": (_set(["stages", 2, "actions", 0, "runOrder"], "1"), "action Deploy: runOrder", "integer"),
    "runOrder float": (_set(["stages", 2, "actions", 0, "runOrder"], 1.5), "action Deploy: runOrder", "integer"),
    "runOrder bool": (_set(["stages", 2, "actions", 0, "runOrder"], True), "action Deploy: runOrder", "integer"),
    "CodeCommit without RepositoryName": (
        _delete(["stages", 0, "actions", 0, "configuration", "RepositoryName"]),
        "stage Source, action Source: configuration.RepositoryName", "CodeCommit"),
    "CodeCommit without BranchName": (
        _delete(["stages", 0, "actions", 0, "configuration", "BranchName"]),
        "stage Source, action Source: configuration.BranchName", "CodeCommit"),
    "CodeBuild without ProjectName": (
        _delete(["stages", 1, "actions", 1, "configuration", "ProjectName"]),
        "stage Build, action Package: configuration.ProjectName", "CodeBuild"),
    "CodeBuild without configuration": (
        _delete(["stages", 1, "actions", 0, "configuration"]),
        "stage Build, action Build: configuration.ProjectName", "CodeBuild"),
    "CodeDeploy without ApplicationName": (
        _delete(["stages", 2, "actions", 0, "configuration", "ApplicationName"]),
        "stage Deploy, action Deploy: configuration.ApplicationName", "CodeDeploy"),
    "CodeDeploy without DeploymentGroupName": (
        _delete(["stages", 2, "actions", 0, "configuration", "DeploymentGroupName"]),
        "stage Deploy, action Deploy: configuration.DeploymentGroupName", "CodeDeploy"),
    "CodeCommit with an input": (
        _set(["stages", 0, "actions", 0, "inputArtifacts"], [{"name": "X"}]),
        "stage Source, action Source: inputArtifacts", "0-0"),
    "CodeCommit without output": (
        _set(["stages", 0, "actions", 0, "outputArtifacts"], []),
        "stage Source, action Source: outputArtifacts", "1-1"),
    "CodeCommit with two outputs": (
        _set(["stages", 0, "actions", 0, "outputArtifacts"], [{"name": "A"}, {"name": "B"}]),
        "stage Source, action Source: outputArtifacts", "1-1"),
    "CodeBuild without input": (
        _set(["stages", 1, "actions", 0, "inputArtifacts"], []), "stage Build, action Build: inputArtifacts", "1-5"),
    "CodeBuild with six inputs": (_codebuild_six_inputs, "stage Deploy, action Six: inputArtifacts", "1-5"),
    "CodeBuild with six outputs": (_codebuild_six_outputs, "stage Build, action Package: outputArtifacts", "0-5"),
    "CodeDeploy without input": (
        _set(["stages", 2, "actions", 0, "inputArtifacts"], []), "stage Deploy, action Deploy: inputArtifacts", "1-1"),
    "CodeDeploy with two inputs": (_codedeploy_two_inputs, "stage Deploy, action Deploy: inputArtifacts", "1-1"),
    "CodeDeploy with an output": (
        _set(["stages", 2, "actions", 0, "outputArtifacts"], [{"name": "Out"}]),
        "stage Deploy, action Deploy: outputArtifacts", "0-0"),
    "CodeBuild in the Deploy category": (
        _set(["stages", 1, "actions", 0, "actionTypeId", "category"], "Deploy"),
        "stage Build, action Build: actionTypeId.category", "Build or Test"),
    "unknown category": (
        _set(["stages", 1, "actions", 0, "actionTypeId", "category"], "Compile"),
        "stage Build, action Build: actionTypeId.category", "one of"),
    "unsupported provider": (
        _set(["stages", 1, "actions", 0, "actionTypeId", "provider"], "Jenkins"),
        "stage Build, action Build: actionTypeId.provider", "supported provider"),
    "artifact name with a dot": (
        _set(["stages", 1, "actions", 1, "outputArtifacts"], [{"name": "bad.name"}]),
        "stage Build, action Package: outputArtifacts", "[a-zA-Z0-9_-]"),
    "stage without actions": (_set(["stages", 2, "actions"], []), "stage Deploy: actions", "at least one action"),
}


@pytest.mark.parametrize("mutate,key,message", list(REFUSED.values()), ids=list(REFUSED))
def test_refusals_name_what_is_at_fault(mutate, key, message):
    decl = baseline()
    mutate(decl)
    with pytest.raises(InvalidStructure) as info:
        validate_pipeline(decl, "pipe.json")
    err = info.value
    assert isinstance(err, SpecError)
    assert key in err.key, f"{err.key!r} should name {key!r}"
    assert message in err.expected, f"{err.expected!r} should mention {message!r}"
    assert err.file == "pipe.json"
    assert str(err).startswith("pipe.json")


@pytest.mark.parametrize("mutate,key,message", list(REFUSED.values()), ids=list(REFUSED))
def test_refusals_from_text_carry_the_line_number(mutate, key, message):
    decl = baseline()
    mutate(decl)
    text = json.dumps({"pipeline": decl}, indent=2)
    with pytest.raises(InvalidStructure) as info:
        load_pipeline(text, "pipe.json")
    err = info.value
    assert key in err.key
    assert isinstance(err.line, int) and 1 <= err.line <= text.count("\n") + 1
    assert f"pipe.json:{err.line}:" in str(err)


def _line_containing(text: str, needle: str, after: str | None = None) -> int:
    lines = text.splitlines()
    start = 0
    if after is not None:
        start = next(i for i, line in enumerate(lines) if after in line)
    for i in range(start, len(lines)):
        if needle in lines[i]:
            return i + 1
    raise AssertionError(f"{needle!r} not in text")


def test_line_number_points_at_the_offending_key():
    decl = baseline()
    decl["stages"][2]["actions"][0]["runOrder"] = 0
    text = json.dumps({"pipeline": decl}, indent=2)
    with pytest.raises(InvalidStructure) as info:
        load_pipeline(text, "p.json")
    # the runOrder key of the Deploy action (the last runOrder in the file)
    assert info.value.line == _line_containing(text, '"runOrder": 0')


def test_line_number_of_bad_input_artifact_and_unknown_key():
    decl = baseline()
    decl["stages"][2]["actions"][0]["inputArtifacts"] = [{"name": "Nowhere"}]
    text = json.dumps({"pipeline": decl}, indent=2)
    with pytest.raises(InvalidStructure) as info:
        load_pipeline(text, "p.json")
    assert info.value.line == _line_containing(text, '"inputArtifacts"', after='"name": "Deploy"')
    assert "'Nowhere'" in str(info.value)

    decl = baseline()
    decl["surprise"] = 1
    text = json.dumps({"pipeline": decl}, indent=2)
    with pytest.raises(InvalidStructure) as info:
        load_pipeline(text, "p.json")
    assert info.value.line == _line_containing(text, '"surprise"')


def test_duplicate_stage_line_is_the_second_stage_name():
    decl = baseline()
    decl["stages"][2]["name"] = "Build"
    text = json.dumps({"pipeline": decl}, indent=2)
    with pytest.raises(InvalidStructure) as info:
        load_pipeline(text, "p.json")
    build_lines = [i + 1 for i, line in enumerate(text.splitlines()) if line.strip() == '"name": "Build",']
    # stage Build's name, action Build's name, then the duplicated stage name
    assert info.value.line == build_lines[-1]


def test_yaml_syntax_error_is_a_spec_error_with_line():
    with pytest.raises(SpecError) as info:
        load_pipeline('{"pipeline": {\n  "name": "x",\n  "stages": [\n}', "bad.json")
    assert info.value.line is not None and info.value.line >= 3


def test_not_a_mapping_is_refused():
    with pytest.raises(InvalidStructure):
        validate_pipeline(["not", "a", "mapping"])
    with pytest.raises(InvalidStructure):
        load_pipeline("just text", "p.yml")


# ---------------------------------------------------------------- stage_groups


def test_stage_groups_orders_by_runorder_and_groups_equal_runorders():
    stage = {"name": "S", "actions": [
        {"name": "c", "runOrder": 3}, {"name": "a"}, {"name": "b", "runOrder": 1},
        {"name": "d", "runOrder": 3}, {"name": "e", "runOrder": 2},
    ]}
    groups = stage_groups(stage)
    assert [[a["name"] for a in g] for g in groups] == [["a", "b"], ["e"], ["c", "d"]]


def test_stage_groups_of_demo_build_stage():
    decl = load_pipeline(DEMO_TEXT)
    assert [[a["name"] for a in g] for g in stage_groups(decl["stages"][1])] == [["Build"], ["Package"]]
