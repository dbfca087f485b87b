"""CodeDeploy in-place deployments to the fleet: lifecycle events, configuration math, rollback.

The control plane reads the revision once (appspec and member list), then hands each instance's
agent one host command per lifecycle event, in AWS's order, and records each result.
"""

from __future__ import annotations

import io
import random
import string
import tarfile
import threading
import time
import zipfile
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from emulator import contracts
from emulator.domain import appspec as appspec_model
from emulator.domain import deployment_math, statuses, traffic_routing
from emulator.domain.errors import InvalidField, NotFound, SpecError
from emulator.orchestration import Orchestrator
from emulator.services.codedeploy.applications import Applications
from emulator.services.codedeploy.command_queue import CommandQueue
from emulator.services.codedeploy.fleet import Fleet
from emulator.services.codedeploy.traffic_control import TargetGroupPair, TrafficControl
from emulator.services.cloudwatch.time_scale import TimeScale
from emulator.store.object_store import ObjectStore

KIND = statuses.DEPLOYMENT
TARGET = statuses.DEPLOYMENT_TARGET
EVENT_LOG = "lifecycle-event"
LIVE_ENVIRONMENT = "codedeploy-live-environment"  # deployment group id -> the instances serving it
APPSPEC_NAMES = ("appspec.yml", "appspec.yaml")
BUNDLE_TYPES = ("zip", "tar", "tgz")
LOG_TAIL = 4096  # Diagnostics.logTail: "up to the last 4 KB of the diagnostic log"
# What the AWS agent reports for an event with no scripts to run.
_NO_SCRIPTS = {"errorCode": "Success", "scriptName": "", "message": "Succeeded", "logTail": ""}
# How long an instance may stay silent while it owes a result before its event fails.
SILENCE_LIMIT = 60.0
# How long a handed-out command may go unacknowledged before it is handed out again.
ACK_LIMIT = 10.0
# Real seconds between looks at a group's CloudWatch alarms while its deployment runs or bakes.
ALARM_POLL = 0.25


