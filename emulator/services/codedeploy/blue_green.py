"""Blue/green releases on the EC2 stand-in, and their rollback.

A release installs the revision on a replacement environment (a copy of the fleet, or instances the
deployment names), optionally waits for a manual continue, moves traffic to it on the load balancer
(all at once, in batches by the deployment configuration, or in canary/linear weight steps with the
group's alarms checked throughout), and then keeps or terminates the originals. The lifecycle per
side is AWS's: replacements run the install events then Before/Allow/AfterAllowTraffic, originals
Before/Block/AfterBlockTraffic; a rollback runs the mirror image.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from emulator.domain import appspec as appspec_model
from emulator.domain import deployment_math, statuses, traffic_routing
from emulator.services.cloudwatch.time_scale import TimeScale
from emulator.services.codedeploy.traffic_control import TargetGroupPair

KIND = statuses.DEPLOYMENT
TARGET = statuses.DEPLOYMENT_TARGET
INSTALL_EVENTS = list(appspec_model.LIFECYCLE_ORDER_IN_PLACE)
ALLOW_EVENTS = [appspec_model.BEFORE_ALLOW_TRAFFIC, appspec_model.ALLOW_TRAFFIC, appspec_model.AFTER_ALLOW_TRAFFIC]
BLOCK_EVENTS = [appspec_model.BEFORE_BLOCK_TRAFFIC, appspec_model.BLOCK_TRAFFIC, appspec_model.AFTER_BLOCK_TRAFFIC]
POLL = 0.25  # real seconds between looks at alarms, stop and continue requests while waiting


class _Ended(Exception):
    """The release ended early (stopped, failed, timed out); the deployment already has its status."""


class BlueGreenRelease:
    def __init__(self, service, deployment_id: str, group: dict):
        self.svc = service
        self.id = deployment_id
        self.group = group
        self.doc = service.db.get(KIND, deployment_id)
        self.settings = group["blueGreenDeploymentConfiguration"]
        self.scale = service.time_scale or TimeScale(1.0)
        self.pair = None
        self.traffic_moved = False

    def run(self) -> None:
        svc = self.svc
        svc.orch.transition(KIND, self.id, "InProgress", startTime=time.time())
        try:
            self._release()
        except _Ended:
            pass

    # ------------------------------------------------------------ the steps

    def _release(self) -> None:
        svc = self.svc
        originals = svc.original_environment(self.group)
        if not originals:
            self._fail("NO_INSTANCES", "The deployment failed because no instances were found in the original "
                                       "environment: check the deployment group's tags")
        config = svc.apps.get_config(self.doc["deploymentConfigName"])
        routing = config.get("trafficRoutingConfig")
        try:
            traffic = svc.traffic
            self.pair = traffic.pair(self.group)
            all_groups = traffic.target_groups(self.group)
        except (LookupError, ValueError) as exc:
            self._fail("ELASTIC_LOAD_BALANCING_INVALID", str(exc))
        replacements, copied = self._provision(originals)
        if not replacements:
            self._fail("NO_INSTANCES", "No replacement instances: targetInstances matched no running instance outside "
                                       "the original environment")
        groups_of = {i["instanceId"]: ([self.pair.idle] if self.pair else all_groups) for i in replacements}
        groups_of.update({i["instanceId"]: ([self.pair.live] if self.pair else all_groups) for i in originals})
        svc.orch.update(KIND, self.id, event=False, _trafficGroups=groups_of, _copied=copied,
                        _originals=[i["instanceId"] for i in originals],
                        _replacements=[i["instanceId"] for i in replacements],
                        _pair=self.pair.__dict__ if self.pair else None,
                        targetInstances=self.doc.get("targetInstances") or {
                            "tagFilters": [{"Key": k, "Value": v, "Type": "KEY_AND_VALUE"}
                                           for k, v in replacements[0]["tags"].items() if k != "Name"]})
        spec, spec_error, etag = svc.read_revision_once(self.id)
        location = self.doc["revision"]["s3Location"]
        for inst in replacements:
            svc.create_target(self.id, inst, INSTALL_EVENTS + ALLOW_EVENTS, "Green")
        for inst in originals:
            svc.create_target(self.id, inst, BLOCK_EVENTS, "Blue")
        svc._overview(self.id)
        self._message(f"Replacement environment: {', '.join(i['name'] for i in replacements)}"
                      f" ({'copied from' if copied else 'discovered beside'} {', '.join(i['name'] for i in originals)})")

        # A traffic-routing configuration sets no minimum: AllAtOnce's rule, at least one replacement installs.
        plan = deployment_math.plan(config.get("minimumHealthyHosts") or
                                    deployment_math.PREDEFINED["CodeDeployDefault.AllAtOnce"], len(replacements))
        run = lambda events: lambda inst: svc.run_events(self.id, inst["instanceId"], events, spec,  # noqa: E731
                                                          spec_error, location, etag)
        installed = self._each(replacements, run(INSTALL_EVENTS), len(replacements))
        healthy = [i for i in replacements if installed[i["instanceId"]]]
        if not deployment_math.succeeded(plan, len(replacements), len(healthy), False) or self._stopping():
            self._abandon(originals, replacements, copied)
        self._ready_wait(originals, replacements, copied)

        if self.pair:
            self._shift(routing, healthy, originals, run)
        else:
            self._reroute(plan, healthy, originals, run)
        self._termination_wait()
        self._succeed(healthy, originals)

    def _provision(self, originals: list[dict]) -> tuple[list[dict], bool]:
        """COPY_AUTO_SCALING_GROUP: new agent containers with the originals' tags; DISCOVER_EXISTING:
        the running instances targetInstances selects, minus the originals."""
        svc = self.svc
        if self.settings["greenFleetProvisioningOption"]["action"] == "COPY_AUTO_SCALING_GROUP":
            first = originals[0]
            tags = {k: v for k, v in (first.get("tags") or {}).items() if k != "Name"}
            prefix = first["name"].rsplit("-", 1)[0] if "-" in first["name"] else first["name"]
            try:
                return svc.fleet.launch(len(originals), tags=tags, name_prefix=prefix), True
            except Exception as exc:  # the engine refused: say so on the deployment
                self._fail("AUTO_SCALING_CONFIGURATION", f"Could not copy the fleet: {exc}")
        given = self.doc.get("targetInstances") or {}
        found = svc.fleet.matching(given.get("tagFilters") or [], (given.get("ec2TagSet") or {}).get("ec2TagSetList"))
        original_ids = {i["instanceId"] for i in originals}
        return [i for i in found if i["instanceId"] not in original_ids], False

    def _ready_wait(self, originals, replacements, copied) -> None:
        """deploymentReadyOption STOP_DEPLOYMENT: status Ready until ContinueDeployment, or Stopped."""
        ready = self.settings["deploymentReadyOption"]
        if ready["actionOnTimeout"] != "STOP_DEPLOYMENT":
            return
        minutes = ready["waitTimeInMinutes"]
        self.svc.orch.transition(KIND, self.id, "Ready")
        self._message(f"Ready: waiting up to {self.scale.describe(minutes * 60)} for a continue "
                      f"(ContinueDeployment or `pipelocal deployments continue {self.id}`) before rerouting traffic")
        deadline = time.monotonic() + self.scale.real(minutes * 60)
        while time.monotonic() < deadline:
            if self.svc.continue_requested(self.id, "READY_WAIT"):
                self.svc.orch.transition(KIND, self.id, "InProgress")
                return
            if self._stopping():
                self._abandon(originals, replacements, copied)
            time.sleep(POLL)
        self._abandon(originals, replacements, copied, ("MANUAL_STOP", "The deployment was stopped because traffic "
                                                        "was not rerouted within the wait time of "
                                                        f"{minutes} minute(s) (deploymentReadyOption STOP_DEPLOYMENT)"))

    def _reroute(self, plan, replacements, originals, run) -> None:
        """One target group: register replacements in batches of the configuration's size, then
        deregister the originals."""
        pending = list(replacements)
        allowed = 0
        while pending:
            batch, pending = pending[:plan.concurrency], pending[plan.concurrency:]
            results = self._each(batch, run(ALLOW_EVENTS), len(batch), finish=True)
            allowed += sum(results.values())
            self.traffic_moved = self.traffic_moved or any(results.values())
            self._check_alarms_and_stop()
        if allowed == 0 or not deployment_math.succeeded(plan, len(replacements), allowed, False):
            self._end_after_traffic("Failed", "HEALTH_CONSTRAINTS", "Too few replacement instances passed the load "
                                    "balancer's health checks", "DEPLOYMENT_FAILURE")
        self._message(f"Traffic rerouted to {allowed} replacement instance(s)")
        self._each(originals, run(BLOCK_EVENTS), len(originals), finish=True)

    def _shift(self, routing, replacements, originals, run) -> None:
        """Two target groups: register the replacements in the idle one, then move the weights step by
        step, checking the alarms at every step and through every wait."""
        results = self._each(replacements, run(ALLOW_EVENTS[:2]), len(replacements))
        if not any(results.values()):
            self._end_after_traffic("Failed", "HEALTH_CONSTRAINTS", "No replacement instance passed the health "
                                    f"checks of target group {self.pair.idle}", "DEPLOYMENT_FAILURE")
        traffic = self.svc.traffic
        self._message(f"Traffic shifting: {traffic_routing.describe(routing)} "
                      f"({self.pair.live} -> {self.pair.idle})")
        for step in traffic_routing.steps(routing):
            self._check_alarms_and_stop()
            traffic.shift(self.pair, step.percent)
            self.traffic_moved = True
            self._message(f"{step.percent}% of traffic to the replacement environment ({self.pair.idle})")
            self._wait(step.wait_minutes * 60)
        live = [i for i in replacements if results[i["instanceId"]]]
        self._each(live, run(ALLOW_EVENTS[2:]), len(live), finish=True)
        self._each(originals, run(BLOCK_EVENTS), len(originals), finish=True)

    def _termination_wait(self) -> None:
        """TERMINATE waits terminationWaitTimeInMinutes (alarms still stop the release and bring the
        originals back); ContinueDeployment TERMINATION_WAIT ends the wait early."""
        option = self.settings["terminateBlueInstancesOnDeploymentSuccess"]
        if option["action"] != "TERMINATE":
            return
        minutes = option["terminationWaitTimeInMinutes"]
        self.svc.orch.update(KIND, self.id, instanceTerminationWaitTimeStarted=True)
        if minutes:
            self._message(f"Waiting {self.scale.describe(minutes * 60)} before terminating the original instances")
            self._wait(minutes * 60, continue_type="TERMINATION_WAIT")

    def _succeed(self, replacements: list[dict], originals: list[dict]) -> None:
        svc = self.svc
        option = self.settings["terminateBlueInstancesOnDeploymentSuccess"]
        if option["action"] == "TERMINATE":
            for inst in originals:
                svc.fleet.terminate(inst["instanceId"])
            self._message(f"Terminated the original instances: {', '.join(i['name'] for i in originals)}")
        else:
            self._message(f"Kept the original instances running, out of the load balancer: "
                          f"{', '.join(i['name'] for i in originals)}")
        revision = {**self.doc["revision"], "deploymentId": self.id, "description": self.doc.get("description")}
        for inst in replacements:
            svc.fleet.record_success(inst["instanceId"], self.doc["deploymentGroupId"], self.id, revision)
        svc.set_live_environment(self.group, [i["instanceId"] for i in replacements])
        svc.apps.update_group(self.doc["applicationName"], self.doc["deploymentGroupName"],
                              lastSuccessfulDeployment={"deploymentId": self.id, "status": "Succeeded",
                                                        "endTime": time.time()},
                              targetRevision=self.doc["revision"])
        svc._overview(self.id)
        svc._end(self.id, "Succeeded", None)

    # ------------------------------------------------------------ ending early

    def _abandon(self, originals, replacements, copied, error: tuple[str, str] | None = None) -> None:
        """Before any traffic moved: the originals keep serving; copied replacements are removed."""
        svc = self.svc
        for inst in originals + replacements:
            self._close_target(inst["instanceId"], "Skipped")
        if copied:
            for inst in replacements:
                svc.fleet.terminate(inst["instanceId"])
        svc._overview(self.id)
        if error is None and self.id in svc._alarm_stops:
            svc._end(self.id, "Stopped", _alarm_error(svc._alarm_stops.pop(self.id)))
        elif error is None and self.id in svc._stop_requested:
            svc._end(self.id, "Stopped", {"code": "DEPLOYMENT_STOPPED",
                                          "message": "The deployment was stopped by a user request."})
        elif error is not None:
            svc._end(self.id, "Stopped", {"code": error[0], "message": error[1]})
        else:
            svc._end(self.id, "Failed", {"code": "HEALTH_CONSTRAINTS", "message":
                     "Too few replacement instances installed the revision; traffic was not rerouted and the "
                     "original instances keep serving"})
        raise _Ended()

    def _end_after_traffic(self, status: str, code: str, message: str, rollback_event: str) -> None:
        """Traffic may have moved: weights go straight back to the originals, then the automatic
        rollback (if configured) re-registers them and blocks the replacements."""
        svc = self.svc
        if self.pair:
            svc.traffic.shift(self.pair, 0)
            self._message(f"Traffic shifted back: 100% to the original environment ({self.pair.live})")
        for target in svc.db.list(TARGET, parent=self.id):
            if not statuses.is_terminal(TARGET, target["status"]):
                self._close_target(target["instanceId"], "Failed" if target["status"] == "InProgress" else "Skipped")
        svc._overview(self.id)
        svc._end(self.id, status, {"code": code, "message": message}, rollback_event=rollback_event)
        raise _Ended()

    def _check_alarms_and_stop(self) -> None:
        svc = self.svc
        svc._stop_if_alarm(self.id, self.group)
        if self.id in svc._alarm_stops:
            self._end_after_traffic("Stopped", "ALARM_ACTIVE", _alarm_error(svc._alarm_stops.pop(self.id))["message"],
                                    "DEPLOYMENT_STOP_ON_ALARM")
        if self.id in svc._stop_requested:
            self._end_after_traffic("Stopped", "DEPLOYMENT_STOPPED", "The deployment was stopped by a user request.",
                                    "DEPLOYMENT_STOP_ON_REQUEST")

    def _wait(self, emulated_seconds: float, continue_type: str | None = None) -> None:
        deadline = time.monotonic() + self.scale.real(emulated_seconds)
        while True:
            self._check_alarms_and_stop()
            if continue_type and self.svc.continue_requested(self.id, continue_type):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(POLL, left))

    def _stopping(self) -> bool:
        self.svc._stop_if_alarm(self.id, self.group)
        return self.id in self.svc._stop_requested

    def _fail(self, code: str, message: str) -> None:
        self.svc._end(self.id, "Failed", {"code": code, "message": message})
        raise _Ended()

    # ------------------------------------------------------------ bookkeeping

    def _each(self, instances: list[dict], work: Callable[[dict], bool], concurrency: int,
              finish: bool = False) -> dict[str, bool]:
        """Runs `work` on every instance, `concurrency` at a time; with `finish`, a target whose work
        succeeded ends Succeeded (work that fails ends its target itself)."""
        results: dict[str, bool] = {}
        if not instances:
            return results
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            for inst, ok in zip(instances, pool.map(work, instances)):
                results[inst["instanceId"]] = bool(ok)
                if ok and finish:
                    self.svc._finish_target(f"{self.id}:{inst['instanceId']}", "Succeeded", None)
        self.svc._overview(self.id)
        return results

    def _close_target(self, instance_id: str, status: str) -> None:
        target = self.svc.db.get(TARGET, f"{self.id}:{instance_id}")
        if target and not statuses.is_terminal(TARGET, target["status"]):
            if status == "Skipped" and target["status"] == "InProgress":
                status = "Failed"
            self.svc._finish_target(target["id"], status, "stopped")

    def _message(self, text: str) -> None:
        doc = self.svc.db.get(KIND, self.id)
        messages = list(doc.get("deploymentStatusMessages") or []) + [text]
        self.svc.orch.update(KIND, self.id, deploymentStatusMessages=messages, message=text)


class BlueGreenRollback:
    """Reroutes traffic back to the original instances of a failed or stopped blue/green release:
    originals run Before/Allow/AfterAllowTraffic with their last successful revision's scripts,
    replacements Before/Block/AfterBlockTraffic with the failed release's; copied replacements are
    then terminated."""

    def __init__(self, service, deployment_id: str, group: dict):
        self.svc = service
        self.id = deployment_id
        self.group = group
        self.doc = service.db.get(KIND, deployment_id)
        self.failed = service.db.get(KIND, self.doc["_blueGreenRollbackOf"])

    def run(self) -> None:
        svc = self.svc
        svc.orch.transition(KIND, self.id, "InProgress", startTime=time.time())
        running = {i["instanceId"]: i for i in svc.fleet.running()}
        originals = [running[i] for i in self.failed.get("_originals") or [] if i in running]
        replacements = [running[i] for i in self.failed.get("_replacements") or [] if i in running]
        if not originals:
            svc._end(self.id, "Failed", {"code": "NO_INSTANCES", "message": "The original instances of "
                                         f"{self.failed['deploymentId']} no longer run; nothing to reroute to"})
            return
        svc.orch.update(KIND, self.id, event=False, _trafficGroups=self.failed.get("_trafficGroups") or {},
                        _originals=[i["instanceId"] for i in originals],
                        _replacements=[i["instanceId"] for i in replacements])
        pair = self.failed.get("_pair")
        if pair:
            svc.traffic.shift(TargetGroupPair(**pair), 0)
        for inst in originals:
            svc.create_target(self.id, inst, ALLOW_EVENTS, "Blue")
        for inst in replacements:
            svc.create_target(self.id, inst, BLOCK_EVENTS, "Green")
        location = self.doc["revision"]["s3Location"]
        group_id = self.doc["deploymentGroupId"]
        ok = True
        for inst in originals:
            last = (svc.db.get("instance", inst["instanceId"]).get("lastSuccessful") or {}).get(group_id)
            hooks = {e: last for e in (appspec_model.BEFORE_ALLOW_TRAFFIC, appspec_model.AFTER_ALLOW_TRAFFIC)}
            if svc.run_events(self.id, inst["instanceId"], ALLOW_EVENTS, None, None, location, "", hooks):
                svc._finish_target(f"{self.id}:{inst['instanceId']}", "Succeeded", None)
            else:
                ok = False
        for inst in replacements:
            hooks = {e: self.failed["deploymentId"] for e in (appspec_model.BEFORE_BLOCK_TRAFFIC,
                                                              appspec_model.AFTER_BLOCK_TRAFFIC)}
            if svc.run_events(self.id, inst["instanceId"], BLOCK_EVENTS, None, None, location, "", hooks):
                svc._finish_target(f"{self.id}:{inst['instanceId']}", "Succeeded", None)
        if self.failed.get("_copied"):
            for inst in replacements:
                svc.fleet.terminate(inst["instanceId"])
        svc.set_live_environment(self.group, [i["instanceId"] for i in originals])
        svc._overview(self.id)
        if ok:
            svc._end(self.id, "Succeeded", None)
        else:
            svc._end(self.id, "Failed", {"code": "HEALTH_CONSTRAINTS", "message": "The original instances did not "
                                         "pass the load balancer's health checks again"})


def _alarm_error(alarms: list[str]) -> dict:
    return {"code": "ALARM_ACTIVE", "message": "One or more alarms have been activated according to the Amazon "
            "CloudWatch metrics you selected, and the affected deployments have been stopped. Activated alarms: "
            + ", ".join(alarms)}
