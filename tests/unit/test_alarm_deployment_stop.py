"""DEPLOYMENT_STOP_ON_ALARM: a group's alarm in ALARM during a deployment or its bake time stops it
(Stopped, ALARM_ACTIVE) and, with auto rollback, redeploys the last good revision."""

from __future__ import annotations

import threading
import time

from emulator.services.codedeploy.deployments import KIND
from tests.unit.test_deployment_rollout import Env, make_bundle

ROLLBACK = {"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]}
ALARMS = {"enabled": True, "alarms": [{"name": "errors"}]}


class Monitor:
    """Reports ALARM once `fire` is set; bakes for `bake` seconds."""

    def __init__(self, bake: float = 0.0):
        self.fire = threading.Event()
        self.bake = bake
        self.groups: list[str] = []

    def alarms_in_alarm(self, group: dict) -> list[str]:
        self.groups.append(group["deploymentGroupName"])
        names = [a["name"] for a in group["alarmConfiguration"]["alarms"]]
        return names if self.fire.is_set() and group["alarmConfiguration"]["enabled"] else []

    def bake_time(self, group: dict) -> float:
        return self.bake


def env_with(tmp_path, monitor: Monitor, rollback=ROLLBACK) -> tuple[Env, str]:
    env = Env(tmp_path, 2)
    env.service.alarm_monitor = monitor
    env.groups += 1
    name = f"fleet-{env.groups}"
    env.apps.create_group("my-app", name, ec2TagFilters=[{"Key": "app", "Value": "my-app", "Type": "KEY_AND_VALUE"}],
                          autoRollbackConfiguration=rollback, alarmConfiguration=ALARMS)
    return env, name


def statuses_of(env: Env, deployment_id: str) -> list[str]:
    return [e["status"] for e in env.db.events_after(0, limit=5000) if e["kind"] == KIND and e["id"] == deployment_id]


def test_alarm_during_bake_stops_and_rolls_back_to_the_last_good_revision(tmp_path):
    monitor = Monitor(bake=0.6)
    env, group = env_with(tmp_path, monitor)
    try:
        good = env.deploy(group, key="v1")
        assert good["status"] == "Succeeded"
        assert "Baking" in statuses_of(env, good["deploymentId"])
        revision = env.store.put("v2", make_bundle())
        created = env.service.create_deployment("my-app", group, revision)
        while env.service.get(created["deploymentId"])["status"] != "Baking":
            time.sleep(0.02)
        monitor.fire.set()
        bad = env.finish(created["deploymentId"])
        assert bad["status"] == "Stopped"
        assert bad["errorInformation"]["code"] == "ALARM_ACTIVE"
        assert "Activated alarms: errors" in bad["errorInformation"]["message"]
        rollback_id = bad["rollbackInfo"]["rollbackDeploymentId"]
        assert "DEPLOYMENT_STOP_ON_ALARM" in bad["rollbackInfo"]["rollbackMessage"]
        rollback = env.service.get(rollback_id)
        assert rollback["revision"]["s3Location"]["key"] == "v1"
        assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == bad["deploymentId"]
        assert env.finish(rollback_id)["status"] == "Succeeded"  # the alarm still in ALARM does not stop it
        assert group in monitor.groups
    finally:
        env.agent.close()


def test_alarm_already_in_alarm_skips_remaining_instances_and_no_rollback_without_the_event(tmp_path):
    monitor = Monitor()
    env, group = env_with(tmp_path, monitor, rollback={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]})
    try:
        assert env.deploy(group, key="v1")["status"] == "Succeeded"
        monitor.fire.set()
        bad = env.deploy(group, key="v2")
        assert bad["status"] == "Stopped"
        assert bad["errorInformation"]["code"] == "ALARM_ACTIVE"
        assert "rollbackDeploymentId" not in (bad.get("rollbackInfo") or {})
        assert {t["status"] for t in env.targets(bad["deploymentId"]).values()} <= {"Skipped", "Failed"}
    finally:
        env.agent.close()


def test_clean_bake_succeeds_after_waiting(tmp_path):
    monitor = Monitor(bake=0.3)
    env, group = env_with(tmp_path, monitor)
    try:
        done = env.deploy(group, key="v1")
        assert done["status"] == "Succeeded"
        assert done["completeTime"] - done["startTime"] >= 0.3
    finally:
        env.agent.close()
