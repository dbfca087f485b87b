"""CodePipeline `#{namespace.key}` variables (aws-semantics.md section 4.1, Variables)."""

from __future__ import annotations

import pytest

from emulator.domain.pipeline_variables import UnresolvedVariable, resolve

NAMESPACES = {
    "SourceVariables": {"CommitId": "abc123", "BranchName": "main"},
    "codepipeline": {"PipelineExecutionId": "exec-1"},
    "variables": {"x": "42", "env": "prod"},
    "Build-Vars_1": {"IMAGE@TAG": "v7"},
}


@pytest.mark.parametrize("value,expected", [
    ("#{SourceVariables.CommitId}", "abc123"),
    ("#{codepipeline.PipelineExecutionId}", "exec-1"),
    ("#{variables.x}", "42"),
    ("#{Build-Vars_1.IMAGE@TAG}", "v7"),
    ("commit-#{SourceVariables.CommitId}-on-#{SourceVariables.BranchName}", "commit-abc123-on-main"),
    ("#{variables.env}/#{codepipeline.PipelineExecutionId}/#{variables.env}", "prod/exec-1/prod"),
    ("no references here", "no references here"),
    ("#{not a reference}", "#{not a reference}"),
    ("${SourceVariables.CommitId}", "${SourceVariables.CommitId}"),
    ("", ""),
])
def test_references_are_substituted(value, expected):
    assert resolve({"Key": value}, NAMESPACES) == {"Key": expected}


def test_every_key_is_resolved_and_input_is_not_mutated():
    config = {"A": "#{variables.x}", "B": "#{SourceVariables.CommitId}", "C": "plain"}
    before = dict(config)
    assert resolve(config, NAMESPACES) == {"A": "42", "B": "abc123", "C": "plain"}
    assert config == before


def test_environment_variables_json_string_is_resolved_inside():
    config = {"EnvironmentVariables": '[{"name":"Commit_ID","value":"#{SourceVariables.CommitId}","type":"PLAINTEXT"}]'}
    out = resolve(config, NAMESPACES)
    assert out["EnvironmentVariables"] == '[{"name":"Commit_ID","value":"abc123","type":"PLAINTEXT"}]'


def test_non_string_values_are_untouched():
    nested = {"k": "#{variables.x}"}
    config = {"Number": 3, "Flag": True, "Nothing": None, "Nested": nested}
    out = resolve(config, NAMESPACES)
    assert out == config
    assert out["Nested"] is nested


def test_non_string_variable_values_are_stringified():
    assert resolve({"K": "n=#{variables.n}"}, {"variables": {"n": 5}}) == {"K": "n=5"}


def test_unknown_namespace_is_an_error_naming_it():
    with pytest.raises(UnresolvedVariable, match="BuildVariables") as info:
        resolve({"K": "#{BuildVariables.IMAGE}"}, NAMESPACES)
    assert "#{BuildVariables.IMAGE}" in str(info.value)


def test_unknown_key_is_an_error_naming_it():
    with pytest.raises(UnresolvedVariable) as info:
        resolve({"K": "ok #{variables.x} then #{SourceVariables.AuthorDate}"}, NAMESPACES)
    assert "#{SourceVariables.AuthorDate}" in str(info.value)
    assert "SourceVariables" in str(info.value)


def test_namespaces_are_case_sensitive():
    with pytest.raises(UnresolvedVariable):
        resolve({"K": "#{sourcevariables.CommitId}"}, NAMESPACES)


def test_empty_namespaces():
    assert resolve({"K": "v"}, {}) == {"K": "v"}
    with pytest.raises(UnresolvedVariable):
        resolve({"K": "#{variables.x}"}, {})
