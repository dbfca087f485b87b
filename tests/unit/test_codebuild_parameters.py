"""Parameter Store / Secrets Manager stand-in and how builds resolve references to it."""

from __future__ import annotations

import pytest

from emulator.domain.buildspec import parse_buildspec
from emulator.domain.errors import Conflict, NotFound
from emulator.services.codebuild.build_environment import ReferenceError_, check_variable_list, resolve_variables
from emulator.services.parameters.store import ParameterStore, secret_field
from emulator.state.database import Database


@pytest.fixture
def params(tmp_path):
    return ParameterStore(Database(tmp_path / "s.sqlite3", "111122223333", "eu-west-1"))


def test_parameter_versions_and_overwrite(params):
    assert params.put_parameter("/a/b", "one")["Version"] == 1
    with pytest.raises(Conflict):
        params.put_parameter("/a/b", "two")
    assert params.put_parameter("/a/b", "two", overwrite=True)["Version"] == 2
    got = params.get_parameter("/a/b")
    assert got["Value"] == "two" and got["ARN"] == "arn:aws:ssm:eu-west-1:111122223333:parameter/a/b"


def test_secure_string_needs_decryption(params):
    params.put_parameter("pw", "hunter2", "SecureString")
    assert params.get_parameter("pw")["Value"] != "hunter2"
    assert params.get_parameter("pw", with_decryption=True)["Value"] == "hunter2"


@pytest.mark.parametrize("name,value,type_", [("bad name!", "v", "String"), ("ok", "", "String"), ("ok", "v", "Blob")])
def test_bad_parameters_refused(params, name, value, type_):
    with pytest.raises(ValueError):
        params.put_parameter(name, value, type_)


def test_secret_stages_rotate(params):
    created = params.create_secret("db/creds", "v1")
    params.put_secret_value("db/creds", "v2")
    assert params.get_secret_value("db/creds")["SecretString"] == "v2"
    assert params.get_secret_value("db/creds", version_stage="AWSPREVIOUS")["SecretString"] == "v1"
    assert params.get_secret_value(created["ARN"])["SecretString"] == "v2"
    with pytest.raises(NotFound):
        params.get_secret_value("nope")
    with pytest.raises(Conflict):
        params.create_secret("db/creds", "again")


def test_secret_json_key():
    assert secret_field('{"a": "x", "n": 3}', "a", "s") == "x"
    assert secret_field('{"a": "x", "n": 3}', "n", "s") == "3"
    with pytest.raises(ValueError, match="no key 'zz'"):
        secret_field('{"a": "x"}', "zz", "s")
    with pytest.raises(ValueError, match="not JSON"):
        secret_field("plain", "a", "s")


def test_resolution_precedence_and_masking(params):
    params.put_parameter("/p", "param-value")
    params.create_secret("s", '{"k": "secret-value"}')
    spec = parse_buildspec("version: 0.2\nenv:\n  variables:\n    A: spec\n    B: spec\n    C: spec\n"
                           "  parameter-store:\n    P: /p\n  secrets-manager:\n    S: s:k\n"
                           "phases:\n  build:\n    commands:\n      - x\n")
    project = {"environment": {"environmentVariables": [{"name": "B", "value": "project"},
                                                        {"name": "C", "value": "project"}]}}
    env, secrets = resolve_variables(spec, project, [{"name": "C", "value": "override"}], params)
    assert (env["A"], env["B"], env["C"]) == ("spec", "project", "override")
    assert env["P"] == "param-value" and env["S"] == "secret-value"
    assert sorted(secrets) == ["param-value", "secret-value"]


def test_project_secret_reference_and_missing_one(params):
    params.create_secret("tok", "abc")
    spec = parse_buildspec("version: 0.2\nphases:\n  build:\n    commands:\n      - x\n")
    project = {"environment": {"environmentVariables": [{"name": "T", "value": "tok", "type": "SECRETS_MANAGER"}]}}
    env, secrets = resolve_variables(spec, project, None, params)
    assert env["T"] == "abc" and secrets == ["abc"]
    project["environment"]["environmentVariables"][0]["value"] = "missing"
    with pytest.raises(ReferenceError_, match="missing"):
        resolve_variables(spec, project, None, params)


@pytest.mark.parametrize("variables,match", [
    ([{"name": "CODEBUILD_X", "value": "1"}], "reserved"),
    ([{"name": "X", "value": "1", "type": "VAULT"}], "PLAINTEXT"),
    ([{"value": "1"}], "name"),
    ("X=1", "list"),
])
def test_variable_lists_checked(variables, match):
    with pytest.raises(ValueError, match=match):
        check_variable_list(variables, "environmentVariables")
