"""CodeBuild through the control plane: projects, StartBuild with overrides, build numbers and
history, Parameter Store / Secrets Manager values masked in the stored log, reports stored on the
build, stop, and a buildspec refused before any container starts."""

from __future__ import annotations

import base64
import io
import time
import zipfile

import pytest

from emulator.cli.client import ControlPlaneError

pytestmark = pytest.mark.integration


def _zip(files: dict[str, str]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return base64.b64encode(buffer.getvalue()).decode()


def _wait(client, build_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        build = client.get(f"/builds/{build_id}")
        if build["buildComplete"]:
            return build
        time.sleep(0.3)
    raise AssertionError(f"build {build_id} did not finish: {build}")


def _log(client, build_id: str) -> str:
    return "".join(c["text"] for c in client.get(f"/builds/{build_id}/log")["chunks"])


@pytest.fixture(scope="module")
def project(control_plane):
    client = control_plane.client
    client.post("/parameters", {"name": "/cb-test/api-url", "value": "https://api.internal.test", "type": "String",
                                "overwrite": True})
    try:
        client.post("/secrets", {"name": "cb-test/token", "secretString": '{"token": "tok-9f8e7d"}'})
    except ControlPlaneError:
        pass  # a rerun against the same data directory
    client.post("/projects", {
        "name": "cb-conformance",
        "environment": {"computeType": "BUILD_GENERAL1_SMALL", "environmentVariables": [
            {"name": "STAGE", "value": "project", "type": "PLAINTEXT"},
            {"name": "API_URL", "value": "/cb-test/api-url", "type": "PARAMETER_STORE"}]},
        "timeoutInMinutes": 5,
    })
    return "cb-conformance"


BUILDSPEC = """version: 0.2
env:
  variables:
    STAGE: buildspec
  secrets-manager:
    TOKEN: cb-test/token:token
phases:
  build:
    commands:
      - echo "stage=$STAGE url=$API_URL token=$TOKEN"
      - test "$TOKEN" = tok-9f8e7d
      - mkdir -p out && printf '<testsuite><testcase classname="c" name="a"/><testcase classname="c" name="b"><failure/></testcase></testsuite>' > out/junit.xml
reports:
  tests:
    files: [out/junit.xml]
"""


def test_start_build_resolves_masks_and_stores_reports(control_plane, project):
    client = control_plane.client
    build = client.post(f"/projects/{project}/builds", {
        "sourceZip": _zip({"buildspec.yml": BUILDSPEC}),
        "environmentVariablesOverride": [{"name": "STAGE", "value": "override", "type": "PLAINTEXT"}],
    })
    done = _wait(client, build["id"])
    log = _log(client, build["id"])
    assert done["buildStatus"] == "SUCCEEDED", log
    assert "stage=override url=*** token=***" in log
    assert "tok-9f8e7d" not in log and "api.internal.test" not in log
    [report] = done["reports"]
    assert report["testSummary"]["total"] == 2 and report["testSummary"]["statusCounts"]["FAILED"] == 1
    phases = [p["phaseType"] for p in done["phases"]]
    assert phases[:4] == ["SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE"]
    assert phases[-2:] == ["FINALIZING", "COMPLETED"]
    assert all("durationInSeconds" in p for p in done["phases"] if p["phaseType"] != "COMPLETED")


def test_build_numbers_history_and_update(control_plane, project):
    client = control_plane.client
    updated = client.request("PATCH", f"/projects/{project}", json={"description": "updated"})
    assert updated["description"] == "updated" and updated["environment"]["computeType"] == "BUILD_GENERAL1_SMALL"
    spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"n=$CODEBUILD_BUILD_NUMBER\"\n"
    first = client.post(f"/projects/{project}/builds", {"sourceZip": _zip({}), "buildspecOverride": spec})
    second = client.post(f"/projects/{project}/builds", {"sourceZip": _zip({}), "buildspecOverride": spec})
    assert second["buildNumber"] == first["buildNumber"] + 1
    _wait(client, first["id"]), _wait(client, second["id"])
    assert f"n={second['buildNumber']}" in _log(client, second["id"])
    history = [b["id"] for b in client.get(f"/projects/{project}/builds")["builds"]]
    assert history.index(second["id"]) < history.index(first["id"])


def test_stop_build(control_plane, project):
    client = control_plane.client
    spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 300\n"
    build = client.post(f"/projects/{project}/builds", {"sourceZip": _zip({}), "buildspecOverride": spec})
    deadline = time.monotonic() + 60
    while client.get(f"/builds/{build['id']}")["currentPhase"] != "BUILD" and time.monotonic() < deadline:
        time.sleep(0.2)
    client.post(f"/builds/{build['id']}/stop")
    done = _wait(client, build["id"])
    assert done["buildStatus"] == "STOPPED"
    assert {p["phaseType"]: p.get("phaseStatus") for p in done["phases"]}["BUILD"] == "STOPPED"


def test_refused_inputs(control_plane, project):
    client = control_plane.client
    with pytest.raises(ControlPlaneError, match="CODEBUILD_"):
        client.post(f"/projects/{project}/builds", {"sourceZip": _zip({}), "environmentVariablesOverride": [
            {"name": "CODEBUILD_BUILD_ID", "value": "x"}]})
    with pytest.raises(ControlPlaneError, match="computeType"):
        client.post("/projects", {"name": "cb-bad", "environment": {"computeType": "BUILD_GENERAL9"}})
    spec = ("version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n"
            "artifacts:\n  files: ['**/*']\n  secondary-artifacts:\n    undeclared:\n      files: ['*']\n")
    build = client.post(f"/projects/{project}/builds", {"sourceZip": _zip({}), "buildspecOverride": spec})
    done = _wait(client, build["id"])
    download = {p["phaseType"]: p for p in done["phases"]}["DOWNLOAD_SOURCE"]
    assert done["buildStatus"] == "FAILED" and download["phaseStatus"] == "FAILED"
    assert "secondary-artifacts.undeclared" in download["contexts"][0]["message"]
    assert "INSTALL" not in {p["phaseType"] for p in done["phases"]}


def test_s3_cache_second_build_restores_what_the_first_saved(control_plane):
    client = control_plane.client
    client.post("/projects", {"name": "cb-s3-cache", "cache": {"type": "S3", "location": "cb-cache/deps"},
                              "timeoutInMinutes": 5})
    spec = ("version: 0.2\nphases:\n  build:\n    commands:\n"
            "      - test -f vendor/lib && echo \"restored=$(cat vendor/lib)\" || echo restored=none\n"
            "      - mkdir -p vendor && echo \"$CODEBUILD_BUILD_NUMBER\" > vendor/lib\n"
            "cache:\n  key: vendor-v1\n  paths: ['vendor/**/*']\n")
    logs = []
    for _ in range(2):
        build = client.post("/projects/cb-s3-cache/builds", {"sourceZip": _zip({}), "buildspecOverride": spec})
        assert _wait(client, build["id"])["buildStatus"] == "SUCCEEDED"
        logs.append(_log(client, build["id"]))
    assert "restored=none" in logs[0], logs[0]
    assert "restored=1\n" in logs[1], logs[1]
    assert control_plane.store.exists("cb-cache", "deps/index.json")


def test_s3_artifacts_primary_zip_and_secondary_files(control_plane):
    client = control_plane.client
    client.post("/projects", {
        "name": "cb-artifacts", "timeoutInMinutes": 5,
        "artifacts": {"type": "S3", "location": "cb-out", "path": "releases", "namespaceType": "BUILD_ID",
                      "packaging": "ZIP", "name": "app.zip"},
        "secondaryArtifacts": [{"artifactIdentifier": "docs", "type": "S3", "location": "cb-out", "path": "docs",
                                "packaging": "NONE", "name": "site"}],
    })
    spec = ("version: 0.2\nphases:\n  build:\n    commands:\n"
            "      - mkdir -p dist docs && echo app > dist/app.js && echo guide > docs/guide.md\n"
            "artifacts:\n  files: ['**/*']\n  base-directory: dist\n"
            "  secondary-artifacts:\n    docs:\n      files: ['docs/*.md']\n      discard-paths: yes\n")
    build = client.post("/projects/cb-artifacts/builds", {"sourceZip": _zip({}), "buildspecOverride": spec})
    done = _wait(client, build["id"])
    assert done["buildStatus"] == "SUCCEEDED", _log(client, build["id"])
    suffix = build["id"].split(":", 1)[1]
    key = f"releases/{suffix}/app.zip"
    assert done["artifacts"]["location"] == f"arn:aws:s3:::cb-out/{key}"
    with zipfile.ZipFile(io.BytesIO(control_plane.store.get_bytes("cb-out", key))) as archive:
        assert archive.namelist() == ["app.js"]
    assert control_plane.store.get_bytes("cb-out", "docs/site/guide.md") == b"guide\n"
    assert done["secondaryArtifacts"][0]["artifactIdentifier"] == "docs"


def test_build_batch_graph_through_the_control_plane(control_plane, project):
    client = control_plane.client
    spec = ("version: 0.2\nbatch:\n  build-graph:\n"
            "    - identifier: unit\n      env:\n        variables: {KIND: unit}\n"
            "    - identifier: broken\n      buildspec: broken.yml\n      ignore-failure: true\n"
            "    - identifier: package\n      depend-on: [unit]\n"
            "phases:\n  build:\n    commands:\n      - echo \"kind=${KIND:-none}\"\n")
    source = _zip({"buildspec.yml": spec, "broken.yml": "version: 0.2\nphases:\n  build:\n    commands:\n      - exit 9\n"})
    batch = client.post(f"/projects/{project}/build-batches", {"sourceZip": source})
    deadline = time.monotonic() + 180
    while not batch["complete"] and time.monotonic() < deadline:
        time.sleep(0.5)
        batch = client.get(f"/build-batches/{batch['id']}")
    groups = {g["identifier"]: g["currentBuildSummary"]["buildStatus"] for g in batch["buildGroups"]}
    assert groups == {"unit": "SUCCEEDED", "broken": "FAILED", "package": "SUCCEEDED"}
    assert batch["buildBatchStatus"] == "SUCCEEDED"  # the failing build ignores failure
    unit_arn = next(g for g in batch["buildGroups"] if g["identifier"] == "unit")["currentBuildSummary"]["arn"]
    assert "kind=unit" in _log(client, unit_arn.split("build/", 1)[1])
    with pytest.raises(ControlPlaneError, match="batch"):
        client.post(f"/projects/{project}/build-batches", {"sourceZip": _zip({"buildspec.yml": BUILDSPEC})})


# ---------------------------------------------------------------- batch builds through the AWS API

BATCH_SPEC = """version: 0.2
batch:
  build-graph:
    - identifier: first
      env:
        variables: {OUTCOME: pass}
    - identifier: second
      env:
        variables: {OUTCOME: fail}
    - identifier: third
      depend-on: [second]
phases:
  build:
    commands:
      - sleep 2
      - test "${OUTCOME:-pass}" = pass
"""


def _batch_done(cb, batch_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = cb.batch_get_build_batches(ids=[batch_id])["buildBatches"][0]
        if batch["complete"]:
            return batch
        time.sleep(0.5)
    raise AssertionError(f"batch {batch_id} did not finish: {batch}")


def test_build_batches_run_together_retry_stop_delete_and_restrictions(control_plane):
    import boto3
    from botocore.exceptions import ClientError

    cb = boto3.client("codebuild", endpoint_url=control_plane.settings.control_url, region_name="us-east-1",
                      aws_access_key_id="any", aws_secret_access_key="thing")
    cb.create_project(name="cb-batches", source={"type": "NO_SOURCE", "buildspec": BATCH_SPEC},
                      artifacts={"type": "NO_ARTIFACTS"}, serviceRole="arn:aws:iam::000000000000:role/cb",
                      environment={"type": "LINUX_CONTAINER", "image": "pipelocal/build:1",
                                   "computeType": "BUILD_GENERAL1_SMALL"},
                      buildBatchConfig={"serviceRole": "arn:aws:iam::000000000000:role/cb",
                                        "restrictions": {"maximumBuildsAllowed": 3}})
    started = cb.start_build_batch(projectName="cb-batches")["buildBatch"]
    assert started["buildBatchStatus"] == "IN_PROGRESS" and started["projectName"] == "cb-batches"
    batch = _batch_done(cb, started["id"])
    groups = {g["identifier"]: g for g in batch["buildGroups"]}
    assert {i: (g.get("currentBuildSummary") or {}).get("buildStatus") for i, g in groups.items()} == \
        {"first": "SUCCEEDED", "second": "FAILED", "third": "STOPPED"}
    assert batch["buildBatchStatus"] == "FAILED"
    assert [p["phaseType"] for p in batch["phases"]] == ["SUBMITTED", "DOWNLOAD_BATCHSPEC", "IN_PROGRESS", "FAILED"]
    assert "arn" not in groups["third"]["currentBuildSummary"]  # it never ran
    first, second = (cb.batch_get_builds(ids=[groups[i]["currentBuildSummary"]["arn"].split(":build/", 1)[1]])["builds"][0]
                     for i in ("first", "second"))
    assert first["buildBatchArn"] == batch["arn"]
    # builds with nothing to wait for run together: each was started before the other ended
    assert second["startTime"] < first["endTime"] and first["startTime"] < second["endTime"]

    assert started["id"] in cb.list_build_batches_for_project(projectName="cb-batches")["ids"]
    assert started["id"] in cb.list_build_batches(filter={"status": "FAILED"})["ids"]
    assert started["id"] not in cb.list_build_batches(filter={"status": "SUCCEEDED"})["ids"]
    assert cb.batch_get_build_batches(ids=["cb-batches:nope"])["buildBatchesNotFound"] == ["cb-batches:nope"]

    retried = cb.retry_build_batch(id=started["id"], retryType="RETRY_FAILED_BUILDS")["buildBatch"]
    assert retried["buildBatchStatus"] == "IN_PROGRESS" and retried["id"] == started["id"]
    again = {g["identifier"]: g for g in _batch_done(cb, started["id"])["buildGroups"]}
    assert again["first"]["currentBuildSummary"]["arn"] == groups["first"]["currentBuildSummary"]["arn"]  # kept
    assert [s["arn"] for s in again["second"]["priorBuildSummaryList"]] == [groups["second"]["currentBuildSummary"]["arn"]]
    assert again["second"]["currentBuildSummary"]["arn"] != groups["second"]["currentBuildSummary"]["arn"]

    too_many = cb.start_build_batch(projectName="cb-batches", buildspecOverride=BATCH_SPEC,
                                    buildBatchConfigOverride={"restrictions": {"maximumBuildsAllowed": 2}})["buildBatch"]
    refused = _batch_done(cb, too_many["id"])
    assert refused["buildBatchStatus"] == "FAILED"
    download = next(p for p in refused["phases"] if p["phaseType"] == "DOWNLOAD_BATCHSPEC")
    assert download["phaseStatus"] == "FAILED" and "maximumBuildsAllowed (2)" in download["contexts"][0]["message"]
    assert all("currentBuildSummary" not in g for g in refused["buildGroups"])

    slow = cb.start_build_batch(projectName="cb-batches", buildspecOverride=BATCH_SPEC.replace("sleep 2", "sleep 60"))["buildBatch"]
    with pytest.raises(ClientError) as info:
        cb.delete_build_batch(id=slow["id"])
    assert info.value.response["Error"]["Code"] == "InvalidInputException"
    deadline = time.monotonic() + 60
    while not any((g.get("currentBuildSummary") or {}).get("arn") for g in
                  cb.batch_get_build_batches(ids=[slow["id"]])["buildBatches"][0]["buildGroups"]):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    cb.stop_build_batch(id=slow["id"])
    stopped = _batch_done(cb, slow["id"], timeout=60)
    assert stopped["buildBatchStatus"] == "STOPPED" and stopped["phases"][-1]["phaseType"] == "STOPPED"
    assert {(g.get("currentBuildSummary") or {}).get("buildStatus") for g in stopped["buildGroups"]} == {"STOPPED"}

    deleted = cb.delete_build_batch(id=started["id"])
    assert len(deleted["buildsDeleted"]) == 3  # first, and second twice (the retry's and the one it replaced)
    assert cb.batch_get_builds(ids=deleted["buildsDeleted"])["buildsNotFound"] == deleted["buildsDeleted"]
    assert cb.batch_get_build_batches(ids=[started["id"]])["buildBatchesNotFound"] == [started["id"]]
