"""The seed's pipeline end to end on the real engine, store and git: a push travels
Source -> Build -> Deploy, a failing test stops it at Build, and restarts keep history."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from emulator.cli import demo

pytestmark = pytest.mark.integration
console = Console(force_terminal=False, width=140)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def clone(cp, repo: str, dest: Path) -> Path:
    git(dest.parent, "clone", "-q", f"{cp.settings.control_url}/v1/repos/{repo}", dest.name)
    git(dest, "config", "user.email", "test@pipelocal.local")
    git(dest, "config", "user.name", "pipelocal test")
    return dest


def push(cp, work: Path, message: str, pipeline: str) -> dict:
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    commit = git(work, "rev-parse", "HEAD")
    git(work, "push", "-q", "origin", "HEAD:main")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for summary in cp.client.get(f"/pipelines/{pipeline}/executions")["pipelineExecutionSummaries"]:
            if any(r["revisionId"] == commit for r in summary["artifactRevisions"]):
                return {"commit": commit, "id": summary["pipelineExecutionId"]}
        time.sleep(0.3)
    raise AssertionError(f"no execution started for {commit}")


def wait_execution(cp, execution_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = cp.client.get(f"/executions/{execution_id}")
        if execution["status"] not in ("InProgress", "Stopping"):
            return execution
        time.sleep(1)
    raise AssertionError(f"execution {execution_id} still running after {timeout} s")


def served(cp, tags: dict[str, str] | None = None) -> dict[str, str]:
    """The page each running instance of the demo deployment group serves (other tests' instances
    share the control plane, so only the group's own are asked)."""
    tags = tags or {"Environment": "demo"}
    pages = {}
    for instance in cp.client.get("/instances")["instances"]:
        if instance["state"] == "running" and all(instance["tags"].get(k) == v for k, v in tags.items()):
            pages[instance["name"]] = httpx.get(instance["appUrl"], timeout=5).text
    return pages


@pytest.fixture(scope="module")
def seed_app(control_plane, tmp_path_factory):
    demo.provision(control_plane.client, control_plane.settings, control_plane.store)
    work = clone(control_plane, demo.REPOSITORY, tmp_path_factory.mktemp("seed") / "my-app")
    shutil.copytree(demo.DEMO_DIR / "app", work, dirs_exist_ok=True)
    return work


def test_push_is_built_and_deployed_to_every_instance(control_plane, seed_app):
    pushed = push(control_plane, seed_app, "first release", "demo-pipeline")
    execution = wait_execution(control_plane, pushed["id"])
    stages = {s["stageName"]: s["status"] for s in execution["stages"]}
    assert execution["status"] == "Succeeded", (execution, stages)
    assert stages == {"Source": "Succeeded", "Build": "Succeeded", "Deploy": "Succeeded"}

    built = control_plane.store.get_bytes(demo.SITE_BUCKET, "latest/index.html").decode()
    assert pushed["commit"][:8] in built
    assert control_plane.store.exists(demo.SITE_BUCKET, "latest/app.js")
    pages = served(control_plane)
    assert len(pages) == 2
    assert all(page == built for page in pages.values()), pages

    build_id = next(a["externalExecutionId"] for a in execution["actions"] if a["actionName"] == "Build")
    build = control_plane.client.get(f"/builds/{build_id}")
    phases = [p["phaseType"] for p in build["phases"]]
    assert phases[:4] == ["SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE"]
    assert {"INSTALL", "BUILD", "POST_BUILD", "UPLOAD_ARTIFACTS", "FINALIZING", "COMPLETED"} <= set(phases)
    log = "".join(c["text"] for c in control_plane.client.get(f"/builds/{build_id}/log")["chunks"])
    assert "Running command npm test" in log
    assert "2 tests passed" in log

    deployment_id = next(a["externalExecutionId"] for a in execution["actions"] if a["actionName"] == "Deploy")
    deployment = control_plane.client.get(f"/deployments/{deployment_id}")
    for target in deployment["targets"]:
        events = {e["lifecycleEventName"]: e["status"] for e in target["lifecycleEvents"]}
        # first deployment to this instance: nothing to run, a no-op the agent reports as success
        assert events["ApplicationStop"] == "Succeeded"
        stop = next(e for e in target["lifecycleEvents"] if e["lifecycleEventName"] == "ApplicationStop")
        assert stop["diagnostics"]["logTail"] == ""
        assert events["BeforeInstall"] == events["AfterInstall"] == events["Install"] == "Succeeded"


def test_second_commit_changes_what_is_served(control_plane, seed_app):
    index = seed_app / "src" / "index.html"
    index.write_text(index.read_text().replace("version 1", "version 2"))
    pushed = push(control_plane, seed_app, "change index.html", "demo-pipeline")
    execution = wait_execution(control_plane, pushed["id"])
    assert execution["status"] == "Succeeded"
    pages = served(control_plane)
    assert pages and all("version 2" in p and pushed["commit"][:8] in p for p in pages.values()), pages
    deployment_id = next(a["externalExecutionId"] for a in execution["actions"] if a["actionName"] == "Deploy")
    deployment = control_plane.client.get(f"/deployments/{deployment_id}")
    for target in deployment["targets"]:
        events = {e["lifecycleEventName"]: e["status"] for e in target["lifecycleEvents"]}
        # the previous revision has no ApplicationStop hook, so the event succeeds without scripts
        assert events["ApplicationStop"] == "Succeeded"


@pytest.fixture(scope="module")
def second_pipeline(control_plane, tmp_path_factory):
    """A copy of the demo pipeline watching its own repository, for failure cases."""
    client = control_plane.client
    demo.provision(client, control_plane.settings, control_plane.store)
    client.post("/repositories", {"repositoryName": "broken-app"})
    decl = json.loads((demo.DEMO_DIR / "pipeline.json").read_text())["pipeline"]
    decl["name"] = "broken-pipeline"
    decl["stages"][0]["actions"][0]["configuration"]["RepositoryName"] = "broken-app"
    client.post("/pipelines", {"pipeline": decl})
    work = clone(control_plane, "broken-app", tmp_path_factory.mktemp("broken") / "broken-app")
    shutil.copytree(demo.DEMO_DIR / "app", work, dirs_exist_ok=True)
    return work


def test_failing_npm_test_stops_the_pipeline_at_build(control_plane, second_pipeline):
    test_js = second_pipeline / "test.js"
    test_js.write_text(test_js.read_text().replace('"Hello, pipelocal!"', '"Goodbye, pipelocal!"'))
    pushed = push(control_plane, second_pipeline, "break the tests", "broken-pipeline")
    execution = wait_execution(control_plane, pushed["id"])
    stages = {s["stageName"]: s["status"] for s in execution["stages"]}
    assert execution["status"] == "Failed"
    assert stages == {"Source": "Succeeded", "Build": "Failed"}  # Deploy never entered
    build_id = next(a["externalExecutionId"] for a in execution["actions"] if a["actionName"] == "Build")
    build = control_plane.client.get(f"/builds/{build_id}")
    assert build["buildStatus"] == "FAILED"
    build_phase = next(p for p in build["phases"] if p["phaseType"] == "BUILD")
    assert build_phase["phaseStatus"] == "FAILED"
    assert "npm test" in build_phase["contexts"][0]["message"]
    log = "".join(c["text"] for c in control_plane.client.get(f"/builds/{build_id}/log")["chunks"])
    assert "Goodbye, pipelocal!" in log and "AssertionError" in log
    # AWS still runs post_build after a build failure; the seed's `aws s3 sync ./dist` then fails
    # because `npm run build` never ran, exactly as it would on CodeBuild.
    post = next(p for p in build["phases"] if p["phaseType"] == "POST_BUILD")
    assert post["phaseStatus"] == "FAILED"
    assert "Running command aws s3 sync ./dist" in log
    assert "Running command npm run build" not in log


def test_malformed_buildspec_fails_build_with_file_line_and_key(control_plane, second_pipeline):
    (second_pipeline / "buildspec.yml").write_text(
        "version: 0.2\nphases:\n  build:\n    comands:\n      - echo hi\n")
    pushed = push(control_plane, second_pipeline, "typo in buildspec", "broken-pipeline")
    execution = wait_execution(control_plane, pushed["id"])
    assert execution["status"] == "Failed"
    build_id = next(a["externalExecutionId"] for a in execution["actions"] if a["actionName"] == "Build")
    build = control_plane.client.get(f"/builds/{build_id}")
    failed = next(p for p in build["phases"] if p.get("phaseStatus") == "FAILED")
    message = failed["contexts"][0]["message"]
    assert failed["phaseType"] == "DOWNLOAD_SOURCE"
    assert "buildspec.yml:4" in message and "comands" in message
    assert control_plane.client.healthy()


def test_restart_keeps_history_and_kill_during_build_ends_interrupted(control_plane, second_pipeline):
    before = control_plane.client.get("/pipelines/broken-pipeline/executions")["pipelineExecutionSummaries"]
    (second_pipeline / "buildspec.yml").write_text(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started long build\n      - sleep 120\n")
    pushed = push(control_plane, second_pipeline, "a slow build", "broken-pipeline")
    deadline = time.monotonic() + 120
    build_id = None
    while time.monotonic() < deadline:
        execution = control_plane.client.get(f"/executions/{pushed['id']}")
        build_id = next((a.get("externalExecutionId") for a in execution["actions"]
                         if a["actionName"] == "Build" and a.get("externalExecutionId")), None)
        if build_id and "started long build" in "".join(
                c["text"] for c in control_plane.client.get(f"/builds/{build_id}/log")["chunks"]):
            break
        time.sleep(0.5)
    assert build_id, "the build never reached its first command"
    assert control_plane.client.get(f"/builds/{build_id}")["currentPhase"] == "BUILD"

    control_plane.restart(signal.SIGKILL)

    build = control_plane.client.get(f"/builds/{build_id}")
    assert build["buildStatus"] == "FAILED" and build["buildComplete"]
    assert "interrupted" in json.dumps(build["phases"])
    execution = control_plane.client.get(f"/executions/{pushed['id']}")
    assert execution["status"] == "Failed"
    assert "interrupted" in execution["statusSummary"]
    after = control_plane.client.get("/pipelines/broken-pipeline/executions")["pipelineExecutionSummaries"]
    assert {e["pipelineExecutionId"]: e["status"] for e in before}.items() <= \
        {e["pipelineExecutionId"]: e["status"] for e in after}.items()
    assert "started long build" in "".join(
        c["text"] for c in control_plane.client.get(f"/builds/{build_id}/log")["chunks"])
    from emulator.runtime.container_runtime import LABEL_ROLE
    from emulator.runtime.docker_engine import DockerEngine

    leftovers = DockerEngine(installation=str(control_plane.settings.home)).list({LABEL_ROLE: "build"})
    assert leftovers == []
    # the fleet survived the restart and still serves the demo app
    assert all("version" in page for page in served(control_plane).values())


def test_kill_during_deployment_ends_it_interrupted(control_plane, tmp_path):
    """kill -9 while a hook runs: after the restart the deployment and its instance end Failed
    with the reason "interrupted", and the stored history is intact."""
    import io
    import zipfile

    client = control_plane.client
    instance = client.post("/instances", {"count": 1, "tags": {"Role": "kill-test"}})["instances"][0]
    try:
        bundle = io.BytesIO()
        with zipfile.ZipFile(bundle, "w") as archive:
            archive.writestr("appspec.yml", "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n"
                                            "    - location: slow.sh\n      timeout: 60\n")
            info = zipfile.ZipInfo("slow.sh")
            info.external_attr = 0o755 << 16
            archive.writestr(info, "#!/bin/bash\necho slow hook started\nsleep 30\n")
        control_plane.store.ensure_bucket("kill-test-bucket")
        control_plane.store.put_bytes("kill-test-bucket", "slow.zip", bundle.getvalue())
        client.post("/applications", {"applicationName": "kill-test"})
        client.post("/applications/kill-test/deployment-groups", {
            "deploymentGroupName": "kill-test",
            "ec2TagFilters": [{"Key": "Role", "Value": "kill-test", "Type": "KEY_AND_VALUE"}]})
        deployment = client.post("/deployments", {
            "applicationName": "kill-test", "deploymentGroupName": "kill-test",
            "revision": {"revisionType": "S3", "s3Location": {"bucket": "kill-test-bucket", "key": "slow.zip",
                                                              "bundleType": "zip"}}})
        deployment_id = deployment["deploymentId"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            info = client.get(f"/deployments/{deployment_id}")
            events = {e["lifecycleEventName"]: e["status"] for t in info["targets"] for e in t["lifecycleEvents"]}
            if events.get("BeforeInstall") == "InProgress":
                break
            time.sleep(0.3)
        assert events.get("BeforeInstall") == "InProgress", events

        control_plane.restart(signal.SIGKILL)

        info = client.get(f"/deployments/{deployment_id}")
        assert info["status"] == "Failed"
        assert "interrupted" in info["errorInformation"]["message"]
        target = info["targets"][0]
        assert target["status"] == "Failed"
        events = {e["lifecycleEventName"]: e["status"] for e in target["lifecycleEvents"]}
        assert events["DownloadBundle"] == "Succeeded" and events["BeforeInstall"] == "Failed"
        assert events["AfterInstall"] == "Skipped"
    finally:
        client.delete(f"/instances/{instance['instanceId']}")
