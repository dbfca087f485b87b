"""The web console in a real browser (headless Chromium driven by Selenium) against the real
control plane: a push moves the stage boxes, the build log streams in, the deployment grid fills,
a bad release shows its rollback, unknown ids show a not-found page, and a closed stream comes back
by itself. Screenshots go to test-artifacts/console-*.png."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from emulator.cli import demo
from tests.integration.test_seed_pipeline import clone, push, wait_execution

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PIPELINE = "console-pipeline"
REPOSITORY = "console-app"


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium and chromedriver are missing: run scripts/setup.sh (it installs chromium and "
                    "chromium-driver from Debian)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path keeps Selenium Manager from looking for (and downloading) one.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def console_app(control_plane, tmp_path_factory):
    """The demo app in its own repository and pipeline, deploying to the session's demo fleet."""
    client = control_plane.client
    demo.provision(client, control_plane.settings, control_plane.store)
    client.post("/repositories", {"repositoryName": REPOSITORY})
    decl = json.loads((demo.DEMO_DIR / "pipeline.json").read_text())["pipeline"]
    decl["name"] = PIPELINE
    decl["stages"][0]["actions"][0]["configuration"]["RepositoryName"] = REPOSITORY
    client.post("/pipelines", {"pipeline": decl})
    work = clone(control_plane, REPOSITORY, tmp_path_factory.mktemp("console") / REPOSITORY)
    shutil.copytree(demo.DEMO_DIR / "app", work, dirs_exist_ok=True)
    return work


def until(driver, condition, timeout: float = 120, what: str = "condition"):
    """Polls `condition(driver)` until it returns something truthy; fails naming what was awaited."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition(driver)
        except Exception as exc:  # noqa: BLE001 - the DOM may be mid-render; try again
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    shot(driver, "timeout")
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"console-{name}.png"))


def full_shot(driver, name: str, width: int = 1280) -> None:
    driver.set_window_size(width, 1000)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(height + 100, 600), 4000))
    driver.execute_script("window.scrollTo(0, 0)")
    shot(driver, name)
    driver.set_window_size(1280, 1000)


def go(driver, base: str, hash_: str) -> None:
    if driver.current_url.startswith(base):
        driver.execute_script("location.hash = arguments[0]", hash_)
    else:
        driver.get(f"{base}/{hash_}")
    until(driver, lambda d: d.execute_script("return document.getElementById('main').dataset.route") == hash_, 30,
          f"the page {hash_}")


def js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def click(driver, by: str, selector: str, timeout: float = 20) -> None:
    """Clicks what `selector` finds, again if a live refresh replaced it in between."""
    from selenium.common.exceptions import StaleElementReferenceException

    def clicked(d):
        try:
            d.find_element(by, selector).click()
            return True
        except StaleElementReferenceException:
            return False

    until(driver, clicked, timeout, f"a clickable {selector}")


def text(driver, selector: str) -> str:
    """An element's text in one step (see `attr`)."""
    return js(driver, "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", selector)


def attr(driver, selector: str, name: str) -> str | None:
    """Reads an attribute in one step: a live refresh may replace the element between two steps."""
    return js(driver, "const e = document.querySelector(arguments[0]); return e && e.getAttribute(arguments[1]);",
              selector, name)


def stage_states(driver) -> dict[str, tuple[str, str]]:
    return js(driver, """
        const out = {};
        for (const s of document.querySelectorAll('section.stage'))
          out[s.dataset.stage] = [s.dataset.status, s.dataset.execution || '',
                                  s.querySelector('header .status .word').textContent];
        return out;""")


def js_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]


