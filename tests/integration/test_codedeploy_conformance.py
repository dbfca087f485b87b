"""CodeDeploy's documented behaviour on real agent containers (aws-semantics.md sections 2, 3).

Checks that must look inside an instance run as hook scripts there: a failed check fails its
lifecycle event, and the test asserts on the event's status and output.
"""

from __future__ import annotations

import io
import tarfile
import time
import uuid

import pytest

pytestmark = pytest.mark.integration

BUCKET = "cd-conformance"
TAG = "CdConformance"


def bundle(files: dict[str, str], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            archive.addfile(info, io.BytesIO(data))
        for info in extra or []:
            archive.addfile(info, io.BytesIO(b"x" * info.size))
    return buffer.getvalue()


def script(*lines: str) -> str:
    return "#!/bin/bash\nset -e\n" + "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def fleet(control_plane):
    """Three instances of our own, selected by a tag the seed's instances do not carry."""
    cp = control_plane
    cp.store.ensure_bucket(BUCKET)
    launched = cp.client.post("/instances", {"count": 3, "tags": {TAG: "yes"}})["instances"]
    app = f"conf-{uuid.uuid4().hex[:6]}"
    cp.client.post("/applications", {"applicationName": app})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # agents register on their own; wait until all three have
        states = [cp.client.get(f"/instances/{i['instanceId']}") for i in launched]
        if all(s.get("agentRegistered") for s in states):
            break
        time.sleep(0.3)
    yield {"app": app, "instances": launched}
    for inst in launched:
        cp.client.delete(f"/instances/{inst['instanceId']}")


class Deployer:
    def __init__(self, cp, fleet):
        self.cp, self.app, self.instances = cp, fleet["app"], fleet["instances"]

    def group(self, config: str = "CodeDeployDefault.OneAtATime", instances: list[dict] | None = None,
              **options) -> str:
        name = f"g-{uuid.uuid4().hex[:6]}"
        if instances is None:
            filters = [{"Key": TAG, "Type": "KEY_ONLY"}]
        else:
            filters = [{"Key": "Name", "Value": i["name"], "Type": "KEY_AND_VALUE"} for i in instances]
        self.cp.client.post(f"/applications/{self.app}/deployment-groups",
                            {"deploymentGroupName": name, "deploymentConfigName": config,
                             "ec2TagFilters": filters, **options})
        return name

    def revision(self, files: dict[str, str], extra=None) -> dict:
        key = f"rev/{uuid.uuid4().hex}.tgz"
        self.cp.store.put_bytes(BUCKET, key, bundle(files, extra))
        return {"revisionType": "S3", "s3Location": {"bucket": BUCKET, "key": key, "bundleType": "tgz"}}

    def start(self, group: str, revision: dict, **options) -> str:
        return self.cp.client.post("/deployments", {"applicationName": self.app, "deploymentGroupName": group,
                                                    "revision": revision, **options})["deploymentId"]

    def wait(self, deployment_id: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            doc = self.cp.client.get(f"/deployments/{deployment_id}")
            if doc["status"] in ("Succeeded", "Failed", "Stopped"):
                return doc
            time.sleep(0.3)
        raise AssertionError(f"{deployment_id} still {doc['status']} after {timeout} s")

    def deploy(self, group: str, files: dict[str, str], **options) -> dict:
        return self.wait(self.start(group, self.revision(files), **options))


@pytest.fixture(scope="module")
def cd(control_plane, fleet) -> Deployer:
    return Deployer(control_plane, fleet)


def events(doc: dict, index: int = 0) -> dict[str, dict]:
    return {e["lifecycleEventName"]: e for e in doc["targets"][index]["lifecycleEvents"]}


def explain(doc: dict) -> str:
    lines = [f"{doc['deploymentId']} {doc['status']} {doc.get('errorInformation')}"]
    for t in doc["targets"]:
        for e in t["lifecycleEvents"]:
            lines.append(f"  {t['name']} {e['lifecycleEventName']} {e['status']} {(e.get('diagnostics') or {}).get('message', '')}")
    return "\n".join(lines)


# ---------------------------------------------------------------- lifecycle, environment, cleanup


def test_lifecycle_order_environment_previous_application_stop_and_cleanup(cd):
    group = cd.group(instances=cd.instances[:1])
    v1 = {
        "appspec.yml": "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/life\n"
                       "hooks:\n  ApplicationStop:\n    - location: stop.sh\n  AfterInstall:\n    - location: env.sh\n",
        "site/old.txt": "v1 only\n", "site/keep.txt": "v1\n",
        "stop.sh": script("echo stopping-revision-one"),
        "env.sh": script("env | grep -E '^(APPLICATION_NAME|DEPLOYMENT_ID|DEPLOYMENT_GROUP_NAME|DEPLOYMENT_GROUP_ID|"
                         "LIFECYCLE_EVENT|BUNDLE_BUCKET|BUNDLE_KEY|BUNDLE_ETAG)=' | sort",
                         "test -n \"$BUNDLE_ETAG\""),
    }
    first = cd.deploy(group, v1)
    assert first["status"] == "Succeeded", explain(first)
    assert [e["lifecycleEventName"] for e in first["targets"][0]["lifecycleEvents"]] == [
        "ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart",
        "ValidateService"]
    ev = events(first)
    assert ev["ApplicationStop"]["status"] == "Succeeded"  # nothing to run yet: a no-op, as the agent reports
    assert ev["ApplicationStop"]["diagnostics"]["logTail"] == ""
    log = cd.cp.client.get(f"/deployments/{first['deploymentId']}/instances/{first['targets'][0]['instanceId']}"
                           "/events/AfterInstall/log")["log"]
    group_doc = cd.cp.client.get(f"/applications/{cd.app}/deployment-groups/{group}")
    for expected in (f"APPLICATION_NAME={cd.app}", f"DEPLOYMENT_ID={first['deploymentId']}",
                     f"DEPLOYMENT_GROUP_NAME={group}", f"DEPLOYMENT_GROUP_ID={group_doc['deploymentGroupId']}",
                     "LIFECYCLE_EVENT=AfterInstall", f"BUNDLE_BUCKET={BUCKET}",
                     f"BUNDLE_KEY={first['revision']['s3Location']['key']}"):
        assert expected in log
    for e in first["targets"][0]["lifecycleEvents"]:
        assert e["startTime"] <= e["endTime"]

    v2 = {
        "appspec.yml": "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/life\n"
                       "hooks:\n  ValidateService:\n    - location: check.sh\n",
        "site/keep.txt": "v2\n",
        "check.sh": script("test ! -e /srv/life/old.txt", "grep -q v2 /srv/life/keep.txt", "echo checked"),
    }
    second = cd.deploy(group, v2)
    assert second["status"] == "Succeeded", explain(second)
    stop = events(second)["ApplicationStop"]
    assert stop["status"] == "Succeeded"
    assert "stopping-revision-one" in stop["diagnostics"]["logTail"]  # the last successful revision's script

    # v2 has no ApplicationStop hook: the third deployment's ApplicationStop has nothing to run
    third = cd.deploy(group, v2)
    assert third["status"] == "Succeeded", explain(third)
    assert events(third)["ApplicationStop"]["diagnostics"]["logTail"] == ""


# ---------------------------------------------------------------- files and permissions


def test_file_exists_behavior_disallow_overwrite_retain_and_permissions(cd):
    group = cd.group(instances=cd.instances[1:2])
    def rev(check: str) -> dict:
        return {
            "appspec.yml": "version: 0.0\nos: linux\nfiles:\n  - source: index.html\n    destination: /srv/fe\n"
                           "permissions:\n  - object: /srv/fe\n    pattern: \"*.html\"\n    mode: \"640\"\n"
                           "    type: [file]\n"
                           "hooks:\n  BeforeInstall:\n    - location: plant.sh\n  ValidateService:\n"
                           "    - location: check.sh\n",
            "index.html": "from the revision\n",
            "plant.sh": script("mkdir -p /srv/fe", "[ -e /srv/fe/index.html ] || echo planted > /srv/fe/index.html"),
            "check.sh": script(check),
        }
    disallowed = cd.deploy(group, rev("true"))
    assert disallowed["status"] == "Failed", explain(disallowed)
    install = events(disallowed)["Install"]
    assert install["status"] == "Failed"
    assert "already exists at this location: /srv/fe/index.html" in install["diagnostics"]["message"]

    retained = cd.deploy(group, rev("grep -q planted /srv/fe/index.html"), fileExistsBehavior="RETAIN")
    assert retained["status"] == "Succeeded", explain(retained)

    overwritten = cd.deploy(group, rev("grep -q 'from the revision' /srv/fe/index.html; "
                                       "test \"$(stat -c %a /srv/fe/index.html)\" = 640"),
                            fileExistsBehavior="OVERWRITE")
    # a retained file was not installed by the revision, so it is still there and OVERWRITE replaces it
    assert overwritten["status"] == "Succeeded", explain(overwritten)


# ---------------------------------------------------------------- bad input


def test_bad_appspec_is_refused_at_download_bundle_with_file_line_and_key(cd):
    group = cd.group(instances=cd.instances[2:3])
    doc = cd.deploy(group, {"appspec.yml": "version: 0.0\nos: linux\nhooks:\n  BeforeInstal:\n"
                                           "    - location: x.sh\n", "x.sh": script("true")})
    assert doc["status"] == "Failed"
    download = events(doc)["DownloadBundle"]
    message = download["diagnostics"]["message"]
    assert download["status"] == "Failed"
    assert message.startswith("appspec.yml:4: hooks.BeforeInstal: a lifecycle event name")
    assert events(doc)["Install"]["status"] == "Skipped"

    mode = cd.deploy(group, {"appspec.yml": "version: 0.0\nos: linux\npermissions:\n  - object: /srv\n"
                                            "    mode: 9z9\n"})
    assert "permissions[0].mode" in events(mode)["DownloadBundle"]["diagnostics"]["message"]


def test_bundle_escaping_its_root_is_refused_and_nothing_outside_changes(cd):
    group = cd.group(instances=cd.instances[2:3])
    evil = tarfile.TarInfo("../../../../tmp/escaped")
    evil.size = 1
    doc = cd.wait(cd.start(group, cd.revision({"appspec.yml": "version: 0.0\nos: linux\n"}, extra=[evil])))
    assert doc["status"] == "Failed", explain(doc)
    download = events(doc)["DownloadBundle"]
    assert download["status"] == "Failed"
    assert "Refusing to extract" in download["diagnostics"]["message"]
    probe = cd.deploy(group, {"appspec.yml": "version: 0.0\nos: linux\nhooks:\n  ValidateService:\n"
                                             "    - location: probe.sh\n", "probe.sh": script("test ! -e /tmp/escaped")})
    assert probe["status"] == "Succeeded", explain(probe)


def test_hook_timeout_kills_the_script_and_fails_the_event(cd):
    group = cd.group(instances=cd.instances[2:3])
    started = time.monotonic()
    doc = cd.deploy(group, {"appspec.yml": "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n"
                                           "    - location: slow.sh\n      timeout: 2\n",
                            "slow.sh": script("echo going to sleep", "sleep 60")})
    assert time.monotonic() - started < 40
    after = events(doc)["AfterInstall"]
    assert after["status"] == "Failed"
    assert after["diagnostics"]["errorCode"] == "ScriptTimedOut"
    assert "going to sleep" in after["diagnostics"]["logTail"]


def test_hook_runs_as_the_runas_user(cd):
    group = cd.group(instances=cd.instances[2:3])
    doc = cd.deploy(group, {"appspec.yml": "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n"
                                           "    - location: who.sh\n      runas: nobody\n",
                            "who.sh": script("echo user=$(id -un)")})
    assert doc["status"] == "Succeeded", explain(doc)
    tail = events(doc)["ApplicationStart"]["diagnostics"]["logTail"]
    assert "user=nobody" in tail


# ---------------------------------------------------------------- queueing, stop, rollback


def test_deployments_to_one_group_queue_and_a_queued_one_can_be_stopped(cd):
    group = cd.group(instances=cd.instances[:1])
    slow = cd.revision({"appspec.yml": "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n"
                                       "    - location: wait.sh\n", "wait.sh": script("sleep 3")})
    first = cd.start(group, slow)
    second = cd.start(group, slow)
    third = cd.start(group, slow)
    deadline = time.monotonic() + 10
    while cd.cp.client.get(f"/deployments/{second}")["status"] == "Created" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cd.cp.client.get(f"/deployments/{second}")["status"] == "Queued"
    cd.cp.client.post(f"/deployments/{third}/stop")
    assert cd.wait(third)["status"] == "Stopped"
    a, b = cd.wait(first), cd.wait(second)
    assert a["status"] == b["status"] == "Succeeded"
    assert b["startTime"] >= a["completeTime"]


def test_failure_rolls_back_to_the_last_good_revision_as_a_new_deployment(cd):
    group = cd.group(instances=cd.instances[1:2],
                     autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]})
    good = cd.deploy(group, {"appspec.yml": "version: 0.0\nos: linux\n"})
    assert good["status"] == "Succeeded", explain(good)
    bad = cd.deploy(group, {"appspec.yml": "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n"
                                           "    - location: fail.sh\n", "fail.sh": script("echo broken; exit 3")})
    assert bad["status"] == "Failed"
    assert "exit code 3" in events(bad)["ApplicationStart"]["diagnostics"]["message"]
    deadline = time.monotonic() + 20
    while "rollbackDeploymentId" not in cd.cp.client.get(f"/deployments/{bad['deploymentId']}").get(
            "rollbackInfo", {}) and time.monotonic() < deadline:
        time.sleep(0.2)
    rollback_id = cd.cp.client.get(f"/deployments/{bad['deploymentId']}")["rollbackInfo"]["rollbackDeploymentId"]
    rollback = cd.wait(rollback_id)
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == bad["deploymentId"]
    assert rollback["revision"] == good["revision"]
    assert rollback["status"] == "Succeeded", explain(rollback)


