"""Which instances a deployment group selects: EC2 tag filters, tag sets, names."""

from __future__ import annotations

import pytest

from emulator.domain.errors import NotFound
from emulator.services.codedeploy.fleet import KIND, Fleet
from emulator.state.database import Database

TAGS = {
    "i-a": {"Name": "web-1", "Env": "prod", "Role": "web"},
    "i-b": {"Name": "web-2", "Env": "prod", "Role": "db"},
    "i-c": {"Name": "web-3", "Env": "test", "Role": "web"},
}


@pytest.fixture
def fleet(tmp_path):
    db = Database(tmp_path / "s.db", "000000000000", "us-east-1")
    for iid, tags in TAGS.items():
        db.put(KIND, iid, {"instanceId": iid, "name": tags["Name"], "tags": tags, "state": "running"})
    db.put(KIND, "i-d", {"instanceId": "i-d", "name": "web-4", "tags": {"Env": "prod"}, "state": "terminated"})
    return Fleet(db, runtime=None, control_url_for_containers="", container_env={})


def ids(found: list[dict]) -> list[str]:
    return sorted(d["instanceId"] for d in found)


def test_filters_match_any_and_only_running_instances(fleet):
    assert ids(fleet.matching([{"Key": "Env", "Value": "prod", "Type": "KEY_AND_VALUE"}])) == ["i-a", "i-b"]
    assert ids(fleet.matching([{"Key": "Role", "Type": "KEY_ONLY"}])) == ["i-a", "i-b", "i-c"]
    assert ids(fleet.matching([{"Value": "test", "Type": "VALUE_ONLY"},
                               {"Key": "Role", "Value": "db"}])) == ["i-b", "i-c"]
    assert fleet.matching([]) == []


def test_tag_set_needs_a_match_in_every_group(fleet):
    tag_set = [[{"Key": "Env", "Value": "prod"}], [{"Key": "Role", "Value": "web"}, {"Value": "nothing"}]]
    assert ids(fleet.matching([], tag_set)) == ["i-a"]
    assert ids(fleet.matching([], [[{"Key": "Env", "Value": "prod"}], [{"Key": "Role", "Value": "cache"}]])) == []


def test_named_instances_by_name_or_id_and_refusals(fleet):
    assert ids(fleet.named(["web-1", "i-c", "web-1"])) == ["i-a", "i-c"]
    with pytest.raises(NotFound):
        fleet.named(["web-9"])
    with pytest.raises(ValueError, match="terminated"):
        fleet.named(["web-4"])
