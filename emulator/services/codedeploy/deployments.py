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
from emulator.domain import deployment_math, statuses
from emulator.domain.errors import NotFound, SpecError
from emulator.orchestration import Orchestrator
from emulator.services.codedeploy.applications import Applications
from emulator.services.codedeploy.command_queue import CommandQueue
from emulator.services.codedeploy.fleet import Fleet
from emulator.store.object_store import ObjectStore

KIND = statuses.DEPLOYMENT
TARGET = statuses.DEPLOYMENT_TARGET
EVENT_LOG = "lifecycle-event"
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

    # ------------------------------------------------------------ API

    def create_deployment(self, application: str, group_name: str, revision: dict, *,
                          config_name: str | None = None, description: str = "",
                          file_exists_behavior: str = "DISALLOW", ignore_application_stop_failures: bool = False,
                          creator: str = "user", rollback_of: str | None = None,
                          auto_rollback: dict | None = None, target_instances: dict | None = None,
                          instance_names: list[str] | None = None, appspec_file: str | None = None,
                          lifecycle_events: list[str] | None = None) -> dict:
        """`instance_names`, `appspec_file` and `lifecycle_events` are what `codedeploy-local` offers
        (named instances, --appspec-filename, --events); the rest is CreateDeployment's."""
        group = self.apps.get_group(application, group_name)
        config = config_name or group["deploymentConfigName"]
        self.apps.get_config(config)
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
            "autoRollbackConfiguration": auto_rollback or group["autoRollbackConfiguration"],
            "computePlatform": "Server",
            "deploymentOverview": {"Pending": 0, "InProgress": 0, "Succeeded": 0, "Failed": 0, "Skipped": 0,
                                   "Ready": 0},
        }
        if target_instances:
            doc["targetInstances"] = target_instances
        extras = {"_instanceNames": instance_names, "_appspecFile": appspec_file, "_events": events}
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
                self.orch.transition(KIND, deployment_id, "Failed", completeTime=time.time(),
                                     errorInformation={"code": "INTERNAL_ERROR", "message": str(exc)})
        finally:
            with self._slots:
                self._stop_requested.discard(deployment_id)
                self._alarm_stops.pop(deployment_id, None)
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
        instances = self._targets(doc, group)
        self.orch.transition(KIND, deployment_id, "InProgress", startTime=time.time())
        if not instances:
            self._end(deployment_id, "Failed", {"code": "NO_INSTANCES", "message": "The deployment failed because "
                      "no instances were found for your deployment group. Check your deployment group settings "
                      "to make sure the tags for your EC2 instances or Auto Scaling groups correctly identify the "
                      "instances you want to deploy to, and then try again."})
            return
        location = doc["revision"]["s3Location"]
        events = doc.get("_events") or appspec_model.LIFECYCLE_ORDER_IN_PLACE
        custom = [e for e in events if e not in appspec_model.LIFECYCLE_ORDER_IN_PLACE_WITH_LOAD_BALANCER]
        spec, spec_error, etag = self._read_revision(location, doc.get("_appspecFile"), custom)
        if spec is not None:
            self.orch.update(KIND, deployment_id, event=False, _appspec=_spec_to_doc(spec))
        config = self.apps.get_config(doc["deploymentConfigName"])
        plan = deployment_math.plan(config["minimumHealthyHosts"], len(instances))
        self.orch.update(KIND, deployment_id, event=False,
                         configurationExplained=deployment_math.explain(doc["deploymentConfigName"], plan,
                                                                        len(instances)))
        for inst in instances:
            self.orch.create(TARGET, f"{deployment_id}:{inst['instanceId']}", {
                "id": f"{deployment_id}:{inst['instanceId']}", "deploymentId": deployment_id,
                "instanceId": inst["instanceId"], "name": inst["name"], "targetArn":
                f"arn:aws:ec2:{self.db.region}:{self.db.account}:instance/{inst['instanceId']}",
                "lifecycleEvents": [{"lifecycleEventName": e, "status": "Pending"} for e in events],
            }, parent=deployment_id)
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
        target_id = f"{deployment_id}:{instance_id}"
        doc = self.db.get(KIND, deployment_id)
        instance = self.db.get("instance", instance_id)
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
        for event in doc.get("_events") or appspec_model.LIFECYCLE_ORDER_IN_PLACE:
            if deployment_id in self._stop_requested:
                self._finish_target(target_id, "Skipped" if event == appspec_model.APPLICATION_STOP else "Failed",
                                    "stopped")
                return False
            command = contracts.HostCommand(
                command_id=f"{target_id}:{event}", deployment_id=deployment_id,
                deployment_group_id=doc["deploymentGroupId"], lifecycle_event=event, env=env,
            )
            if event == appspec_model.APPLICATION_STOP:
                previous = self.db.get(KIND, last_deployment) if last_deployment else None
                if not previous or not previous.get("_appspec"):
                    # The AWS agent treats a missing last revision like an event without scripts: a no-op
                    # that reports success (hook_executor's is_noop), so the console shows Succeeded.
                    self._set_event(target_id, event, "Succeeded", start=time.time(), diagnostics=_NO_SCRIPTS)
                    continue
                command.archive_deployment_id = last_deployment
                command.scripts = appspec_model.hooks_for(_spec_from_doc(previous["_appspec"]), event)
            elif event == appspec_model.DOWNLOAD_BUNDLE:
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
            else:
                command.archive_deployment_id = deployment_id
                command.scripts = appspec_model.hooks_for(spec, event)
            if event not in appspec_model.AGENT_EVENTS and not command.scripts:
                self._set_event(target_id, event, "Succeeded", start=time.time(), diagnostics=_NO_SCRIPTS)
                continue
            ok = self._dispatch(target_id, instance_id, command)
            if not ok and event == appspec_model.APPLICATION_STOP and doc.get("ignoreApplicationStopFailures"):
                continue
            if not ok:
                self._finish_target(target_id, "Failed", f"{event} failed")
                return False
        self._finish_target(target_id, "Succeeded", None)
        return True

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
        changes = {"completeTime": time.time()}
        if error:
            changes["errorInformation"] = error
        self.orch.transition(KIND, deployment_id, status, **changes)
        if rollback_event:
            self._maybe_roll_back(deployment_id, rollback_event)

    def _maybe_roll_back(self, deployment_id: str, event: str) -> None:
        """Redeploys the last known good revision as a new deployment, linked to the failed one."""
        doc = self.db.get(KIND, deployment_id)
        config = doc.get("autoRollbackConfiguration") or {}
        wanted = config.get("enabled") and event in (config.get("events") or [])
        if doc.get("_rollbackOnStop") is not None and event == "DEPLOYMENT_STOP_ON_REQUEST":
            wanted = doc["_rollbackOnStop"]
        group = self.apps.get_group(doc["applicationName"], doc["deploymentGroupName"])
        last = group.get("lastSuccessfulDeployment")
        if not wanted or not last or doc.get("creator") == "codeDeployRollback":
            return
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
        self.orch.update(KIND, deployment_id, rollbackInfo=info)


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