class DeploymentService:
    def __init__(self, orch: Orchestrator, apps: Applications, fleet: Fleet, queue: CommandQueue,
                 store: ObjectStore):
        self.orch = orch
        self.db = orch.db
        self.apps = apps
        self.fleet = fleet
        self.queue = queue
        self.store = store
        self._stop_requested: set[str] = set()
        # Deployments to one group run one at a time, in creation order; the rest wait as Queued.
        self._slots = threading.Condition()
        self._group_queue: dict[str, list[str]] = {}
        # CloudWatch, when wired: `alarms_in_alarm(group)`, `bake_time(group)` (see cloudwatch/deployment_alarms.py)
        self.alarm_monitor = None
        self._alarm_stops: dict[str, list[str]] = {}
        # The load balancer stand-in and the time scale, when wired (traffic control, blue/green).
        self.load_balancing = None
        self.time_scale: TimeScale | None = None
        self._continue_requested: dict[str, set[str]] = {}

    @property
    def traffic(self) -> TrafficControl:
        if self.load_balancing is None:
            raise InvalidField("loadBalancerInfo", "no load balancer service is running in this control plane")
        return TrafficControl(self.load_balancing, self.time_scale or TimeScale(1.0))

    # ------------------------------------------------------------ API

    def create_deployment(self, application: str, group_name: str, revision: dict, *,
                          config_name: str | None = None, description: str = "",
                          file_exists_behavior: str = "DISALLOW", ignore_application_stop_failures: bool = False,
                          creator: str = "user", rollback_of: str | None = None,
                          auto_rollback: dict | None = None, target_instances: dict | None = None,
                          instance_names: list[str] | None = None, appspec_file: str | None = None,
                          lifecycle_events: list[str] | None = None, blue_green_rollback_of: str | None = None
                          ) -> dict:
        """`instance_names`, `appspec_file` and `lifecycle_events` are what `codedeploy-local` offers
        (named instances, --appspec-filename, --events); the rest is CreateDeployment's."""
        group = self.apps.get_group(application, group_name)
        config = config_name or group["deploymentConfigName"]
        self._check_traffic_settings(group, self.apps.get_config(config), target_instances,
                                     rollback=bool(blue_green_rollback_of))
        if revision.get("revisionType", "S3") != "S3":
            raise ValueError("Only S3 revisions are supported (revisionType S3)")
        location = revision.get("s3Location") or {}
        if not location.get("bucket") or not location.get("key"):
            raise ValueError("revision.s3Location needs bucket and key")
        bundle_type = location.get("bundleType", "zip")
        if bundle_type not in BUNDLE_TYPES:
            raise ValueError(f"revision.s3Location.bundleType {bundle_type!r}: expected one of {', '.join(BUNDLE_TYPES)}")
        if file_exists_behavior not in appspec_model.FILE_EXISTS_BEHAVIORS:
            raise ValueError(f"fileExistsBehavior {file_exists_behavior!r}: expected one of "
                             f"{', '.join(appspec_model.FILE_EXISTS_BEHAVIORS)}")
        events = _event_order(lifecycle_events) if lifecycle_events else None
        traffic_events = [e for e in events or [] if e in (appspec_model.BLOCK_TRAFFIC, appspec_model.ALLOW_TRAFFIC)]
        if traffic_events and group["deploymentStyle"]["deploymentOption"] != "WITH_TRAFFIC_CONTROL":
            raise InvalidField("loadBalancerInfo", f"{' and '.join(traffic_events)} move the instance in and out of a "
                               f"load balancer, and deployment group {group_name} has none: give the group "
                               "loadBalancerInfo with deploymentOption WITH_TRAFFIC_CONTROL, or leave those events out")
        if instance_names:
            self.fleet.named(instance_names)  # refuse unknown names now, not inside the run
        deployment_id = "d-" + "".join(random.choices(string.ascii_uppercase + string.digits, k=9))
        doc = {
            "deploymentId": deployment_id,
            "applicationName": application,
            "deploymentGroupName": group_name,
            "deploymentGroupId": group["deploymentGroupId"],
            "deploymentConfigName": config,
            "revision": revision,
            "description": description,
            "creator": creator,
            "createTime": time.time(),
            "ignoreApplicationStopFailures": ignore_application_stop_failures,
            "fileExistsBehavior": file_exists_behavior,
            "deploymentStyle": group["deploymentStyle"],
            **{k: group[k] for k in ("loadBalancerInfo", "blueGreenDeploymentConfiguration") if group.get(k)},
            "autoRollbackConfiguration": auto_rollback or group["autoRollbackConfiguration"],
            "computePlatform": "Server",
            "deploymentOverview": {"Pending": 0, "InProgress": 0, "Succeeded": 0, "Failed": 0, "Skipped": 0,
                                   "Ready": 0},
        }
        if target_instances:
            doc["targetInstances"] = target_instances
        extras = {"_instanceNames": instance_names, "_appspecFile": appspec_file, "_events": events,
                  "_blueGreenRollbackOf": blue_green_rollback_of}
        doc.update({k: v for k, v in extras.items() if v})
        if rollback_of:
            doc["rollbackInfo"] = {"rollbackTriggeringDeploymentId": rollback_of,
                                   "rollbackMessage": f"Rollback of deployment {rollback_of}"}
        self.orch.create(KIND, deployment_id, doc, parent=f"{application}/{group_name}")
        with self._slots:
            self._group_queue.setdefault(group["deploymentGroupId"], []).append(deployment_id)
        threading.Thread(target=self._run, args=(deployment_id,), name=f"deploy-{deployment_id}",
                         daemon=True).start()
        return self.get(deployment_id)

    def get(self, deployment_id: str) -> dict:
        doc = self.db.get(KIND, deployment_id)
        if doc is None:
            raise NotFound("Deployment", deployment_id)
        return {k: v for k, v in doc.items() if not k.startswith("_")}

    def list(self, application: str | None = None, group: str | None = None) -> list[dict]:
        parent = f"{application}/{group}" if application and group else None
        docs = self.db.list(KIND, parent=parent)
        if application and not group:
            docs = [d for d in docs if d["applicationName"] == application]
        return [self.get(d["deploymentId"]) for d in docs]

    def targets(self, deployment_id: str) -> list[dict]:
        self.get(deployment_id)
        return self.db.list(TARGET, parent=deployment_id)

    def event_log(self, deployment_id: str, instance_id: str, event: str) -> str:
        return self.db.log_text(EVENT_LOG, f"{deployment_id}:{instance_id}:{event}")

    def stop(self, deployment_id: str, auto_rollback: bool | None = None) -> dict:
        doc = self.get(deployment_id)
        if statuses.is_terminal(KIND, doc["status"]):
            return doc
        if auto_rollback is not None:
            self.orch.update(KIND, deployment_id, event=False, _rollbackOnStop=auto_rollback)
        with self._slots:
            self._stop_requested.add(deployment_id)
            self._slots.notify_all()
        return self.get(deployment_id)

    def continue_deployment(self, deployment_id: str, wait_type: str = "READY_WAIT") -> dict:
        """ContinueDeployment: reroute now (READY_WAIT) or end the original instances' wait now
        (TERMINATION_WAIT)."""
        doc = self.get(deployment_id)
        if wait_type not in ("READY_WAIT", "TERMINATION_WAIT"):
            raise InvalidField("deploymentWaitType", f"deploymentWaitType {wait_type!r}: expected READY_WAIT or "
                                                     "TERMINATION_WAIT")
        if doc["deploymentStyle"]["deploymentType"] != "BLUE_GREEN":
            raise InvalidField("deploymentType", f"Deployment {deployment_id} is an in-place deployment: only "
                                                 "blue/green deployments wait to continue")
        waiting = doc["status"] == "Ready" if wait_type == "READY_WAIT" else \
            bool(doc.get("instanceTerminationWaitTimeStarted")) and not statuses.is_terminal(KIND, doc["status"])
        if not waiting:
            raise InvalidField("deploymentStatus", f"Deployment {deployment_id} is {doc['status']}, not waiting for "
                                                   f"{'a continue to reroute traffic' if wait_type == 'READY_WAIT' else 'the original instances to be terminated'}")
        with self._slots:
            self._continue_requested.setdefault(deployment_id, set()).add(wait_type)
            self._slots.notify_all()
        return self.get(deployment_id)

    def continue_requested(self, deployment_id: str, wait_type: str) -> bool:
        return wait_type in self._continue_requested.get(deployment_id, set())

    def _check_traffic_settings(self, group: dict, config: dict, target_instances: dict | None,
                                rollback: bool) -> None:
        """Refuses now what would fail later: a missing target group, a shifting configuration on a group
        that cannot shift, a blue/green group with no replacement environment."""
        style = group["deploymentStyle"]
        routing = config.get("trafficRoutingConfig")
        shifting = routing and routing.get("type") != "AllAtOnce"
        pair = (group.get("loadBalancerInfo") or {}).get("targetGroupPairInfoList")
        if shifting and (style["deploymentType"] != "BLUE_GREEN" or not pair):
            raise InvalidField("deploymentConfigName", f"{config['deploymentConfigName']} shifts traffic step by step "
                               f"({traffic_routing.describe(routing)}): that needs a BLUE_GREEN deployment group whose "
                               "loadBalancerInfo.targetGroupPairInfoList names two target groups behind one load "
                               "balancer; use a minimumHealthyHosts configuration such as CodeDeployDefault.AllAtOnce "
                               "for this group")
        if style["deploymentOption"] == "WITH_TRAFFIC_CONTROL":
            try:
                self.traffic.target_groups(group)
            except LookupError as exc:
                raise InvalidField("loadBalancerInfo", f"deployment group {group['deploymentGroupName']}: {exc}; "
                                                       "create it first (pipelocal lb create-target-group)") from None
        if style["deploymentType"] == "BLUE_GREEN" and not rollback:
            provisioning = group["blueGreenDeploymentConfiguration"]["greenFleetProvisioningOption"]["action"]
            given = target_instances or {}
            if provisioning == "DISCOVER_EXISTING" and not (given.get("tagFilters") or
                                                            (given.get("ec2TagSet") or {}).get("ec2TagSetList")):
                raise InvalidField("targetInstances", "this blue/green group discovers existing instances "
                                   "(greenFleetProvisioningOption DISCOVER_EXISTING): give targetInstances.tagFilters "
                                   "naming the replacement instances, or set the group's greenFleetProvisioningOption "
                                   "to COPY_AUTO_SCALING_GROUP to copy the fleet")
            if provisioning == "DISCOVER_EXISTING" and shifting:
                replacements = self.fleet.matching(given.get("tagFilters") or [],
                                                   (given.get("ec2TagSet") or {}).get("ec2TagSetList"))
                originals = {i["instanceId"] for i in self.original_environment(group)}
                if not [i for i in replacements if i["instanceId"] not in originals]:
                    raise InvalidField("targetInstances", "the fleet is too small to split: targetInstances matches "
                                       "no running instance outside the original environment, so no traffic can "
                                       "shift to a replacement; launch instances with other tags for it, or copy "
                                       "the fleet (COPY_AUTO_SCALING_GROUP)")

    def original_environment(self, group: dict) -> list[dict]:
        """The instances serving the group now: those the last blue/green release moved traffic to, or,
        before any, those the group's tags select."""
        live = self.db.get(LIVE_ENVIRONMENT, group["deploymentGroupId"])
        if live:
            running = {i["instanceId"]: i for i in self.fleet.running()}
            found = [running[i] for i in live["instanceIds"] if i in running]
            if found:
                return found
        return self._targets({}, group)

    def set_live_environment(self, group: dict, instance_ids: list[str]) -> None:
        self.db.put(LIVE_ENVIRONMENT, group["deploymentGroupId"], {"instanceIds": instance_ids})

    def redeploy(self, deployment_id: str, **overrides) -> dict:
        """A new deployment of an earlier deployment's revision to the same group."""
        old = self.db.get(KIND, deployment_id)
        if old is None:
            raise NotFound("Deployment", deployment_id)
        options = {"config_name": old["deploymentConfigName"], "description": f"Redeploy of {deployment_id}",
                   "file_exists_behavior": old.get("fileExistsBehavior", "DISALLOW"),
                   "ignore_application_stop_failures": old.get("ignoreApplicationStopFailures", False),
                   "target_instances": old.get("targetInstances"), "instance_names": old.get("_instanceNames"),
                   "appspec_file": old.get("_appspecFile"), "lifecycle_events": old.get("_events")}
        options.update({k: v for k, v in overrides.items() if v is not None})
        return self.create_deployment(old["applicationName"], old["deploymentGroupName"], old["revision"],
                                      **options)

    def wait(self, deployment_id: str, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            doc = self.get(deployment_id)
            if statuses.is_terminal(KIND, doc["status"]):
                return doc
            if deadline is not None and time.monotonic() > deadline:
                return doc
            self.orch.wait_for_change(1.0)

    # ------------------------------------------------------------ recovery

    def recover(self) -> list[str]:
        ended = []
        for doc in self.db.list(KIND, statuses=["Created", "Queued", "InProgress", "Baking", "Ready"]):
            if doc.get("_pair") and self.load_balancing is not None:
                # A release interrupted mid-shift: all traffic back to the environment it came from.
                try:
                    self.traffic.shift(TargetGroupPair(**doc["_pair"]), 0)
                except (LookupError, ValueError):
                    pass
            for target in self.db.list(TARGET, parent=doc["deploymentId"]):
                if not statuses.is_terminal(TARGET, target["status"]):
                    events = [dict(e, status="Failed" if e["status"] == "InProgress" else
                                   ("Skipped" if e["status"] == "Pending" else e["status"]))
                              for e in target["lifecycleEvents"]]
                    self.orch.transition(TARGET, target["id"], "Failed", lifecycleEvents=events,
                                         message="interrupted")
            self.orch.transition(KIND, doc["deploymentId"], "Failed", completeTime=time.time(),
                                 errorInformation={"code": "INTERNAL_ERROR", "message": "interrupted: the control "
                                                   "plane stopped while this deployment was in progress"})
            ended.append(doc["deploymentId"])
        return ended

    # ------------------------------------------------------------ the deployment

    def _run(self, deployment_id: str) -> None:
        group_id = self.db.get(KIND, deployment_id)["deploymentGroupId"]
        try:
            if self._take_slot(group_id, deployment_id):
                self._deploy(deployment_id)
        except Exception as exc:  # a fault of pipelocal itself: end in a named state, never hang
            doc = self.db.get(KIND, deployment_id)
            if doc and not statuses.is_terminal(KIND, doc["status"]):
                for target in self.db.list(TARGET, parent=deployment_id):
                    if not statuses.is_terminal(TARGET, target["status"]):
                        self._finish_target(target["id"], "Failed", "internal error")
                self.orch.transition(KIND, deployment_id, "Failed", completeTime=time.time(),
                                     errorInformation={"code": "INTERNAL_ERROR", "message": str(exc)})
        finally:
            with self._slots:
                self._stop_requested.discard(deployment_id)
                self._alarm_stops.pop(deployment_id, None)
                self._continue_requested.pop(deployment_id, None)
                queue = self._group_queue.get(group_id, [])
                if deployment_id in queue:
                    queue.remove(deployment_id)
                self._slots.notify_all()

    def _take_slot(self, group_id: str, deployment_id: str) -> bool:
        """Waits, Queued, until every earlier deployment to the group has ended; False if stopped first."""
        with self._slots:
            queued = False
            while self._group_queue[group_id][0] != deployment_id:
                if deployment_id in self._stop_requested:
                    break
                if not queued:
                    self.orch.transition(KIND, deployment_id, "Queued")
                    queued = True
                self._slots.wait(5.0)
            if deployment_id in self._stop_requested:
                self._end(deployment_id, "Stopped", {"code": "DEPLOYMENT_STOPPED",
                                                     "message": "The deployment was stopped by a user request."})
                return False
            return True

    def _deploy(self, deployment_id: str) -> None:
        doc = self.db.get(KIND, deployment_id)
        group = self.apps.get_group(doc["applicationName"], doc["deploymentGroupName"])
        if doc["deploymentStyle"]["deploymentType"] == "BLUE_GREEN":
            from emulator.services.codedeploy.blue_green import BlueGreenRelease, BlueGreenRollback

            runner = BlueGreenRollback if doc.get("_blueGreenRollbackOf") else BlueGreenRelease
            runner(self, deployment_id, group).run()
            return
        instances = self._targets(doc, group)
        self.orch.transition(KIND, deployment_id, "InProgress", startTime=time.time())
        if not instances:
            self._end(deployment_id, "Failed", {"code": "NO_INSTANCES", "message": "The deployment failed because "
                      "no instances were found for your deployment group. Check your deployment group settings "
                      "to make sure the tags for your EC2 instances or Auto Scaling groups correctly identify the "
                      "instances you want to deploy to, and then try again."})
            return
        location = doc["revision"]["s3Location"]
        events = in_place_events(doc)
        spec, spec_error, etag = self.read_revision_once(deployment_id)
        config = self.apps.get_config(doc["deploymentConfigName"])
        plan = deployment_math.plan(config["minimumHealthyHosts"], len(instances))
        self.orch.update(KIND, deployment_id, event=False,
                         configurationExplained=deployment_math.explain(doc["deploymentConfigName"], plan,
                                                                        len(instances)))
        for inst in instances:
            self.create_target(deployment_id, inst, events)
        self._overview(deployment_id)

        outcomes: dict[str, bool] = {}
        order = [i["instanceId"] for i in instances]
        stopped_early = False
        with ThreadPoolExecutor(max_workers=plan.concurrency) as pool:
            running: dict[Future, str] = {}
            pending = list(order)
            while pending or running:
                self._stop_if_alarm(deployment_id, group)
                halt = deployment_id in self._stop_requested or stopped_early
                while pending and len(running) < plan.concurrency and not halt:
                    iid = pending.pop(0)
                    running[pool.submit(self._deploy_instance, deployment_id, iid, spec, spec_error, location,
                                        etag)] = iid
                if halt and pending:
                    for iid in pending:
                        self._skip_target(deployment_id, iid)
                    pending = []
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED,
                               timeout=ALARM_POLL if self.alarm_monitor else None)
                for future in done:
                    iid = running.pop(future)
                    outcomes[iid] = bool(future.result())
                    failed = [i for i, ok in outcomes.items() if not ok]
                    if failed and deployment_math.should_stop(plan, len(order), len(failed),
                                                              last_failed_was_final=(failed == [order[-1]])):
                        stopped_early = True
                self._overview(deployment_id)

        self._overview(deployment_id)
        succeeded = [i for i, ok in outcomes.items() if ok]
        failed_last_only = len(outcomes) == len(order) and [i for i, ok in outcomes.items() if not ok] == [order[-1]]
        healthy = deployment_math.succeeded(plan, len(order), len(succeeded), failed_last_only)
        if healthy and deployment_id not in self._stop_requested:
            self._bake(deployment_id, group)
        if deployment_id in self._alarm_stops:
            self._end(deployment_id, "Stopped", {"code": "ALARM_ACTIVE", "message":
                      "One or more alarms have been activated according to the Amazon CloudWatch metrics you "
                      "selected, and the affected deployments have been stopped. Activated alarms: "
                      + ", ".join(self._alarm_stops.pop(deployment_id))}, rollback_event="DEPLOYMENT_STOP_ON_ALARM")
            return
        if deployment_id in self._stop_requested:
            self._end(deployment_id, "Stopped", {"code": "DEPLOYMENT_STOPPED",
                                                 "message": "The deployment was stopped by a user request."},
                      rollback_event="DEPLOYMENT_STOP_ON_REQUEST")
            return
        if healthy:
            revision = {**doc["revision"], "deploymentId": deployment_id, "description": doc.get("description")}
            for iid in succeeded:
                self.fleet.record_success(iid, doc["deploymentGroupId"], deployment_id, revision)
            self.apps.update_group(doc["applicationName"], doc["deploymentGroupName"],
                                   lastSuccessfulDeployment={"deploymentId": deployment_id, "status": "Succeeded",
                                                             "endTime": time.time()},
                                   targetRevision=doc["revision"])
            self._end(deployment_id, "Succeeded", None)
        else:
            self._end(deployment_id, "Failed", {"code": "HEALTH_CONSTRAINTS", "message":
                      "The overall deployment failed because too many individual instances failed deployment, "
                      "too few healthy instances are available for deployment, or some instances in your "
                      "deployment group are experiencing problems."}, rollback_event="DEPLOYMENT_FAILURE")

    def _stop_if_alarm(self, deployment_id: str, group: dict) -> bool:
        """An alarm of the group in ALARM stops the deployment (DEPLOYMENT_STOP_ON_ALARM). A rollback
        is not stopped: the alarm that caused it is still in ALARM while it restores the good revision."""
        if not self.alarm_monitor or deployment_id in self._alarm_stops:
            return deployment_id in self._alarm_stops
        if (self.db.get(KIND, deployment_id) or {}).get("creator") == "codeDeployRollback":
            return False
        active = self.alarm_monitor.alarms_in_alarm(group)
        if active:
            with self._slots:
                self._alarm_stops[deployment_id] = active
                self._stop_requested.add(deployment_id)
        return bool(active)

    def _bake(self, deployment_id: str, group: dict) -> None:
        """After the last instance, keeps watching the group's alarms for the bake time (Baking)."""
        if not self.alarm_monitor or self.db.get(KIND, deployment_id).get("creator") == "codeDeployRollback":
            return
        bake = self.alarm_monitor.bake_time(group)
        if bake <= 0 or self._stop_if_alarm(deployment_id, group):
            return
        self.orch.transition(KIND, deployment_id, "Baking")
        deadline = time.monotonic() + bake
        while time.monotonic() < deadline and deployment_id not in self._stop_requested:
            if self._stop_if_alarm(deployment_id, group):
                return
            time.sleep(min(ALARM_POLL, max(0.0, deadline - time.monotonic())))

    def _targets(self, doc: dict, group: dict) -> list[dict]:
        if doc.get("_instanceNames"):
            return self.fleet.named(doc["_instanceNames"])
        target = doc.get("targetInstances") or {}
        if target.get("tagFilters") or (target.get("ec2TagSet") or {}).get("ec2TagSetList"):
            return self.fleet.matching(target.get("tagFilters") or [],
                                       (target.get("ec2TagSet") or {}).get("ec2TagSetList"))
        found = {}
        for filters, tag_set in ((group["ec2TagFilters"], (group.get("ec2TagSet") or {}).get("ec2TagSetList")),
                                 (group["onPremisesInstanceTagFilters"],
                                  (group.get("onPremisesTagSet") or {}).get("onPremisesTagSetList"))):
            if not filters and not tag_set:
                continue
            for inst in self.fleet.matching(filters, tag_set):
                found.setdefault(inst["instanceId"], inst)
        return list(found.values())

    def read_revision_once(self, deployment_id: str):
        """Reads and checks the deployment's revision, and keeps its hooks for later deployments."""
        doc = self.db.get(KIND, deployment_id)
        events = doc.get("_events") or []
        custom = [e for e in events if e not in appspec_model.LIFECYCLE_ORDER_IN_PLACE_WITH_LOAD_BALANCER]
        spec, spec_error, etag = self._read_revision(doc["revision"]["s3Location"], doc.get("_appspecFile"), custom)
        if spec is not None:
            self.orch.update(KIND, deployment_id, event=False, _appspec=_spec_to_doc(spec))
        return spec, spec_error, etag

    def create_target(self, deployment_id: str, instance: dict, events: list[str], label: str | None = None) -> None:
        target_id = f"{deployment_id}:{instance['instanceId']}"
        doc = {"id": target_id, "deploymentId": deployment_id, "instanceId": instance["instanceId"],
               "name": instance["name"],
               "targetArn": f"arn:aws:ec2:{self.db.region}:{self.db.account}:instance/{instance['instanceId']}",
               "lifecycleEvents": [{"lifecycleEventName": e, "status": "Pending"} for e in events]}
        if label:
            doc["instanceLabel"] = label
        self.orch.create(TARGET, target_id, doc, parent=deployment_id)

    def _read_revision(self, location: dict, appspec_file: str | None = None, custom_events=()):
        """(appspec or None, the SpecError if the revision is unusable, the bundle's ETag)."""
        file = location.get("key", "revision")
        try:
            head = self.store.head(location["bucket"], location["key"])
            if head is None:
                raise SpecError(f"s3://{location['bucket']}/{location['key']}", "revision",
                                "an existing object in the store (it does not exist)")
            data = self.store.get_bytes(location["bucket"], location["key"])
            names = (appspec_file,) if appspec_file else APPSPEC_NAMES
            members = _bundle_members(data, location.get("bundleType", "zip"), names)
            name = next((n for n in names if n in members), None)
            if name is None:
                raise SpecError(file, names[0], f"{' or '.join(names)} at the root of the bundle")
            spec = appspec_model.parse_appspec(members[name].decode("utf-8"), name, custom_events)
            appspec_model.validate_against_bundle(spec, set(members))
            return spec, None, head.get("ETag", "").strip('"')
        except SpecError as exc:
            return None, exc, ""

    def _deploy_instance(self, deployment_id: str, instance_id: str, spec, spec_error, location: dict,
                         etag: str) -> bool:
        doc = self.db.get(KIND, deployment_id)
        if not self.run_events(deployment_id, instance_id, in_place_events(doc), spec, spec_error, location, etag):
            return False
        self._finish_target(f"{deployment_id}:{instance_id}", "Succeeded", None)
        return True

    def run_events(self, deployment_id: str, instance_id: str, events: list[str], spec, spec_error,
                   location: dict, etag: str, hooks_from: dict[str, str | None] | None = None) -> bool:
        """Runs `events` on one instance in order; a failure ends the target Failed. `hooks_from` names,
        per event, the deployment whose revision's scripts run (a blue/green rollback's choice);
        otherwise ApplicationStop and Before/AfterBlockTraffic take the instance's last successful
        revision and every other event the current one."""
        target_id = f"{deployment_id}:{instance_id}"
        doc = self.db.get(KIND, deployment_id)
        instance = self.db.get("instance", instance_id)
        if self.db.get(TARGET, target_id)["status"] == "Pending":
            self.orch.transition(TARGET, target_id, "InProgress")
        last_deployment = (instance.get("lastSuccessful") or {}).get(doc["deploymentGroupId"])
        env = {
            "APPLICATION_NAME": doc["applicationName"],
            "DEPLOYMENT_ID": deployment_id,
            "DEPLOYMENT_GROUP_NAME": doc["deploymentGroupName"],
            "DEPLOYMENT_GROUP_ID": doc["deploymentGroupId"],
            "BUNDLE_BUCKET": location["bucket"],
            "BUNDLE_KEY": location["key"],
            "BUNDLE_ETAG": etag,
        }
        if location.get("version"):
            env["BUNDLE_VERSION"] = location["version"]
        for event in events:
            if deployment_id in self._stop_requested:
                self._finish_target(target_id, "Skipped" if event == appspec_model.APPLICATION_STOP else "Failed",
                                    "stopped")
                return False
            command = contracts.HostCommand(
                command_id=f"{target_id}:{event}", deployment_id=deployment_id,
                deployment_group_id=doc["deploymentGroupId"], lifecycle_event=event, env=env,
            )
            source = (hooks_from or {}).get(event, last_deployment if event in appspec_model.LAST_SUCCESSFUL_EVENTS
                                            else deployment_id)
            if event in (appspec_model.BLOCK_TRAFFIC, appspec_model.ALLOW_TRAFFIC):
                if not self._traffic_event(target_id, event, doc, instance):
                    self._finish_target(target_id, "Failed", f"{event} failed")
                    return False
                continue
            if event == appspec_model.DOWNLOAD_BUNDLE:
                if spec_error is not None:
                    self._set_event(target_id, event, "Failed", diagnostics={
                        "errorCode": "UnknownError", "scriptName": "", "message": str(spec_error),
                        "logTail": str(spec_error)})
                    self.db.append_log(EVENT_LOG, f"{target_id}:{event}", f"{spec_error}\n")
                    self._finish_target(target_id, "Failed", str(spec_error))
                    return False
                command.bundle_url = self.store.presign_get(location["bucket"], location["key"])
                command.bundle_type = location.get("bundleType", "zip")
            elif event == appspec_model.INSTALL:
                command.files = appspec_model.to_file_mappings(spec)
                command.permissions = appspec_model.to_permissions(spec)
                command.file_exists_behavior = spec.file_exists_behavior or doc.get("fileExistsBehavior") or "DISALLOW"
            elif source == deployment_id:
                command.archive_deployment_id = deployment_id
                command.scripts = appspec_model.hooks_for(spec, event) if spec is not None else []
            else:
                previous = self.db.get(KIND, source) if source else None
                if not previous or not previous.get("_appspec"):
                    # The AWS agent treats a missing last revision like an event without scripts: a no-op
                    # that reports success (hook_executor's is_noop), so the console shows Succeeded.
                    self._set_event(target_id, event, "Succeeded", start=time.time(), diagnostics=_NO_SCRIPTS)
                    continue
                command.archive_deployment_id = source
                command.scripts = appspec_model.hooks_for(_spec_from_doc(previous["_appspec"]), event)
            if event not in appspec_model.AGENT_EVENTS and not command.scripts:
                self._set_event(target_id, event, "Succeeded", start=time.time(), diagnostics=_NO_SCRIPTS)
                continue
            ok = self._dispatch(target_id, instance_id, command)
            if not ok and event == appspec_model.APPLICATION_STOP and doc.get("ignoreApplicationStopFailures"):
                continue
            if not ok:
                self._finish_target(target_id, "Failed", f"{event} failed")
                return False
        return True

    def _traffic_event(self, target_id: str, event: str, doc: dict, instance: dict) -> bool:
        """BlockTraffic / AllowTraffic: CodeDeploy's own work on the load balancer, no agent involved."""
        started = time.time()
        self._set_event(target_id, event, "InProgress", start=started)
        group = self.apps.get_group(doc["applicationName"], doc["deploymentGroupName"])
        try:
            groups = self.traffic_groups_for(doc["deploymentId"], group, instance["instanceId"])
            traffic = self.traffic
            ok, message = (traffic.block(groups, instance["instanceId"]) if event == appspec_model.BLOCK_TRAFFIC
                           else traffic.allow(groups, instance))
        except (LookupError, ValueError) as exc:
            ok, message = False, str(exc)
        self.db.append_log(EVENT_LOG, f"{target_id}:{event}", message + "\n")
        self._set_event(target_id, event, "Succeeded" if ok else "Failed", start=started, end=time.time(),
                        diagnostics=_NO_SCRIPTS if ok else {"errorCode": "UnknownError", "scriptName": "",
                                                            "message": message, "logTail": message})
        return ok

    def traffic_groups_for(self, deployment_id: str, group: dict, instance_id: str) -> list[str]:
        """The target groups an instance's traffic events act on: a blue/green release with two target
        groups registers the replacement in the idle one and blocks the original in the live one."""
        chosen = (self.db.get(KIND, deployment_id) or {}).get("_trafficGroups") or {}
        return chosen.get(instance_id) or self.traffic.target_groups(group)

    def _dispatch(self, target_id: str, instance_id: str, command: contracts.HostCommand) -> bool:
        event = command.lifecycle_event
        started = time.time()
        self._set_event(target_id, event, "InProgress", start=started)
        self.queue.put(instance_id, command)
        budget = min(sum(s.timeout for s in command.scripts), 3600) + 120 if command.scripts else 900
        deadline = time.monotonic() + budget
        result = None
        while time.monotonic() < deadline:
            result = self.queue.wait_result(command.command_id, timeout=2.0)
            if result is not None:
                break
            handed = self.queue.unacknowledged_since(command.command_id)
            if handed is not None and time.time() - handed > ACK_LIMIT:
                self.queue.redeliver(instance_id, command)
            seen = max(self.queue.last_seen.get(instance_id, 0), self.queue.last_heartbeat(command.command_id) or 0)
            if time.time() - max(seen, started) > SILENCE_LIMIT or not self.fleet.alive(instance_id):
                break
        if result is None:
            self.queue.cancel(instance_id)
            message = f"The instance {instance_id} stopped responding during {event}"
            self._set_event(target_id, event, "Failed", diagnostics={
                "errorCode": "UnknownError", "scriptName": "", "message": message, "logTail": ""})
            return False
        if result.log:
            self.db.append_log(EVENT_LOG, f"{target_id}:{event}", result.log)
        status = "Succeeded" if result.status == "Succeeded" else "Failed"
        diagnostics = {"errorCode": result.error_code, "scriptName": _script_name(command, result),
                       "message": result.message, "logTail": result.log[-LOG_TAIL:]}
        self._set_event(target_id, event, status, start=result.start_time or started,
                        end=result.end_time or time.time(), diagnostics=diagnostics)
        return status == "Succeeded"

    # ------------------------------------------------------------ bookkeeping

    def _set_event(self, target_id: str, event: str, status: str, start: float | None = None,
                   end: float | None = None, diagnostics: dict | None = None) -> None:
        target = self.db.get(TARGET, target_id)
        events = target["lifecycleEvents"]
        for entry in events:
            if entry["lifecycleEventName"] == event:
                entry["status"] = status
                if start:
                    entry["startTime"] = start
                if status in ("Succeeded", "Failed", "Skipped"):
                    entry["endTime"] = end or time.time()
                    entry.setdefault("startTime", entry["endTime"])
                if diagnostics:
                    entry["diagnostics"] = diagnostics
        self.orch.update(TARGET, target_id, lifecycleEvents=events, lifecycleEvent=event,
                         message=f"{event} {status}")

    def _finish_target(self, target_id: str, status: str, reason: str | None) -> None:
        target = self.db.get(TARGET, target_id)
        events = [dict(e, status="Skipped") if e["status"] == "Pending" else e for e in target["lifecycleEvents"]]
        self.orch.transition(TARGET, target_id, status, lifecycleEvents=events, message=reason or status)

    def _skip_target(self, deployment_id: str, instance_id: str) -> None:
        target_id = f"{deployment_id}:{instance_id}"
        self._finish_target(target_id, "Skipped", "skipped")

    def _overview(self, deployment_id: str) -> None:
        counts = {"Pending": 0, "InProgress": 0, "Succeeded": 0, "Failed": 0, "Skipped": 0, "Ready": 0}
        for target in self.db.list(TARGET, parent=deployment_id):
            if target["status"] in counts:
                counts[target["status"]] += 1
        self.orch.update(KIND, deployment_id, event=False, deploymentOverview=counts)

    def _end(self, deployment_id: str, status: str, error: dict | None, rollback_event: str | None = None) -> None:
        """The rollback, if any, is created first (it queues behind this deployment), so whoever sees
        the final status also sees its rollbackInfo."""
        changes = {"completeTime": time.time()}
        if error:
            changes["errorInformation"] = error
        rollback_info = self._maybe_roll_back(deployment_id, rollback_event) if rollback_event else None
        if rollback_info:
            changes["rollbackInfo"] = rollback_info
        self.orch.transition(KIND, deployment_id, status, **changes)

    def _maybe_roll_back(self, deployment_id: str, event: str) -> dict | None:
        """Redeploys the last known good revision as a new deployment, linked to the failed one; the
        failed deployment's rollbackInfo, or None when there is no rollback."""
        doc = self.db.get(KIND, deployment_id)
        config = doc.get("autoRollbackConfiguration") or {}
        wanted = config.get("enabled") and event in (config.get("events") or [])
        if doc.get("_rollbackOnStop") is not None and event == "DEPLOYMENT_STOP_ON_REQUEST":
            wanted = doc["_rollbackOnStop"]
        group = self.apps.get_group(doc["applicationName"], doc["deploymentGroupName"])
        last = group.get("lastSuccessfulDeployment")
        if not wanted or doc.get("creator") == "codeDeployRollback":
            return None
        if doc["deploymentStyle"]["deploymentType"] == "BLUE_GREEN":
            return self._roll_back_blue_green(doc, event, last)
        if not last:
            return None
        good = self.db.get(KIND, last["deploymentId"])
        rollback = self.create_deployment(
            doc["applicationName"], doc["deploymentGroupName"], good["revision"],
            config_name=doc["deploymentConfigName"], description=f"Rollback of {deployment_id}",
            file_exists_behavior=good.get("fileExistsBehavior", "DISALLOW"), creator="codeDeployRollback",
            rollback_of=deployment_id)
        info = dict(doc.get("rollbackInfo") or {})
        info.update({"rollbackDeploymentId": rollback["deploymentId"],
                     "rollbackMessage": f"Deployment {deployment_id} rolled back by {rollback['deploymentId']} "
                                        f"({event}); redeploying the revision of {last['deploymentId']}"})
        return info

    def _roll_back_blue_green(self, doc: dict, event: str, last: dict | None) -> dict | None:
        """Reroutes to the originals as a new deployment, if the release got as far as a replacement."""
        if not doc.get("_replacements"):
            return None
        good = self.db.get(KIND, last["deploymentId"]) if last else doc
        rollback = self.create_deployment(
            doc["applicationName"], doc["deploymentGroupName"], good["revision"],
            config_name=doc["deploymentConfigName"], description=f"Rollback of {doc['deploymentId']}",
            creator="codeDeployRollback", rollback_of=doc["deploymentId"],
            blue_green_rollback_of=doc["deploymentId"])
        info = dict(doc.get("rollbackInfo") or {})
        info.update({"rollbackDeploymentId": rollback["deploymentId"],
                     "rollbackMessage": f"Deployment {doc['deploymentId']} rolled back by {rollback['deploymentId']} "
                                        f"({event}): traffic rerouted to the original instances"})
        return info