# ---------------------------------------------------------------- configurations, one instance failing


CONFIG_CASES = [
    # (configuration, which instance fails (index in fleet order), AWS's result)
    ("CodeDeployDefault.OneAtATime", 0, "Failed"),
    ("CodeDeployDefault.OneAtATime", 2, "Succeeded"),  # a failure on the last instance still succeeds
    ("CodeDeployDefault.HalfAtATime", 0, "Succeeded"),  # 3 instances: needs 2
    ("CodeDeployDefault.AllAtOnce", 1, "Succeeded"),  # needs 1
    ("custom-host-count-3", 1, "Failed"),  # needs all 3
    ("custom-fleet-percent-50", 1, "Succeeded"),  # needs ceil(1.5) = 2
]


def test_one_failing_instance_under_each_configuration(cd):
    for name, kind, value in (("custom-host-count-3", "HOST_COUNT", 3), ("custom-fleet-percent-50", "FLEET_PERCENT", 50)):
        try:
            cd.cp.client.post("/deployment-configs", {"deploymentConfigName": name,
                                                      "minimumHealthyHosts": {"type": kind, "value": value}})
        except Exception as exc:  # noqa: BLE001 - created by an earlier run of this module
            assert "Conflict" in str(exc)
    started = []
    for config, failing, expected in CONFIG_CASES:
        group = cd.group(config)
        loser = cd.instances[failing]["name"]  # deployment order is launch order
        deployment = cd.start(group, cd.revision({
            "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  ValidateService:\n    - location: v.sh\n",
            "v.sh": script(f"[ \"$(hostname)\" != \"{loser}\" ]")}))
        started.append((config, loser, expected, deployment))
    for config, loser, expected, deployment in started:
        doc = cd.wait(deployment, timeout=180)
        failed = [t["name"] for t in doc["targets"] if t["status"] == "Failed"]
        assert failed == [loser], f"{config}: {explain(doc)}"
        assert doc["status"] == expected, f"{config} with {loser} failing: {explain(doc)}"
