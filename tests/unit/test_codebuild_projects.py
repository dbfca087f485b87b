"""Projects: defaults, checks, update."""

from __future__ import annotations

import pytest

from emulator.domain.errors import Conflict, NotFound
from emulator.services.codebuild.projects import Projects
from emulator.state.database import Database


@pytest.fixture
def projects(tmp_path):
    return Projects(Database(tmp_path / "s.sqlite3", "111122223333", "us-east-1"))


def test_defaults_and_arn(projects):
    p = projects.create({"name": "app-build"})
    assert p["environment"]["image"] == "pipelocal/build:1" and p["timeoutInMinutes"] == 60
    assert p["arn"] == "arn:aws:codebuild:us-east-1:111122223333:project/app-build"
    with pytest.raises(Conflict):
        projects.create({"name": "app-build"})


@pytest.mark.parametrize("project,match", [
    ({"name": "x y"}, "name"),
    ({"name": "ok", "environment": {"computeType": "HUGE"}}, "computeType"),
    ({"name": "ok", "timeoutInMinutes": 2}, "timeoutInMinutes"),
    ({"name": "ok", "environment": {"environmentVariables": [{"name": "CODEBUILD_A", "value": "1"}]}}, "CODEBUILD_"),
    ({"name": "ok", "cache": {"type": "S3"}}, "location"),
])
def test_bad_projects_refused(projects, project, match):
    with pytest.raises(ValueError, match=match):
        projects.create(project)


def test_update_merges_environment_and_checks(projects):
    projects.create({"name": "pp", "environment": {"computeType": "BUILD_GENERAL1_SMALL"}})
    updated = projects.update("pp", {"environment": {"privilegedMode": True}, "timeoutInMinutes": 30})
    assert updated["environment"]["privilegedMode"] is True and updated["environment"]["image"] == "pipelocal/build:1"
    assert projects.get("pp")["timeoutInMinutes"] == 30
    with pytest.raises(ValueError):
        projects.update("pp", {"environment": {"computeType": "NOPE"}})
    assert projects.get("pp")["environment"]["computeType"] == "BUILD_GENERAL1_SMALL"
    with pytest.raises(NotFound):
        projects.update("missing", {})
