"""Traffic in the console, in a real browser against the real control plane: the load balancers
page shows a listener's weights and each target's health and follows a weight change without a
reload; a blue/green release shows each instance's side, its steps as they happen, and is continued
(reroute, then the end of the termination wait) from the deployment page.
Screenshots go to test-artifacts/console-traffic-*.png."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid

import pytest

from tests.integration.test_console import browser, click, full_shot, go, js, js_errors, text, until  # noqa: F401 - fixture
from tests.integration.test_traffic_deployments import TAG, Traffic, app_files

pytestmark = pytest.mark.integration
SCALE = 30  # a 10 s health check interval is a third of a real second; a 120-minute wait is 4 real minutes
BLUE_GREEN = {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}


@pytest.fixture(scope="module")
def served(control_plane, tmp_path_factory):
    """One instance of our own serving "version 1" on port 80, at time scale 30."""
    before = control_plane.client.get("/cloudwatch/settings")["timeScale"]["factor"]
    control_plane.client.post("/cloudwatch/settings", {"timeScale": SCALE})
    traffic = Traffic(control_plane, tmp_path_factory.mktemp("console-traffic"))
    value = f"console-{uuid.uuid4().hex[:6]}"
    instance = traffic.launch(1, value)[0]
    traffic.serve_first_version([instance], "1")
    made = {"lbs": [], "tgs": []}
    yield {"traffic": traffic, "instance": instance, "tag": value, "made": made}
    client = control_plane.client
    control_plane.client.post("/cloudwatch/settings", {"timeScale": before})
    for name in made["lbs"]:
        client.delete(f"/elb/load-balancers/{name}")
    for inst in client.get("/instances")["instances"]:
        if (inst.get("tags") or {}).get(TAG) == value:
            client.delete(f"/instances/{inst['instanceId']}")
    for name in made["tgs"]:
        try:
            client.delete(f"/elb/target-groups/{name}")
        except Exception:  # noqa: BLE001 - a target group may still drain; the session ends anyway
            pass


def weights_shown(driver, lb: str) -> str:
    return text(driver, f"section[data-load-balancer='{lb}'] .weight-text").split(" (weights")[0]


def target_rows(driver, tg: str) -> dict[str, tuple[str, str, str]]:
    """instance id -> (data-state, the health word shown, the reason shown) in target group `tg`."""
    rows = js(driver, """return [...document.querySelectorAll(`article[data-target-group='${arguments[0]}'] tbody tr`)]
        .map((r) => [r.dataset.instance, r.dataset.state, r.querySelector('[data-field=health] .word').textContent,
                     r.querySelector('[data-field=reason]').innerText]);""", tg)
    return {i: (state, word, reason) for i, state, word, reason in rows}


def test_load_balancers_page_shows_weights_and_health_and_follows_a_weight_change(control_plane, served, browser):
    client, traffic, instance = control_plane.client, served["traffic"], served["instance"]
    base = control_plane.settings.control_url
    live = traffic.target_group()
    # the same instance, but this group's health check asks for a page that does not exist
    broken = traffic.target_group(path="/no-such-page")
    served["made"]["tgs"] += [live, broken]
    lb = traffic.load_balancer({live: 90, broken: 10})
    served["made"]["lbs"].append(lb["loadBalancerName"])
    for tg in (live, broken):
        client.post(f"/elb/target-groups/{tg}/register", {"instanceIds": [instance["instanceId"]]})

    go(browser, base, "#/load-balancers")
    until(browser, lambda d: d.find_element("id", "live").get_attribute("data-state") == "open", 15, "the live feed")
    name = lb["loadBalancerName"]
    assert text(browser, f"section[data-load-balancer='{name}'] [data-field=url]") == lb["url"]
    assert weights_shown(browser, name) == f"{live} 90% | {broken} 10%"
    segments = js(browser, """return [...document.querySelectorAll(`section[data-load-balancer='${arguments[0]}'] .weight`)]
        .map((s) => [s.dataset.targetGroup, s.dataset.percent]);""", name)
    assert segments == [[live, "90"], [broken, "10"]]
    assert js(browser, "return document.querySelector('nav a[aria-current=page]').dataset.section") == "load-balancers"

    # health arrives on the live feed: healthy in one group, unhealthy with AWS's reason in the other
    until(browser, lambda d: target_rows(d, live).get(instance["instanceId"], ("",))[0] == "healthy", 30,
          f"{instance['instanceId']} healthy in {live}")
    until(browser, lambda d: target_rows(d, broken).get(instance["instanceId"], ("",))[0] == "unhealthy", 30,
          f"{instance['instanceId']} unhealthy in {broken}")
    api = {t["instanceId"]: t for t in client.get(f"/elb/target-groups/{broken}/health")["targets"]}
    state, word, reason = target_rows(browser, broken)[instance["instanceId"]]
    assert word == "unhealthy" and api[instance["instanceId"]]["reason"] == "Target.ResponseCodeMismatch"
    assert reason.startswith("Target.ResponseCodeMismatch"), reason
    assert target_rows(browser, live)[instance["instanceId"]][1:] == ("healthy", "–")
    full_shot(browser, "traffic-load-balancers")
    browser.set_window_size(390, 1000)
    assert js(browser, "return document.documentElement.scrollWidth <= window.innerWidth + 1")  # nothing wider than a phone
    full_shot(browser, "traffic-load-balancers-phone", 390)

    # a weight change through the REST route shows up without a reload
    js(browser, "window.__sameDocument = true")
    client.post(f"/elb/load-balancers/{name}/weights", {"weights": {live: 25, broken: 75}})
    until(browser, lambda d: weights_shown(d, name) == f"{live} 25% | {broken} 75%", 20, "the new weights")
    assert js(browser, "return window.__sameDocument") is True
    assert js(browser, f"return document.querySelector(`section[data-load-balancer='{name}'] .weight[data-target-group='{broken}']`)"
                       ".dataset.percent") == "75"

    # requests through the listener reach the Requests chart (AWS/ApplicationELB RequestCount)
    for _ in range(10):
        try:
            urllib.request.urlopen(lb["url"], timeout=10).read()
        except urllib.error.HTTPError:
            pass  # the broken group's health check page is missing, its pages are not
    until(browser, lambda d: js(d, f"""const p = document.querySelector(
        `section[data-load-balancer='{name}'] figure[data-metric=RequestCount] path.series`);
        return p ? Number(p.dataset.points) : 0;"""), 30, "the Requests chart to show the requests")
    client.post(f"/elb/load-balancers/{name}/weights", {"weights": {live: 1}})
    assert js_errors(browser) == []


def test_a_blue_green_release_shows_sides_and_steps_and_continues_from_the_page(control_plane, served, browser):
    client, traffic, original = control_plane.client, served["traffic"], served["instance"]
    base = control_plane.settings.control_url
    tg = served["made"]["tgs"][0]  # the healthy group of the first test, behind its load balancer
    group = traffic.group(
        served["tag"], deploymentConfigName="CodeDeployDefault.AllAtOnce", deploymentStyle=BLUE_GREEN,
        loadBalancerInfo={"targetGroupInfoList": [{"name": tg}]},
        blueGreenDeploymentConfiguration={
            "greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"},
            "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 120},
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 120}})
    deployment_id = traffic.deploy(group, app_files("2"), wait=False)["deploymentId"]

    go(browser, base, f"#/deployments/{deployment_id}")
    js(browser, "window.__sameDocument = true")
    until(browser, lambda d: d.find_elements("css selector", "button[data-wait-type=READY_WAIT]"), 120,
          "the Ready state's continue button")
    assert text(browser, "button[data-wait-type=READY_WAIT]") == "Continue (reroute traffic)"
    assert text(browser, "[data-field=status]").endswith("Ready")
    sides = js(browser, "return Object.fromEntries([...document.querySelectorAll('table.grid th[data-side]')]"
                        ".map((th) => [th.dataset.instance, th.dataset.side]));")
    assert sides[original["instanceId"]] == "Blue"
    replacements = [i for i, side in sides.items() if side == "Green"]
    assert len(replacements) == 1 and replacements[0] != original["instanceId"]
    assert "Blue (original)" in text(browser, f"table.grid th[data-instance='{original['instanceId']}']")
    steps_at_ready = text(browser, "[data-field=steps]").splitlines()
    assert steps_at_ready[0].startswith("Replacement environment"), steps_at_ready
    assert steps_at_ready[-1].startswith("Ready"), steps_at_ready
    full_shot(browser, "traffic-ready")

    click(browser, "css selector", "button[data-wait-type=READY_WAIT]")
    until(browser, lambda d: d.find_elements("css selector", "button[data-wait-type=TERMINATION_WAIT]"), 60,
          "the termination wait's button")
    steps = text(browser, "[data-field=steps]")
    assert "Traffic rerouted to 1 replacement instance(s)" in steps, steps
    cells = js(browser, """return Object.fromEntries([...document.querySelectorAll('table.grid td[data-event]')]
        .map((c) => [`${c.dataset.instance} ${c.dataset.event}`, c.dataset.status]));""")
    green = replacements[0]
    assert cells[f"{green} AllowTraffic"] == "Succeeded" and cells[f"{original['instanceId']} BlockTraffic"] == "Succeeded"
    assert cells[f"{original['instanceId']} Install"] == "", cells  # the originals run only the block-traffic events
    events = js(browser, "return [...document.querySelectorAll('table.grid tbody tr[data-event]')].map((r) => r.dataset.event)")
    assert events[-3:] == ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"], events
    full_shot(browser, "traffic-termination-wait")

    click(browser, "css selector", "button[data-wait-type=TERMINATION_WAIT]")
    until(browser, lambda d: text(d, "[data-field=status]").endswith("Succeeded"), 60, "the release to succeed")
    until(browser, lambda d: "Terminated the original instances" in text(d, "[data-field=steps]"), 10, "the last step")
    assert not browser.find_elements("css selector", "[data-field=waiting] button")
    assert len(text(browser, "[data-field=steps]").splitlines()) > len(steps_at_ready)
    assert js(browser, "return window.__sameDocument") is True
    doc = client.get(f"/deployments/{deployment_id}")
    assert text(browser, "[data-field=steps]").splitlines() == doc["deploymentStatusMessages"]

    # the load balancers page: the replacement now takes the traffic of that target group, and the
    # release is marked on the load balancer's charts
    go(browser, base, "#/load-balancers")
    until(browser, lambda d: target_rows(d, tg).get(green, ("",))[0] == "healthy", 30, f"{green} healthy in {tg}")
    assert deployment_id in text(browser, f"article[data-target-group='{tg}'] tr[data-instance='{green}']")
    name = served["made"]["lbs"][0]
    labels = js(browser, f"return [...document.querySelectorAll(`section[data-load-balancer='{name}'] "
                         "figure[data-metric=RequestCount] .marker`)].map((m) => m.dataset.label)")
    assert f"Deployment {deployment_id} Succeeded" in labels, labels
    listed = js(browser, f"return document.querySelector(`section[data-load-balancer='{name}'] details.marker-list`).textContent")
    assert f"Deployment {deployment_id} started" in listed and f"Deployment {deployment_id} Succeeded" in listed, listed
    assert js_errors(browser) == []