def test_a_push_moves_the_stages_streams_the_build_log_and_fills_the_grid(control_plane, console_app, browser):
    base = control_plane.settings.control_url
    go(browser, base, f"#/pipelines/{PIPELINE}")
    assert browser.find_element("css selector", "#main h1").text == PIPELINE
    assert "Not run yet" in browser.find_element("css selector", "section.stage").text
    until(browser, lambda d: d.find_element("id", "live").get_attribute("data-state") == "open", 15, "the live feed")
    js(browser, "window.__sameDocument = true")  # survives only if nothing reloads the page

    pushed = push(control_plane, console_app, "console release", PIPELINE)
    seen: set[tuple[str, str]] = set()

    def build_running(d):
        states = stage_states(d)
        for stage, (status, execution, word) in states.items():
            if execution == pushed["id"]:
                assert status == word  # the word shown is the status, not only a colour
                seen.add((stage, status))
        return d.find_elements("css selector", "section.stage[data-stage=Build] a[data-build]")

    until(browser, build_running, 60, "the Build stage to show its build link")
    shot(browser, "pipeline-running")
    assert ("Source", "Succeeded") in seen
    assert ("Build", "InProgress") in seen
    assert pushed["commit"][:8] in text(browser, "section.stage[data-stage=Source]")
    assert "console release" in text(browser, "section.stage[data-stage=Source]")

    # the build page: the log streams in without a reload
    click(browser, "css selector", "section.stage[data-stage=Build] a[data-build]")
    until(browser, lambda d: d.find_elements("css selector", "pre.log"), 20, "the build page")
    assert js(browser, "return window.__sameDocument") is True
    until(browser, lambda d: "Running command npm test" in d.find_element("css selector", "pre.log").text, 90,
          "the build log to show npm test")
    until(browser, lambda d: d.find_element("css selector", "pre.log").get_attribute("data-state") == "complete",
          90, "the build log to end")
    log = browser.find_element("css selector", "pre.log").text
    assert "2 tests passed" in log
    until(browser, lambda d: d.find_element("css selector", "[data-field=status]").text.endswith("SUCCEEDED"), 30,
          "the build status")
    rows = js(browser, """return [...document.querySelectorAll('table.phases tbody tr')].map(
        (r) => [r.dataset.phase, r.dataset.status, r.children[3].innerText]);""")
    phases = {phase: status for phase, status, _ in rows}
    assert phases["BUILD"] == "SUCCEEDED" and phases["INSTALL"] == "SUCCEEDED", phases
    assert any(took.endswith(" s") for _, _, took in rows), rows
    full_shot(browser, "build")

    # the execution page, then its deployment: the grid fills in
    go(browser, base, f"#/executions/{pushed['id']}")
    deployment_id = until(browser, lambda d: attr(d, "a[data-deployment]", "data-deployment"), 90,
                          "the Deploy action to start a deployment")
    click(browser, "css selector", "a[data-deployment]")
    until(browser, lambda d: d.find_elements("css selector", "table.grid"), 30, "the deployment grid")
    until(browser, lambda d: d.find_element("css selector", "[data-field=status]").text.endswith("Succeeded"), 90,
          "the deployment to succeed")

    def grid_filled(d):
        cells = js(d, """return [...document.querySelectorAll('table.grid td[data-event]')].map(
            (c) => [c.dataset.instance, c.dataset.event, c.dataset.status]);""")
        return cells and all(status in ("Succeeded", "Skipped") for _, _, status in cells) and cells

    cells = until(browser, grid_filled, 30, "every lifecycle event to finish")
    assert len({instance for instance, _, _ in cells}) == 2
    assert {event for _, event, _ in cells} >= {"DownloadBundle", "Install", "AfterInstall"}
    assert "one instance at a time over 2" in text(browser, "[data-field=configuration]")
    until(browser, lambda d: d.find_element("css selector", "td[data-event=AfterInstall] button").send_keys("\n")
          or True, 10, "Enter on the AfterInstall cell")  # the keyboard, not the mouse
    until(browser, lambda d: "web server started" in text(d, ".output pre.log"), 20, "the script output")
    assert js(browser, "return document.activeElement.tagName") == "H3"  # focus follows to the output
    assert js(browser, "return window.__sameDocument") is True
    full_shot(browser, "deployment")

    execution = wait_execution(control_plane, pushed["id"], 120)
    assert execution["status"] == "Succeeded"
    go(browser, base, f"#/pipelines/{PIPELINE}")
    until(browser, lambda d: all(s[0] == "Succeeded" and s[1] == pushed["id"] for s in stage_states(d).values()),
          30, "every stage box to show this execution Succeeded")
    row = browser.find_element("css selector", f"tr[data-execution='{pushed['id']}']")
    assert "Succeeded" in row.text and pushed["commit"][:8] in row.text
    full_shot(browser, "pipeline")
    full_shot(browser, "pipeline-phone", width=390)

    go(browser, base, "#/fleet")
    rows = browser.find_elements("css selector", "table.fleet tbody tr")
    assert len(rows) >= 2
    assert all(deployment_id in r.find_element("css selector", "[data-field=revision]").text for r in rows[:2])
    assert "Environment=demo" in rows[0].text and "Open the app" in rows[0].text
    full_shot(browser, "fleet")
    go(browser, base, "#/metrics")
    until(browser, lambda d: f"Deployment {deployment_id} Succeeded" in js(
        d, "return [...document.querySelectorAll('svg.chart g.marker text')].map(t => t.textContent).join('\\n')"),
        30, "the deployment's marker on the metrics page")
    assert js_errors(browser) == []