def in_place_events(doc: dict) -> list[str]:
    """codedeploy-local's --events if given; with a load balancer, the six traffic events around the rest."""
    if doc.get("_events"):
        return doc["_events"]
    if doc["deploymentStyle"].get("deploymentOption") == "WITH_TRAFFIC_CONTROL":
        return appspec_model.LIFECYCLE_ORDER_IN_PLACE_WITH_LOAD_BALANCER
    return appspec_model.LIFECYCLE_ORDER_IN_PLACE


def _event_order(requested: list[str]) -> list[str]:
    """codedeploy-local's --events: the named events in the order given, with DownloadBundle and Install
    always run (each in its standard place relative to ApplicationStop and BeforeInstall)."""
    for name in requested:
        if not name or not isinstance(name, str) or name in ("Start", "End"):
            raise ValueError(f"lifecycle event {name!r}: expected a lifecycle event name")
    head = [e for e in (appspec_model.APPLICATION_STOP,) if e in requested] + [appspec_model.DOWNLOAD_BUNDLE]
    head += [e for e in (appspec_model.BEFORE_INSTALL,) if e in requested] + [appspec_model.INSTALL]
    rest = [e for e in dict.fromkeys(requested) if e not in head]
    return head + rest


def _script_name(command: contracts.HostCommand, result: contracts.CommandResult) -> str:
    for script in command.scripts:
        if script.location in (result.message or ""):
            return script.location
    return command.scripts[0].location if command.scripts and result.status != "Succeeded" else ""


