"""DeploymentService rollout arithmetic with fakes: a real Database, Orchestrator, Applications and
CommandQueue, a fake fleet and store, and a fake agent thread per instance that answers host commands
from a table (aws-semantics.md sections 2.1, 3.1 and 3.3)."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from typing import Callable

import pytest

from emulator import contracts
from emulator.domain.appspec import LIFECYCLE_ORDER_IN_PLACE
from emulator.domain.errors import InvalidField
from emulator.orchestration import Orchestrator
from emulator.services.codedeploy.applications import CONFIG, Applications
from emulator.services.codedeploy.command_queue import CommandQueue
from emulator.services.codedeploy.deployments import TARGET, DeploymentService
from emulator.state.database import Database

ACCOUNT = "000000000000"
REGION = "us-east-1"
BUCKET = "bundles"
APP = "my-app"
HOOK = "scripts/before.sh"
STOP_HOOK = "scripts/stop.sh"

APPSPEC = f"""\
version: 0.0
os: linux
files:
  - source: /app
    destination: /var/www/html
hooks:
  ApplicationStop:
    - location: {STOP_HOOK}
      timeout: 20
  BeforeInstall:
    - location: {HOOK}
      timeout: 30
"""


def make_bundle(appspec: str | None = APPSPEC) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        if appspec is not None:
            archive.writestr("appspec.yml", appspec)
        archive.writestr(HOOK, "#!/bin/bash\necho before\n")
        archive.writestr(STOP_HOOK, "#!/bin/bash\necho stop\n")
        archive.writestr("app/index.html", "<h1>hi</h1>\n")
    return buffer.getvalue()


# ---------------------------------------------------------------- fakes


class FakeStore:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put(self, key: str, data: bytes) -> dict:
        self.objects[(BUCKET, key)] = data
        return {"revisionType": "S3", "s3Location": {"bucket": BUCKET, "key": key, "bundleType": "zip"}}

    def head(self, bucket: str, key: str) -> dict | None:
        return {"ETag": f'"etag-{key}"'} if (bucket, key) in self.objects else None

    def get_bytes(self, bucket: str, key: str) -> bytes:
        return self.objects[(bucket, key)]

    def presign_get(self, bucket: str, key: str, expires: int = 3600) -> str:
        return f"http://store.invalid/{bucket}/{key}?signed"


class FakeFleet:
    def __init__(self, db: Database, count: int) -> None:
        self.db = db
        self.instances = [{"instanceId": f"i-{n:06d}", "name": f"web-{n}"} for n in range(1, count + 1)]
        self.successes: list[tuple[str, str, str]] = []
        for inst in self.instances:
            db.put("instance", inst["instanceId"], {**inst, "state": "running", "lastSuccessful": {}})

    def matching(self, filters: list[dict], tag_set: list[list[dict]] | None = None) -> list[dict]:
        assert filters, "the deployment group's tag filters are passed to the fleet"
        return [dict(i) for i in self.instances]

    def record_success(self, instance_id: str, group_id: str, deployment_id: str, revision: dict) -> None:
        self.successes.append((instance_id, group_id, deployment_id))
        doc = self.db.get("instance", instance_id)
        self.db.update("instance", instance_id, lastSuccessful={**doc["lastSuccessful"], group_id: deployment_id},
                       revision=revision)

    def alive(self, instance_id: str) -> bool:
        return True


Decide = Callable[[str, contracts.HostCommand], bool]


class FakeAgent:
    """One polling thread per instance; answers a success after `delay`, a failure after `fail_delay`."""

    def __init__(self, queue: CommandQueue, instances: list[dict], delay: float = 0.02) -> None:
        self.queue = queue
        self.delay = delay
        self.fail_delay = 0.0
        self.decide: Decide = lambda name, command: True
        self.received: list[tuple[str, contracts.HostCommand]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._names = {i["instanceId"]: i["name"] for i in instances}
        self._threads = [threading.Thread(target=self._loop, args=(iid,), daemon=True) for iid in self._names]
        for thread in self._threads:
            thread.start()

    def _loop(self, iid: str) -> None:
        name = self._names[iid]
        while not self._stop.is_set():
            command = self.queue.poll(iid, wait=0.05)
            if command is None:
                continue
            with self._lock:
                self.received.append((name, command))
            started = time.time()
            ok = self.decide(name, command)
            time.sleep(self.delay if ok else self.fail_delay)
            self.queue.report(iid, contracts.CommandResult(
                command_id=command.command_id, status="Succeeded" if ok else "Failed",
                error_code="Success" if ok else "ScriptFailed",
                message="" if ok else f"Script at specified location: {HOOK} run as user root failed with exit code 1",
                log=f"{command.lifecycle_event} on {name}\n", start_time=started, end_time=time.time()))

    def commands_for(self, name: str, deployment_id: str | None = None) -> list[contracts.HostCommand]:
        with self._lock:
            return [c for n, c in self.received if n == name and deployment_id in (None, c.deployment_id)]

    def names_seen(self, deployment_id: str) -> set[str]:
        with self._lock:
            return {n for n, c in self.received if c.deployment_id == deployment_id}

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2.0)


def fail_on(table: dict[str, str]) -> Decide:
    """{instance name: lifecycle event it fails on}."""
    return lambda name, command: table.get(name) != command.lifecycle_event


class Env:
    def __init__(self, tmp_path, count: int, delay: float = 0.02) -> None:
        self.db = Database(tmp_path / "state.db", ACCOUNT, REGION)
        self.orch = Orchestrator(self.db)
        self.apps = Applications(self.db)
        self.fleet = FakeFleet(self.db, count)
        self.store = FakeStore()
        self.queue = CommandQueue()
        self.agent = FakeAgent(self.queue, self.fleet.instances, delay)
        self.service = DeploymentService(self.orch, self.apps, self.fleet, self.queue, self.store)
        self.apps.create_application(APP)
        self.groups = 0

    def group(self, config: str = "CodeDeployDefault.OneAtATime", auto_rollback: dict | None = None) -> str:
        self.groups += 1
        name = f"fleet-{self.groups}"
        self.apps.create_group(APP, name, deploymentConfigName=config,
                               ec2TagFilters=[{"Key": "app", "Value": APP, "Type": "KEY_AND_VALUE"}],
                               autoRollbackConfiguration=auto_rollback)
        return name

    def custom_config(self, name: str, kind: str, value: int) -> str:
        self.db.put(CONFIG, name, {"deploymentConfigName": name, "computePlatform": "Server",
                                   "minimumHealthyHosts": {"type": kind, "value": value}})
        return name

    def deploy(self, group: str, key: str = "v1", decide: Decide | None = None, appspec: str | None = APPSPEC,
               timeout: float = 8.0) -> dict:
        self.agent.decide = decide or (lambda name, command: True)
        revision = self.store.put(key, make_bundle(appspec))
        created = self.service.create_deployment(APP, group, revision)
        return self.finish(created["deploymentId"], timeout)

    def finish(self, deployment_id: str, timeout: float = 8.0) -> dict:
        """Waits for the deployment and for its thread (which may still start a rollback)."""
        doc = self.service.wait(deployment_id, timeout=timeout)
        for thread in threading.enumerate():
            if thread.name == f"deploy-{deployment_id}":
                thread.join(timeout)
        assert doc["status"] in ("Succeeded", "Failed", "Stopped"), f"{deployment_id} still {doc['status']}"
        return self.service.get(deployment_id)

    def targets(self, deployment_id: str) -> dict[str, dict]:
        """Instance name -> target, in fleet order."""
        by_name = {t["name"]: t for t in self.service.targets(deployment_id)}
        return {i["name"]: by_name[i["name"]] for i in self.fleet.instances}

    def statuses(self, deployment_id: str) -> list[str]:
        return [t["status"] for t in self.targets(deployment_id).values()]

    def max_concurrency(self, deployment_id: str) -> int:
        """Most targets InProgress at once, replayed from the event feed."""
        current: dict[str, str] = {}
        most = 0
        for event in self.db.events_after(0, limit=100000):
            if event["kind"] == TARGET and event["id"].startswith(deployment_id + ":"):
                current[event["id"]] = event["status"]
                most = max(most, sum(1 for s in current.values() if s == "InProgress"))
        return most

    def close(self) -> None:
        self.agent.close()
        self.db.close()


@pytest.fixture
def make_env(tmp_path):
    envs: list[Env] = []

    def factory(count: int, delay: float = 0.02) -> Env:
        env = Env(tmp_path / f"env{len(envs)}", count, delay)
        envs.append(env)
        return env

    yield factory
    for env in envs:
        env.close()


def events_of(target: dict) -> list[tuple[str, str]]:
    return [(e["lifecycleEventName"], e["status"]) for e in target["lifecycleEvents"]]


# ---------------------------------------------------------------- a succeeded target


@pytest.mark.timeout(20)
def test_succeeded_target_lifecycle_order_and_commands(make_env):
    env = make_env(2)
    group = env.group()
    doc = env.deploy(group)
    assert doc["status"] == "Succeeded"
    assert doc["deploymentOverview"]["Succeeded"] == 2
    assert "one instance at a time over 2" in doc["configurationExplained"]
    assert doc["startTime"] <= doc["completeTime"]
    assert "endTime" in doc

    for name, target in env.targets(doc["deploymentId"]).items():
        assert target["status"] == "Succeeded"
        # no previous revision: the agent treats ApplicationStop as a no-op and reports success
        assert events_of(target) == [("ApplicationStop", "Succeeded")] + [
            (e, "Succeeded") for e in LIFECYCLE_ORDER_IN_PLACE[1:]]
        assert target["targetArn"] == f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{target['instanceId']}"
        for event in target["lifecycleEvents"]:
            assert event["startTime"] <= event["endTime"]
        before = next(e for e in target["lifecycleEvents"] if e["lifecycleEventName"] == "BeforeInstall")
        assert before["diagnostics"]["errorCode"] == "Success"
        assert env.service.event_log(doc["deploymentId"], target["instanceId"], "BeforeInstall") == \
            f"BeforeInstall on {name}\n"

        commands = env.agent.commands_for(name, doc["deploymentId"])
        # hook-less events (AfterInstall, ApplicationStart, ValidateService) never reach the agent
        assert [c.lifecycle_event for c in commands] == ["DownloadBundle", "BeforeInstall", "Install"]
        download, before_install, install = commands
        assert download.bundle_url == f"http://store.invalid/{BUCKET}/v1?signed"
        assert download.bundle_type == "zip"
        assert download.env["BUNDLE_ETAG"] == "etag-v1"
        assert download.env["DEPLOYMENT_ID"] == doc["deploymentId"]
        assert download.env["DEPLOYMENT_GROUP_NAME"] == group
        assert [(s.location, s.timeout) for s in before_install.scripts] == [(HOOK, 30)]
        assert before_install.archive_deployment_id == doc["deploymentId"]
        assert [(f.source, f.destination) for f in install.files] == [("/app", "/var/www/html")]
        assert install.file_exists_behavior == "DISALLOW"

    group_doc = env.apps.get_group(APP, group)
    assert group_doc["lastSuccessfulDeployment"]["deploymentId"] == doc["deploymentId"]
    assert {s[0] for s in env.fleet.successes} == {i["instanceId"] for i in env.fleet.instances}


@pytest.mark.timeout(20)
def test_second_deployment_runs_application_stop_from_the_last_successful_revision(make_env):
    env = make_env(1)
    group = env.group()
    first = env.deploy(group, "v1")
    second = env.deploy(group, "v2")
    assert second["status"] == "Succeeded"
    target = env.targets(second["deploymentId"])["web-1"]
    assert events_of(target) == [(e, "Succeeded") for e in LIFECYCLE_ORDER_IN_PLACE]
    stop = env.agent.commands_for("web-1", second["deploymentId"])[0]
    assert stop.lifecycle_event == "ApplicationStop"
    assert stop.archive_deployment_id == first["deploymentId"]
    assert [s.location for s in stop.scripts] == [STOP_HOOK]


# ---------------------------------------------------------------- OneAtATime


@pytest.mark.timeout(20)
def test_one_at_a_time_stops_at_a_non_last_failure_and_skips_the_rest(make_env):
    env = make_env(3)
    doc = env.deploy(env.group(), decide=fail_on({"web-2": "BeforeInstall"}))
    assert doc["status"] == "Failed"
    assert doc["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
    assert env.statuses(doc["deploymentId"]) == ["Succeeded", "Failed", "Skipped"]
    assert doc["deploymentOverview"]["Skipped"] == 1
    assert doc["deploymentOverview"]["Failed"] == 1
    targets = env.targets(doc["deploymentId"])
    assert events_of(targets["web-2"]) == [
        ("ApplicationStop", "Succeeded"), ("DownloadBundle", "Succeeded"), ("BeforeInstall", "Failed"),
        ("Install", "Skipped"), ("AfterInstall", "Skipped"), ("ApplicationStart", "Skipped"),
        ("ValidateService", "Skipped")]
    failed = next(e for e in targets["web-2"]["lifecycleEvents"] if e["lifecycleEventName"] == "BeforeInstall")
    assert failed["diagnostics"]["errorCode"] == "ScriptFailed"
    assert failed["diagnostics"]["scriptName"] == HOOK
    assert all(status == "Skipped" for _, status in events_of(targets["web-3"]))
    assert env.agent.names_seen(doc["deploymentId"]) == {"web-1", "web-2"}
    assert env.fleet.successes == []  # a failed deployment records no instance as last successful
    assert env.max_concurrency(doc["deploymentId"]) == 1


@pytest.mark.timeout(20)
def test_one_at_a_time_failure_on_the_last_instance_still_succeeds(make_env):
    env = make_env(3)
    doc = env.deploy(env.group(), decide=fail_on({"web-3": "Install"}))
    assert doc["status"] == "Succeeded"
    assert env.statuses(doc["deploymentId"]) == ["Succeeded", "Succeeded", "Failed"]
    assert {s[0] for s in env.fleet.successes} == {"i-000001", "i-000002"}


@pytest.mark.timeout(20)
def test_one_at_a_time_single_instance_must_succeed(make_env):
    env = make_env(1)
    doc = env.deploy(env.group(), decide=fail_on({"web-1": "DownloadBundle"}))
    assert doc["status"] == "Failed"
    assert env.statuses(doc["deploymentId"]) == ["Failed"]


# ---------------------------------------------------------------- HalfAtATime


@pytest.mark.timeout(20)
def test_half_at_a_time_nine_instances_run_four_at_a_time(make_env):
    env = make_env(9, delay=0.05)
    doc = env.deploy(env.group("CodeDeployDefault.HalfAtATime"))
    assert doc["status"] == "Succeeded"
    assert env.statuses(doc["deploymentId"]) == ["Succeeded"] * 9
    assert env.max_concurrency(doc["deploymentId"]) == 4
    assert "up to 4 of 9" in doc["configurationExplained"]
    assert "at least 5" in doc["configurationExplained"]


@pytest.mark.timeout(20)
def test_half_at_a_time_succeeds_with_four_failures_of_nine(make_env):
    env = make_env(9, delay=0.01)
    failures = {f"web-{n}": "BeforeInstall" for n in (2, 4, 6, 8)}
    doc = env.deploy(env.group("CodeDeployDefault.HalfAtATime"), decide=fail_on(failures))
    assert doc["status"] == "Succeeded"
    statuses = env.targets(doc["deploymentId"])
    assert [n for n, t in statuses.items() if t["status"] == "Failed"] == sorted(failures)
    assert sum(t["status"] == "Succeeded" for t in statuses.values()) == 5


@pytest.mark.timeout(20)
def test_half_at_a_time_stops_after_the_fifth_failure(make_env):
    env = make_env(9, delay=0.1)  # successes are slow, failures immediate
    failures = {f"web-{n}": "DownloadBundle" for n in range(1, 6)}
    doc = env.deploy(env.group("CodeDeployDefault.HalfAtATime"), decide=fail_on(failures))
    assert doc["status"] == "Failed"
    targets = env.targets(doc["deploymentId"])
    assert [targets[n]["status"] for n in failures] == ["Failed"] * 5
    rest = [targets[f"web-{n}"]["status"] for n in range(6, 10)]
    assert set(rest) <= {"Succeeded", "Skipped"}
    assert targets["web-9"]["status"] == "Skipped"
    skipped = {n for n, t in targets.items() if t["status"] == "Skipped"}
    assert not skipped & env.agent.names_seen(doc["deploymentId"]), "skipped instances never receive commands"
    for name in skipped:
        assert all(status == "Skipped" for _, status in events_of(targets[name]))
    assert env.max_concurrency(doc["deploymentId"]) <= 4


# ---------------------------------------------------------------- AllAtOnce


@pytest.mark.timeout(20)
def test_all_at_once_succeeds_with_one_success(make_env):
    env = make_env(4, delay=0.1)
    env.agent.fail_delay = 0.1  # every target stays InProgress long enough for all four to overlap
    failures = {"web-1": "BeforeInstall", "web-2": "DownloadBundle", "web-4": "Install"}
    doc = env.deploy(env.group("CodeDeployDefault.AllAtOnce"), decide=fail_on(failures))
    assert doc["status"] == "Succeeded"
    assert env.statuses(doc["deploymentId"]) == ["Failed", "Failed", "Succeeded", "Failed"]
    assert env.max_concurrency(doc["deploymentId"]) == 4


@pytest.mark.timeout(20)
def test_all_at_once_fails_when_all_fail(make_env):
    env = make_env(3)
    doc = env.deploy(env.group("CodeDeployDefault.AllAtOnce"), decide=lambda name, command: False)
    assert doc["status"] == "Failed"
    assert env.statuses(doc["deploymentId"]) == ["Failed"] * 3


# ---------------------------------------------------------------- custom configurations


@pytest.mark.timeout(20)
def test_host_count_six_of_nine_runs_three_at_a_time(make_env):
    env = make_env(9, delay=0.05)
    config = env.custom_config("Custom.HostCount6", "HOST_COUNT", 6)
    doc = env.deploy(env.group(config))
    assert doc["status"] == "Succeeded"
    assert env.max_concurrency(doc["deploymentId"]) == 3
    assert "at least 6" in doc["configurationExplained"]


@pytest.mark.timeout(20)
def test_host_count_stops_once_the_minimum_is_out_of_reach(make_env):
    env = make_env(3)
    config = env.custom_config("Custom.HostCount2", "HOST_COUNT", 2)  # one at a time, needs 2
    ok = env.deploy(env.group(config), "v1", decide=fail_on({"web-1": "BeforeInstall"}))
    assert ok["status"] == "Succeeded"
    assert env.statuses(ok["deploymentId"]) == ["Failed", "Succeeded", "Succeeded"]

    bad = env.deploy(env.group(config), "v2", decide=fail_on({"web-1": "BeforeInstall", "web-2": "Install"}))
    assert bad["status"] == "Failed"
    assert env.statuses(bad["deploymentId"]) == ["Failed", "Failed", "Skipped"]


@pytest.mark.timeout(20)
def test_fleet_percent_forty_of_nine_needs_four(make_env):
    env = make_env(9, delay=0.01)
    config = env.custom_config("Custom.Fleet40", "FLEET_PERCENT", 40)
    five = {f"web-{n}": "BeforeInstall" for n in range(1, 6)}
    ok = env.deploy(env.group(config), "v1", decide=fail_on(five))
    assert ok["status"] == "Succeeded"
    assert env.statuses(ok["deploymentId"]) == ["Failed"] * 5 + ["Succeeded"] * 4
    assert env.max_concurrency(ok["deploymentId"]) <= 5

    six = {f"web-{n}": "BeforeInstall" for n in range(1, 10, 3)} | {f"web-{n}": "Install" for n in (2, 5, 8)}
    bad = env.deploy(env.group(config), "v2", decide=fail_on(six))
    assert bad["status"] == "Failed"
    assert sum(s == "Succeeded" for s in env.statuses(bad["deploymentId"])) <= 3


@pytest.mark.timeout(20)
def test_minimum_zero_custom_config_still_needs_one_success(make_env):
    env = make_env(2)
    config = env.custom_config("Custom.Zero", "HOST_COUNT", 0)
    doc = env.deploy(env.group(config), decide=lambda name, command: False)
    assert doc["status"] == "Failed"
    assert env.statuses(doc["deploymentId"]) == ["Failed", "Failed"]


# ---------------------------------------------------------------- unusable revision


@pytest.mark.timeout(20)
def test_revision_without_appspec_fails_download_bundle_without_reaching_the_agent(make_env):
    env = make_env(2)
    doc = env.deploy(env.group(), appspec=None)
    assert doc["status"] == "Failed"
    assert env.statuses(doc["deploymentId"]) == ["Failed", "Skipped"]
    target = env.targets(doc["deploymentId"])["web-1"]
    download = next(e for e in target["lifecycleEvents"] if e["lifecycleEventName"] == "DownloadBundle")
    assert download["status"] == "Failed"
    assert "appspec.yml" in download["diagnostics"]["message"]
    assert env.agent.received == []


# ---------------------------------------------------------------- automatic rollback


ROLLBACK_ON_FAILURE = {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}


def fail_v2(name: str, command: contracts.HostCommand) -> bool:
    return not (command.env.get("BUNDLE_KEY") == "v2" and command.lifecycle_event == "BeforeInstall")


@pytest.mark.timeout(30)
def test_deployment_failure_rolls_back_to_the_last_successful_revision(make_env):
    env = make_env(2)
    group = env.group(auto_rollback=ROLLBACK_ON_FAILURE)
    good = env.deploy(group, "v1")
    assert good["status"] == "Succeeded"
    bad = env.deploy(group, "v2", decide=fail_v2)
    assert bad["status"] == "Failed"

    rollback_id = bad["rollbackInfo"]["rollbackDeploymentId"]
    assert rollback_id not in (good["deploymentId"], bad["deploymentId"])
    rollback = env.finish(rollback_id)
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == bad["deploymentId"]
    assert rollback["revision"]["s3Location"]["key"] == "v1"
    assert rollback["status"] == "Succeeded"
    assert good["deploymentId"] in bad["rollbackInfo"]["rollbackMessage"]
    assert [d["deploymentId"] for d in env.service.list(APP, group)] == [
        good["deploymentId"], bad["deploymentId"], rollback_id]
    assert env.apps.get_group(APP, group)["lastSuccessfulDeployment"]["deploymentId"] == rollback_id


@pytest.mark.timeout(20)
def test_no_rollback_without_a_previous_success(make_env):
    env = make_env(1)
    group = env.group(auto_rollback=ROLLBACK_ON_FAILURE)
    bad = env.deploy(group, "v2", decide=fail_v2)
    assert bad["status"] == "Failed"
    assert "rollbackInfo" not in bad
    assert [d["deploymentId"] for d in env.service.list(APP, group)] == [bad["deploymentId"]]


@pytest.mark.timeout(20)
def test_no_rollback_when_auto_rollback_is_disabled(make_env):
    env = make_env(1)
    group = env.group()
    env.deploy(group, "v1")
    bad = env.deploy(group, "v2", decide=fail_v2)
    assert bad["status"] == "Failed"
    assert "rollbackInfo" not in bad
    assert len(env.service.list(APP, group)) == 2


# ---------------------------------------------------------------- one deployment per group at a time


@pytest.mark.timeout(30)
def test_second_deployment_to_a_group_is_queued_until_the_first_ends(make_env):
    env = make_env(1, delay=0.2)
    group = env.group()
    first = env.service.create_deployment(APP, group, env.store.put("v1", make_bundle()))
    second = env.service.create_deployment(APP, group, env.store.put("v2", make_bundle()))
    first_doc, second_doc = env.finish(first["deploymentId"]), env.finish(second["deploymentId"])
    assert first_doc["status"] == second_doc["status"] == "Succeeded"
    seen = [e["status"] for e in env.db.events_after(0, limit=100000)
            if e["kind"] == "deployment" and e["id"] == second["deploymentId"]]
    assert seen[:3] == ["Created", "Queued", "InProgress"]
    assert second_doc["startTime"] >= first_doc["completeTime"]


@pytest.mark.timeout(30)
def test_stopping_a_queued_deployment_ends_it_stopped_without_touching_instances(make_env):
    env = make_env(1, delay=0.3)
    group = env.group()
    first = env.service.create_deployment(APP, group, env.store.put("v1", make_bundle()))
    second = env.service.create_deployment(APP, group, env.store.put("v2", make_bundle()))
    env.service.stop(second["deploymentId"])
    stopped = env.finish(second["deploymentId"])
    assert stopped["status"] == "Stopped"
    assert env.service.targets(second["deploymentId"]) == []
    assert env.agent.commands_for("web-1", second["deploymentId"]) == []
    assert env.finish(first["deploymentId"])["status"] == "Succeeded"


def test_lifecycle_subset_keeps_download_bundle_and_install_in_their_places():
    from emulator.services.codedeploy.deployments import _event_order

    assert _event_order(["ApplicationStart", "BeforeInstall", "ApplicationStop"]) == [
        "ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "ApplicationStart"]
    assert _event_order(["MyCheck"]) == ["DownloadBundle", "Install", "MyCheck"]
    with pytest.raises(ValueError, match="Start"):
        _event_order(["Start"])


@pytest.mark.timeout(20)
def test_custom_event_runs_its_scripts_and_unknown_hooks_stay_refused(make_env):
    env = make_env(1)
    group = env.group()
    appspec = APPSPEC + "  MyCheck:\n    - location: scripts/before.sh\n"
    revision = env.store.put("custom", make_bundle(appspec))
    created = env.service.create_deployment(APP, group, revision, lifecycle_events=["BeforeInstall", "MyCheck"])
    doc = env.finish(created["deploymentId"])
    assert doc["status"] == "Succeeded"
    assert events_of(env.targets(doc["deploymentId"])["web-1"]) == [
        ("DownloadBundle", "Succeeded"), ("BeforeInstall", "Succeeded"), ("Install", "Succeeded"),
        ("MyCheck", "Succeeded")]
    assert [c.lifecycle_event for c in env.agent.commands_for("web-1", doc["deploymentId"])][-1] == "MyCheck"
    # without --events naming it, the same appspec is refused at DownloadBundle with the hook's key
    plain = env.finish(env.service.create_deployment(APP, group, revision)["deploymentId"])
    assert plain["status"] == "Failed"
    bundle_event = env.targets(plain["deploymentId"])["web-1"]["lifecycleEvents"][1]
    assert bundle_event["status"] == "Failed" and "hooks.MyCheck" in bundle_event["diagnostics"]["message"]


def test_traffic_events_on_a_group_without_a_load_balancer_are_refused(make_env):
    env = make_env(1)
    group = env.group()
    revision = env.store.put("traffic", make_bundle(APPSPEC))
    with pytest.raises(InvalidField) as info:
        env.service.create_deployment(APP, group, revision, lifecycle_events=["BlockTraffic", "BeforeInstall"])
    assert info.value.field == "loadBalancerInfo" and "BlockTraffic" in str(info.value) and group in str(info.value)


def test_custom_configuration_is_validated_and_listed(tmp_path):
    apps = Applications(Database(tmp_path / "s.db", ACCOUNT, REGION))
    apps.create_config("Two", {"type": "HOST_COUNT", "value": 2})
    assert apps.get_config("Two")["minimumHealthyHosts"] == {"type": "HOST_COUNT", "value": 2}
    assert "Two" in apps.list_configs() and "CodeDeployDefault.AllAtOnce" in apps.list_configs()
    for bad in ({"type": "MOST_CONCURRENCY", "value": 1}, {"type": "FLEET_PERCENT", "value": 101},
                {"type": "HOST_COUNT", "value": "2"}, {"type": "HOST_COUNT", "value": -1}):
        with pytest.raises(ValueError, match="minimumHealthyHosts"):
            apps.create_config("Bad", bad)
    with pytest.raises(ValueError, match="predefined"):
        apps.delete_config("CodeDeployDefault.OneAtATime")


def test_group_tag_filters_are_checked(tmp_path):
    apps = Applications(Database(tmp_path / "s.db", ACCOUNT, REGION))
    apps.create_application("a")
    with pytest.raises(ValueError, match=r"ec2TagFilters\[0\]"):
        apps.create_group("a", "g", ec2TagFilters=[{"Key": "x", "Value": "y", "Type": "EXACT"}])
    with pytest.raises(ValueError, match="cannot both"):
        apps.create_group("a", "g", ec2TagFilters=[{"Key": "x", "Value": "y"}],
                          ec2TagSet={"ec2TagSetList": [[{"Key": "x", "Value": "y"}]]})


# ---------------------------------------------------------------- long polls hold no thread


def test_many_async_polls_wait_together_and_a_put_from_a_thread_wakes_only_its_instance():
    import asyncio

    queue = CommandQueue()

    async def scenario():
        waiters = [asyncio.create_task(queue.poll_async(f"i-{n}", 5.0)) for n in range(100)]
        await asyncio.sleep(0.05)
        command = contracts.HostCommand(command_id="c", deployment_id="d", deployment_group_id="g",
                                        lifecycle_event="BeforeInstall")
        started = time.monotonic()
        threading.Thread(target=queue.put, args=("i-42", command)).start()
        got = await waiters[42]
        woke_after = time.monotonic() - started
        assert all(not w.done() for i, w in enumerate(waiters) if i != 42)
        for w in waiters:
            w.cancel()
        return got, woke_after

    got, woke_after = asyncio.run(scenario())
    assert got.command_id == "c" and woke_after < 1.0
    assert asyncio.run(queue.poll_async("i-1", 0.1)) is None


# ---------------------------------------------------------------- ApplicationStop failures, appspec names


@pytest.mark.timeout(30)
def test_ignore_application_stop_failures_continues_with_download_bundle(make_env):
    env = make_env(1)
    group = env.group()
    assert env.deploy(group, "v1")["status"] == "Succeeded"
    failing_stop = fail_on({"web-1": "ApplicationStop"})
    env.agent.decide = failing_stop
    ignored = env.finish(env.service.create_deployment(APP, group, env.store.put("v2", make_bundle()),
                                                       ignore_application_stop_failures=True)["deploymentId"])
    assert ignored["status"] == "Succeeded"
    events = events_of(env.targets(ignored["deploymentId"])["web-1"])
    assert events[0] == ("ApplicationStop", "Failed") and all(s == "Succeeded" for _, s in events[1:])
    strict = env.deploy(group, "v3", decide=failing_stop)
    assert strict["status"] == "Failed"
    assert events_of(env.targets(strict["deploymentId"])["web-1"])[:2] == [
        ("ApplicationStop", "Failed"), ("DownloadBundle", "Skipped")]


def _bundle_named(name: str, appspec: str = APPSPEC) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, appspec)
        archive.writestr(HOOK, "#!/bin/bash\necho before\n")
        archive.writestr(STOP_HOOK, "#!/bin/bash\necho stop\n")
        archive.writestr("app/index.html", "<h1>hi</h1>\n")
    return buffer.getvalue()


@pytest.mark.timeout(30)
def test_appspec_yaml_and_a_custom_appspec_name(make_env):
    env = make_env(1)
    group = env.group()
    yaml_doc = env.finish(env.service.create_deployment(
        APP, group, env.store.put("yaml", _bundle_named("appspec.yaml")))["deploymentId"])
    assert yaml_doc["status"] == "Succeeded"
    custom = env.store.put("custom", _bundle_named("deploy/test-spec.yml"))
    assert env.finish(env.service.create_deployment(APP, group, custom, appspec_file="deploy/test-spec.yml")[
        "deploymentId"])["status"] == "Succeeded"
    missing = env.finish(env.service.create_deployment(APP, group, custom)["deploymentId"])
    download = env.targets(missing["deploymentId"])["web-1"]["lifecycleEvents"][1]
    assert download["status"] == "Failed" and "appspec.yml or appspec.yaml" in download["diagnostics"]["message"]


# ---------------------------------------------------------------- unacknowledged commands are handed out again


def test_an_unacknowledged_command_is_handed_out_again_and_an_acknowledged_one_is_not():
    queue = CommandQueue()
    command = contracts.HostCommand(command_id="c1", deployment_id="d", deployment_group_id="g",
                                    lifecycle_event="Install")
    queue.put("i-1", command)
    assert queue.poll("i-1", 0.1) is command
    handed = queue.unacknowledged_since("c1")
    assert handed is not None and handed <= time.time()
    queue.redeliver("i-1", command)
    assert queue.poll("i-1", 0.1) is command  # the lost response is made good
    queue.heartbeat("i-1", "c1")
    assert queue.unacknowledged_since("c1") is None


@pytest.mark.timeout(30)
def test_a_command_whose_poll_response_was_lost_is_delivered_again(make_env, monkeypatch):
    import emulator.services.codedeploy.deployments as deployments_module

    monkeypatch.setattr(deployments_module, "ACK_LIMIT", 0.2)
    env = make_env(1)
    original_poll = env.queue.poll
    lost = []

    def lossy_poll(instance, wait):
        command = original_poll(instance, wait)
        if command is not None and command.lifecycle_event == "Install" and not lost:
            lost.append(command.command_id)  # handed out, never seen by the agent
            return None
        return command

    env.queue.poll = lossy_poll
    doc = env.deploy(env.group(), timeout=15)
    assert lost and doc["status"] == "Succeeded"
    assert [c.lifecycle_event for c in env.agent.commands_for("web-1")].count("Install") == 1


# ---------------------------------------------------------------- stop on request


@pytest.mark.timeout(40)
def test_stop_on_request_ends_stopped_and_rolls_back_unless_told_not_to(make_env):
    env = make_env(2, delay=0.15)
    group = env.group(auto_rollback={"enabled": True, "events": ["DEPLOYMENT_STOP_ON_REQUEST"]})
    good = env.deploy(group, "v1")
    assert good["status"] == "Succeeded"

    def stop_midway(key: str, auto_rollback: bool | None) -> dict:
        created = env.service.create_deployment(APP, group, env.store.put(key, make_bundle()))
        deadline = time.monotonic() + 5
        while env.service.get(created["deploymentId"])["status"] != "InProgress" and time.monotonic() < deadline:
            time.sleep(0.02)
        env.service.stop(created["deploymentId"], auto_rollback)
        return env.finish(created["deploymentId"], timeout=15)

    stopped = stop_midway("v2", None)
    assert stopped["status"] == "Stopped"
    assert stopped["errorInformation"]["code"] == "DEPLOYMENT_STOPPED"
    rollback = env.finish(stopped["rollbackInfo"]["rollbackDeploymentId"], timeout=15)
    assert rollback["creator"] == "codeDeployRollback" and rollback["revision"]["s3Location"]["key"] == "v1"
    assert rollback["status"] == "Succeeded"

    kept = stop_midway("v3", False)
    assert kept["status"] == "Stopped" and "rollbackDeploymentId" not in (kept.get("rollbackInfo") or {})
