"""`pipelocal deploy` and `pipelocal deployments` against a real control plane, plus an instance that
dies in the middle of a deployment."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.integration.test_codedeploy_conformance import BUCKET, bundle, events, explain, script

pytestmark = pytest.mark.integration


def pipelocal(cp, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator.cli.main", *args], env={**cp.env, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=300)


def test_deploy_a_directory_to_a_fresh_instance_then_a_subset_of_events_with_a_custom_appspec(control_plane, tmp_path):
    cp = control_plane
    site = tmp_path / "site"
    (site / "hooks").mkdir(parents=True)
    (site / "appspec.yml").write_text("version: 0.0\nos: linux\nfiles:\n  - source: index.html\n"
                                      "    destination: /srv/local\nhooks:\n  ApplicationStart:\n"
                                      "    - location: hooks/start.sh\n")
    (site / "index.html").write_text("local\n")
    (site / "hooks" / "start.sh").write_text(script("echo started from a directory"))
    (site / "hooks" / "start.sh").chmod(0o755)
    first = pipelocal(cp, "deploy", str(site))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "launched local-" in first.stdout
    for event in ("ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall",
                  "ApplicationStart", "ValidateService"):
        assert event in first.stdout
    assert ": Succeeded" in first.stdout  # the final table's title
    name = first.stdout.split("launched ", 1)[1].split()[0]

    (site / "custom.yml").write_text("version: 0.0\nos: linux\nhooks:\n  SmokeTest:\n"
                                     "    - location: hooks/smoke.sh\n")
    (site / "hooks" / "smoke.sh").write_text(script("echo smoke; exit 4"))
    (site / "hooks" / "smoke.sh").chmod(0o755)
    second = pipelocal(cp, "deploy", str(site), "--instance", name, "--appspec-filename", "custom.yml",
                       "--events", "SmokeTest")
    assert second.returncode == 1, second.stdout + second.stderr
    assert "SmokeTest" in second.stdout and "exit code 4" in second.stdout and "smoke" in second.stdout
    assert "ApplicationStart" not in second.stdout  # only the named events (and the agent's own) ran

    bad = pipelocal(cp, "deploy", str(tmp_path / "missing"))
    assert bad.returncode != 0 and "neither a directory" in (bad.stdout + bad.stderr)
    bad_tag = pipelocal(cp, "instances", "launch", "--tag", "novalue")
    assert bad_tag.returncode != 0 and "Key=Value" in (bad_tag.stdout + bad_tag.stderr)


def test_stop_from_the_cli_and_an_instance_that_dies_mid_deployment(control_plane):
    cp = control_plane
    cp.store.ensure_bucket(BUCKET)
    pair = cp.client.post("/instances", {"count": 2, "tags": {"DiesMid": "yes"}})["instances"]
    app = "dies-mid"
    cp.client.post("/applications", {"applicationName": app})
    cp.client.post(f"/applications/{app}/deployment-groups",
                   {"deploymentGroupName": "pair", "deploymentConfigName": "CodeDeployDefault.AllAtOnce",
                    "ec2TagFilters": [{"Key": "DiesMid", "Type": "KEY_ONLY"}]})
    victim = pair[1]
    cp.store.put_bytes(BUCKET, "dies.tgz", bundle({
        "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: b.sh\n",
        "b.sh": script(f"if [ \"$(hostname)\" = \"{victim['name']}\" ]; then sleep 60; fi")}))
    revision = {"revisionType": "S3", "s3Location": {"bucket": BUCKET, "key": "dies.tgz", "bundleType": "tgz"}}

    def start() -> str:
        return cp.client.post("/deployments", {"applicationName": app, "deploymentGroupName": "pair",
                                               "revision": revision})["deploymentId"]

    def wait_for(deployment_id: str, predicate, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            doc = cp.client.get(f"/deployments/{deployment_id}")
            if predicate(doc):
                return doc
            time.sleep(0.2)
        raise AssertionError(explain(doc))

    def victim_in_before_install(doc: dict) -> bool:
        return any(t["instanceId"] == victim["instanceId"] and events({"targets": [t]})["BeforeInstall"]["status"]
                   == "InProgress" for t in doc["targets"])

    stopped = start()
    wait_for(stopped, victim_in_before_install)
    out = pipelocal(cp, "deployments", "stop", stopped)
    assert out.returncode == 0 and "stop requested" in out.stdout
    # the running hook finishes (or is cut short) on its instance; the deployment ends Stopped
    cp.client.delete(f"/instances/{victim['instanceId']}")  # also unblocks the sleeping hook quickly
    assert wait_for(stopped, lambda d: d["status"] in ("Succeeded", "Failed", "Stopped"))["status"] == "Stopped"

    survivor_only = cp.client.post("/instances", {"count": 1, "tags": {"DiesMid": "yes"}})["instances"][0]
    victim = survivor_only
    cp.store.put_bytes(BUCKET, "dies.tgz", bundle({
        "appspec.yml": "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: b.sh\n",
        "b.sh": script(f"if [ \"$(hostname)\" = \"{victim['name']}\" ]; then sleep 60; fi")}))
    dies = start()
    wait_for(dies, victim_in_before_install)
    cp.client.delete(f"/instances/{victim['instanceId']}")
    doc = wait_for(dies, lambda d: d["status"] in ("Succeeded", "Failed", "Stopped"), timeout=40)
    by_id = {t["instanceId"]: t for t in doc["targets"]}
    dead = events({"targets": [by_id[victim["instanceId"]]]})["BeforeInstall"]
    assert dead["status"] == "Failed" and "stopped responding" in dead["diagnostics"]["message"]
    assert by_id[pair[0]["instanceId"]]["status"] == "Succeeded"
    assert doc["status"] == "Succeeded", explain(doc)  # AllAtOnce: one healthy instance is enough