def _bundle_members(data: bytes, bundle_type: str, read: tuple[str, ...] = APPSPEC_NAMES) -> dict[str, bytes]:
    """Member path -> content (only the members named in `read` are read), for reading the appspec
    and checking that sources exist."""
    members: dict[str, bytes] = {}
    if bundle_type == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                name = info.filename.lstrip("./")
                if name and not info.is_dir():
                    members[name] = archive.read(info) if name in read else b""
        return members
    mode = "r:gz" if bundle_type in ("tgz", "tar.gz") else "r:"
    with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as archive:
        for member in archive.getmembers():
            name = member.name.removeprefix("./").lstrip("/")
            if name and member.isfile():
                handle = archive.extractfile(member)
                members[name] = handle.read() if handle and name in read else b""
    return members


def _spec_to_doc(spec) -> dict:
    """The parts of an appspec later deployments need (ApplicationStop runs these hooks)."""
    return {"file": spec.file, "hooks": {event: [{"location": h.location, "timeout": h.timeout, "runas": h.runas}
                                                 for h in hooks] for event, hooks in spec.hooks.items()}}


def _spec_from_doc(doc: dict):
    hooks = {event: [appspec_model.AppSpecHook(**h) for h in items] for event, items in doc["hooks"].items()}
    return appspec_model.AppSpec(version="0.0", os="linux", hooks=hooks, file=doc.get("file", "appspec.yml"))