def test_unknown_ids_show_a_not_found_page(control_plane, browser):
    base = control_plane.settings.control_url
    for hash_, needle in (("#/pipelines/no-such-pipeline", "no-such-pipeline"),
                          ("#/executions/00000000-0000-0000-0000-000000000000", "00000000-0000"),
                          ("#/builds/nope:123", "nope:123"), ("#/deployments/d-NOTHERE", "d-NOTHERE"),
                          ("#/no/such/page", "#/no/such/page")):
        go(browser, base, hash_)
        page = browser.find_element("css selector", "[data-page=not-found]")
        assert browser.find_element("css selector", "#main h1").text == "Not found", hash_
        assert needle in page.text, (hash_, page.text)
        assert page.find_element("css selector", "a[href='#/pipelines']")
    shot(browser, "not-found")
    assert js_errors(browser) == []


def test_a_closed_stream_reconnects_and_live_updates_continue(control_plane, console_app, browser):
    base = control_plane.settings.control_url
    go(browser, base, f"#/pipelines/{PIPELINE}")
    until(browser, lambda d: d.find_element("id", "live").get_attribute("data-state") == "open", 15, "the live feed")
    before = int(browser.find_element("id", "live").get_attribute("data-connections"))
    js(browser, "window.pipelocalConsole.feed.source.close()")
    until(browser, lambda d: int(d.find_element("id", "live").get_attribute("data-connections")) > before
          and d.find_element("id", "live").get_attribute("data-state") == "open", 15, "the stream to reopen")

    rows_before = len(browser.find_elements("css selector", "table.history tbody tr"))
    click(browser, "xpath", "//button[normalize-space()='Release change']")
    until(browser, lambda d: len(d.find_elements("css selector", "table.history tbody tr")) == rows_before + 1, 20,
          "the new execution to appear in the history through the reopened stream")
    assert attr(browser, "table.history tbody tr", "data-status") == "InProgress"
    click(browser, "css selector", "table.history tbody tr a")
    click(browser, "xpath", "//button[normalize-space()='Stop execution']")
    until(browser, lambda d: d.find_element("css selector", "[data-field=status]").text.strip().endswith(
        ("Stopping", "Stopped")), 20, "the execution to stop")
    shot(browser, "stopping")


def test_a_bad_release_shows_its_rollback(control_plane, console_app, browser):
    base = control_plane.settings.control_url
    script = console_app / "scripts" / "start_server.sh"
    script.write_text("#!/bin/bash\necho 'refusing to start' >&2\nexit 1\n")
    pushed = push(control_plane, console_app, "a release whose server does not start", PIPELINE)
    go(browser, base, f"#/executions/{pushed['id']}")
    marker = "section.stage[data-stage=Deploy] .rollback"
    rollback_id = until(browser, lambda d: attr(d, marker, "data-rollback"), 240, "the rollback marker on Deploy")
    assert "Rolled back by" in js(browser, "return document.querySelector(arguments[0]).textContent", marker)
    until(browser, lambda d: attr(d, "section.stage[data-stage=Deploy]", "data-status") == "Failed", 60,
          "the Deploy stage to fail")
    full_shot(browser, "rollback-execution")

    failed_id = attr(browser, "section.stage[data-stage=Deploy] a[data-deployment]", "data-deployment")
    go(browser, base, f"#/deployments/{failed_id}")
    click(browser, "css selector", "td[data-event=AfterInstall][data-status=Failed] button")
    until(browser, lambda d: "refusing to start" in text(d, ".output pre.log"), 20, "the failed script's output")
    full_shot(browser, "rollback-failed-deployment")
    click(browser, "css selector", f".rollback a[href='#/deployments/{rollback_id}']")
    until(browser, lambda d: failed_id in text(d, ".rollback[data-rollback-of]"), 20,
          "the rollback deployment's link back")
    full_shot(browser, "rollback-deployment")
    full_shot(browser, "rollback-deployment-phone", width=390)
    settle_rollback(control_plane, failed_id)
    script.write_text((demo.DEMO_DIR / "app" / "scripts" / "start_server.sh").read_text())
    assert js_errors(browser) == []


