"""Several inputs and outputs of a CodeBuild action: secondary source directories and variables,
output artifacts taken from buildspec secondary-artifacts, and the refusals that name the artifact."""

from __future__ import annotations

import io
import zipfile
from types import SimpleNamespace

import pytest

from emulator.domain.buildspec import parse_buildspec
from emulator.domain.errors import SpecError
from emulator.services.codebuild.build_environment import (
    build_variables,
    check_source_identifier,
    secondary_source_dir,
)
from emulator.services.codebuild.builds import SecondarySource, _check_secondary_artifacts, _secondary_trees
from emulator.services.codepipeline.action_providers import ActionContext, CodeBuildAction

SPEC = """version: 0.2
phases:
  build:
    commands: [make]
artifacts:
  files: ['**/*']
  secondary-artifacts:
    BuildA:
      files: [a/*]
    BuildB:
      files: [b/*]
"""


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_each_secondary_source_gets_its_own_directory_and_variable():
    src = "/codebuild/output/src7/src"
    assert secondary_source_dir(src, "Tools") == "/codebuild/output/src7/secondary/Tools"
    request = SimpleNamespace(initiator="x", source_version="", resolved_source_version="", source_repo_url="",
                              env_overrides=None,
                              secondary_sources=[SecondarySource("Tools", b"", {}), SecondarySource("Docs", b"", {})])
    doc = {"id": "p:1", "arn": "arn", "buildNumber": 7, "startTime": 0, "logs": {"streamName": "1"}}
    project = {"environment": {"image": "i"}, "arn": "parn"}
    env = build_variables(doc, project, parse_buildspec(SPEC), src, request, "us-east-1", "0" * 12, user_env={})
    assert env["CODEBUILD_SRC_DIR"] == src
    assert env["CODEBUILD_SRC_DIR_Tools"] == "/codebuild/output/src7/secondary/Tools"
    assert env["CODEBUILD_SRC_DIR_Docs"] == "/codebuild/output/src7/secondary/Docs"


@pytest.mark.parametrize("identifier", ["my-artifact", "", "a" * 128, "dots.not.allowed"])
def test_identifiers_that_cannot_name_a_variable_are_refused(identifier):
    with pytest.raises(ValueError, match="source identifier"):
        check_source_identifier(identifier, "secondarySources[0].sourceIdentifier")


def test_secondary_trees_unzip_into_the_secondary_directory():
    import tarfile

    trees = _secondary_trees([SecondarySource("Tools", zipped({"bin/tool.sh": b"#!/bin/sh\n"}), {})],
                             "/codebuild/output/src1/src")
    names = []
    for tree in trees:
        with tarfile.open(fileobj=io.BytesIO(tree)) as tar:
            names += tar.getnames()
    assert "codebuild/output/src1/secondary/Tools" in names
    assert "codebuild/output/src1/secondary/Tools/bin/tool.sh" in names


def test_every_pipeline_output_needs_a_secondary_artifact_of_its_name():
    spec = parse_buildspec(SPEC)
    _check_secondary_artifacts(spec, {}, "buildspec.yml", {"BuildA": ("b", "k1"), "BuildB": ("b", "k2")})
    with pytest.raises(SpecError, match="'BuildC'") as info:
        _check_secondary_artifacts(spec, {}, "buildspec.yml", {"BuildA": ("b", "k"), "BuildC": ("b", "k")})
    assert "present: BuildA, BuildB" in str(info.value)


def test_secondary_artifacts_outside_a_pipeline_must_be_declared_by_the_project():
    with pytest.raises(SpecError, match="BuildA"):
        _check_secondary_artifacts(parse_buildspec(SPEC), {"secondaryArtifacts": []}, "buildspec.yml", {})


class FakeStore:
    def __init__(self):
        self.objects = {("b", "src"): zipped({"buildspec.yml": SPEC.encode()}), ("b", "tools"): zipped({"t": b"1"})}

    def get_bytes(self, bucket, key):
        return self.objects[(bucket, key)]


class FakeBuilds:
    def __init__(self):
        self.requests = []

    def start_build(self, request):
        self.requests.append(request)
        return {"id": "proj:1"}

    def wait(self, build_id):
        return {"buildStatus": "SUCCEEDED", "buildNumber": 1, "phases": [], "exportedEnvironmentVariables": []}


def context(configuration, inputs, outputs):
    return ActionContext(pipeline_name="p", execution_id="e", action_name="Build",
                         configuration={"ProjectName": "proj", **configuration},
                         input_artifacts={name: ("b", key) for name, key in inputs.items()},
                         output_artifacts=outputs, source_revisions={}, artifact_bucket="artifacts")


def test_the_action_passes_secondary_inputs_and_one_location_per_output():
    builds = FakeBuilds()
    outcome = CodeBuildAction(builds, FakeStore()).run(
        context({"PrimarySource": "Src"}, {"Src": "src", "Tools": "tools"}, ["BuildA", "BuildB"]))
    assert outcome.status == "Succeeded", outcome.error
    request = builds.requests[0]
    assert [s.identifier for s in request.secondary_sources] == ["Tools"]
    assert request.output_location is None
    assert set(request.secondary_output_locations) == {"BuildA", "BuildB"}
    assert outcome.output_artifacts == request.secondary_output_locations


def test_one_output_is_the_primary_artifacts_section():
    builds = FakeBuilds()
    outcome = CodeBuildAction(builds, FakeStore()).run(context({}, {"Src": "src"}, ["Out"]))
    assert outcome.status == "Succeeded"
    assert builds.requests[0].output_location == outcome.output_artifacts["Out"]
    assert builds.requests[0].secondary_output_locations is None


@pytest.mark.parametrize("configuration,inputs,message", [
    ({}, {"Src": "src", "Tools": "tools"}, "PrimarySource is required"),
    ({"PrimarySource": "Nope"}, {"Src": "src", "Tools": "tools"}, "'Nope' is not an input artifact"),
    ({"PrimarySource": "Src"}, {"Src": "src", "my-tools": "tools"}, "'my-tools' cannot be a secondary source"),
])
def test_bad_inputs_fail_the_action_naming_the_artifact(configuration, inputs, message):
    builds = FakeBuilds()
    outcome = CodeBuildAction(builds, FakeStore()).run(context(configuration, inputs, []))
    assert outcome.status == "Failed" and message in outcome.error
    assert builds.requests == []