def test_retry_stage_from_the_page_runs_the_failed_stage_again(control_plane, console_app, browser):
    """Runs after the bad release: its Deploy stage failed, so Retry stage deploys the same revision again."""
    base = control_plane.settings.control_url
    latest = control_plane.client.get(f"/pipelines/{PIPELINE}/executions")["pipelineExecutionSummaries"][0]
    assert latest["status"] == "Failed"
    go(browser, base, f"#/executions/{latest['pipelineExecutionId']}")
    link = "section.stage[data-stage=Deploy] a[data-deployment]"
    first = attr(browser, link, "data-deployment")
    click(browser, "css selector", "section.stage[data-stage=Deploy] header button")
    until(browser, lambda d: attr(d, link, "data-deployment") not in (None, first), 60,
          "the retried Deploy stage to start a new deployment")
    until(browser, lambda d: attr(d, "section.stage[data-stage=Deploy]", "data-status") == "Failed", 120,
          "the retried stage to fail again (same bad revision)")
    until(browser, lambda d: attr(d, "[data-field=status] .status", "data-status") == "Failed", 30,
          "the execution to show Failed again")
    shot(browser, "retried")
    settle_rollback(control_plane, attr(browser, link, "data-deployment"))


def settle_rollback(control_plane, deployment_id: str) -> None:
    """Waits for the rollback a failed deployment started, so nothing is in flight afterwards."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        info = control_plane.client.get(f"/deployments/{deployment_id}").get("rollbackInfo") or {}
        rollback = info.get("rollbackDeploymentId")
        if rollback and control_plane.client.get(f"/deployments/{rollback}")["status"] in ("Succeeded", "Failed",
                                                                                           "Stopped"):
            return
        time.sleep(0.5)
    raise AssertionError(f"the rollback of {deployment_id} did not finish within 120 s")


def test_a_manual_approval_is_approved_from_the_page(control_plane, browser, tmp_path_factory):
    base = control_plane.settings.control_url
    client = control_plane.client
    client.post("/repositories", {"repositoryName": "console-approval"})
    client.post("/pipelines", {"pipeline": {
        "name": "console-approval", "roleArn": "arn:aws:iam::000000000000:role/CodePipelineServiceRole",
        "artifactStore": {"type": "S3", "location": "codepipeline-artifacts-pipelocal"},
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Source", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit",
                                                   "version": "1"},
                "configuration": {"RepositoryName": "console-approval", "BranchName": "main"},
                "outputArtifacts": [{"name": "Src"}]}]},
            {"name": "Approve", "actions": [{
                "name": "Release", "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual",
                                                    "version": "1"}}]},
        ]}})
    work = clone(control_plane, "console-approval", tmp_path_factory.mktemp("approval") / "console-approval")
    (work / "README.md").write_text("approve me\n")
    go(browser, base, "#/pipelines/console-approval")
    pushed = push(control_plane, work, "needs an approval", "console-approval")
    until(browser, lambda d: d.find_elements("css selector", "section.stage[data-stage=Approve] .approval input"),
          30, "the approval controls")
    js(browser, """const input = document.querySelector('section.stage[data-stage=Approve] .approval input');
                   input.focus();""")
    browser.switch_to.active_element.send_keys("looks good")  # typed into whatever has focus, across refreshes
    full_shot(browser, "approval")
    click(browser, "xpath", "//section[@data-stage='Approve']//button[normalize-space()='Approve']")
    until(browser, lambda d: stage_states(d)["Approve"][:2] == ["Succeeded", pushed["id"]], 30,
          "the Approve stage to succeed")
    until(browser, lambda d: "looks good" in text(d, "section.stage[data-stage=Approve]"), 20,
          "the approval comment in the action summary")
    assert wait_execution(control_plane, pushed["id"], 30)["status"] == "Succeeded"

    into = ".transition[data-into=Approve]"
    click(browser, "css selector", f"{into} button")
    until(browser, lambda d: attr(d, into, "data-enabled") == "false", 20,
          "the transition into Approve to show disabled")
    assert "disabled from the console" in text(browser, into)
    state = client.get("/pipelines/console-approval/state")["stageStates"][1]["inboundTransitionState"]
    assert state["enabled"] is False
    click(browser, "css selector", f"{into} button")
    until(browser, lambda d: attr(d, into, "data-enabled") == "true", 20,
          "the transition into Approve to show enabled again")
    assert js_errors(browser) == []
