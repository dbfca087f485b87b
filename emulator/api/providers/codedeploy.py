"""CodeDeploy's API (CodeDeploy_20141006) over applications, deployment groups, the fleet and deployments."""

from __future__ import annotations

import time

from emulator.api.aws_protocol import AwsError
from emulator.domain import statuses
from emulator.services.codedeploy.applications import APPLICATION, GROUP, Applications, traffic_settings
from emulator.services.codedeploy.deployments import DeploymentService
from emulator.services.codedeploy.fleet import Fleet

ON_PREMISES = "codedeploy-onpremises-instance"


class CodeDeployProvider:
    NOT_FOUND = {"Application": "ApplicationDoesNotExistException",
                 "DeploymentGroup": "DeploymentGroupDoesNotExistException",
                 "DeploymentConfig": "DeploymentConfigDoesNotExistException",
                 "Deployment": "DeploymentDoesNotExistException",
                 "Instance": "InstanceDoesNotExistException"}
    CONFLICT = {"CreateApplication": "ApplicationAlreadyExistsException",
                "CreateDeploymentGroup": "DeploymentGroupAlreadyExistsException",
                "CreateDeploymentConfig": "DeploymentConfigAlreadyExistsException",
                "*": "InvalidOperationException"}
    INVALID = {"CreateDeploymentGroup": "InvalidEC2TagException", "UpdateDeploymentGroup": "InvalidEC2TagException",
               "CreateDeploymentConfig": "InvalidMinimumHealthyHostValueException",
               "DeleteDeploymentConfig": "InvalidOperationException",
               "CreateDeployment": "InvalidRevisionException", "*": "InvalidOperationException"}
    # The field an InvalidField names -> the exception CodeDeploy answers for it.
    INVALID_FIELDS = {"deploymentStyle": "InvalidDeploymentStyleException",
                      "loadBalancerInfo": "InvalidLoadBalancerInfoException",
                      "blueGreenDeploymentConfiguration": "InvalidBlueGreenDeploymentConfigurationException",
                      "trafficRoutingConfig": "InvalidTrafficRoutingConfigurationException",
                      "targetInstances": "InvalidTargetInstancesException",
                      "deploymentConfigName": "InvalidDeploymentConfigNameException",
                      "deploymentWaitType": "InvalidDeploymentWaitTypeException",
                      "deploymentType": "UnsupportedActionForDeploymentTypeException",
                      "deploymentStatus": "DeploymentIsNotInReadyStateException"}

    def __init__(self, apps: Applications, deployments: DeploymentService, fleet: Fleet):
        self.apps = apps
        self.deployments = deployments
        self.fleet = fleet
        self.db = apps.db

    # ------------------------------------------------------------ applications

    def CreateApplication(self, p: dict) -> dict:
        platform = p.get("computePlatform", "Server")
        if platform != "Server":
            raise AwsError("InvalidComputePlatformException", f"computePlatform {platform}: only Server is supported")
        return {"applicationId": self.apps.create_application(p["applicationName"])["applicationId"]}

    def GetApplication(self, p: dict) -> dict:
        return {"application": self._application(p["applicationName"])}

    def BatchGetApplications(self, p: dict) -> dict:
        return {"applicationsInfo": [self._application(n) for n in p["applicationNames"]]}

    def ListApplications(self, p: dict) -> dict:
        return {"applications": sorted(a["applicationName"] for a in self.apps.list_applications())}

    def DeleteApplication(self, p: dict) -> dict:
        name = p["applicationName"]
        if self.db.get(APPLICATION, name):
            for group in self.apps.list_groups(name):
                self.db.delete(GROUP, f"{name}/{group['deploymentGroupName']}")
            self.db.delete(APPLICATION, name)
        return {}

    def _application(self, name: str) -> dict:
        app = dict(self.apps.get_application(name))
        app["linkedToGitHub"] = False
        return app

    # ------------------------------------------------------------ deployment groups

    def CreateDeploymentGroup(self, p: dict) -> dict:
        options = {k: v for k, v in p.items() if k not in ("applicationName", "deploymentGroupName")}
        group = self.apps.create_group(p["applicationName"], p["deploymentGroupName"], **options)
        return {"deploymentGroupId": group["deploymentGroupId"]}

    def GetDeploymentGroup(self, p: dict) -> dict:
        return {"deploymentGroupInfo": self.apps.get_group(p["applicationName"], p["deploymentGroupName"])}

    def BatchGetDeploymentGroups(self, p: dict) -> dict:
        found, missing = [], []
        for name in p["deploymentGroupNames"]:
            group = self.db.get(GROUP, f"{p['applicationName']}/{name}")
            (found if group else missing).append(group or name)
        self.apps.get_application(p["applicationName"])
        return {"deploymentGroupsInfo": found,
                "errorMessage": f"Deployment groups not found: {', '.join(missing)}" if missing else None}

    def ListDeploymentGroups(self, p: dict) -> dict:
        self.apps.get_application(p["applicationName"])
        return {"applicationName": p["applicationName"],
                "deploymentGroups": sorted(g["deploymentGroupName"] for g in self.apps.list_groups(p["applicationName"]))}

    def UpdateDeploymentGroup(self, p: dict) -> dict:
        app, name = p["applicationName"], p["currentDeploymentGroupName"]
        group = dict(self.apps.get_group(app, name))
        if "deploymentConfigName" in p:
            self.apps.get_config(p["deploymentConfigName"])
        new_name = p.get("newDeploymentGroupName") or name
        changes = {k: v for k, v in p.items()
                   if k not in ("applicationName", "currentDeploymentGroupName", "newDeploymentGroupName")}
        group.update(changes, deploymentGroupName=new_name)
        if {"deploymentStyle", "loadBalancerInfo", "blueGreenDeploymentConfiguration"} & set(changes):
            group.update(traffic_settings(group))  # checked together, AWS's defaults filled in
        if new_name != name:
            if self.db.get(GROUP, f"{app}/{new_name}"):
                raise AwsError("DeploymentGroupAlreadyExistsException", f"Deployment group {new_name} already exists")
            self.db.delete(GROUP, f"{app}/{name}")
        self.db.put(GROUP, f"{app}/{new_name}", group, parent=app)
        return {"hooksNotCleanedUp": []}

    def DeleteDeploymentGroup(self, p: dict) -> dict:
        key = f"{p['applicationName']}/{p['deploymentGroupName']}"
        self.apps.get_application(p["applicationName"])
        if self.db.get(GROUP, key):
            self.db.delete(GROUP, key)
        return {"hooksNotCleanedUp": []}

    # ------------------------------------------------------------ deployment configurations

    def GetDeploymentConfig(self, p: dict) -> dict:
        return {"deploymentConfigInfo": self.apps.get_config(p["deploymentConfigName"])}

    def ListDeploymentConfigs(self, p: dict) -> dict:
        lister = getattr(self.apps, "list_configs", None)
        if lister:
            return {"deploymentConfigsList": lister()}
        from emulator.domain.deployment_math import PREDEFINED

        return {"deploymentConfigsList": list(PREDEFINED)}

    def CreateDeploymentConfig(self, p: dict) -> dict:
        create = getattr(self.apps, "create_config", None)
        if create is None:
            raise AwsError("NotImplemented", "CreateDeploymentConfig is not implemented yet", 501)
        config = create(p["deploymentConfigName"], p.get("minimumHealthyHosts"), p.get("computePlatform", "Server"),
                        p.get("trafficRoutingConfig"))
        return {"deploymentConfigId": config.get("deploymentConfigId", config["deploymentConfigName"])}

    def DeleteDeploymentConfig(self, p: dict) -> dict:
        delete = getattr(self.apps, "delete_config", None)
        if delete is None:
            raise AwsError("NotImplemented", "DeleteDeploymentConfig is not implemented yet", 501)
        delete(p["deploymentConfigName"])
        return {}

    # ------------------------------------------------------------ deployments

    def CreateDeployment(self, p: dict) -> dict:
        if "deploymentGroupName" not in p:
            raise AwsError("DeploymentGroupNameRequiredException", "deploymentGroupName is required")
        if "revision" not in p:
            raise AwsError("RevisionRequiredException", "revision is required")
        self.apps.get_application(p["applicationName"])
        deployment = self.deployments.create_deployment(
            p["applicationName"], p["deploymentGroupName"], p["revision"],
            config_name=p.get("deploymentConfigName"), description=p.get("description", ""),
            file_exists_behavior=p.get("fileExistsBehavior", "DISALLOW"),
            ignore_application_stop_failures=bool(p.get("ignoreApplicationStopFailures")),
            auto_rollback=p.get("autoRollbackConfiguration"), target_instances=p.get("targetInstances"),
        )
        return {"deploymentId": deployment["deploymentId"]}

    def ContinueDeployment(self, p: dict) -> dict:
        if "deploymentId" not in p:
            raise AwsError("DeploymentIdRequiredException", "deploymentId is required")
        self._deployment(p["deploymentId"])
        self.deployments.continue_deployment(p["deploymentId"], p.get("deploymentWaitType", "READY_WAIT"))
        return {}

    def GetDeployment(self, p: dict) -> dict:
        return {"deploymentInfo": self._deployment(p["deploymentId"])}

    def BatchGetDeployments(self, p: dict) -> dict:
        return {"deploymentsInfo": [self._deployment(i) for i in p["deploymentIds"]
                                    if self.db.get(statuses.DEPLOYMENT, i)]}

    def ListDeployments(self, p: dict) -> dict:
        if p.get("deploymentGroupName") and not p.get("applicationName"):
            raise AwsError("ApplicationNameRequiredException", "applicationName is required with deploymentGroupName")
        if p.get("applicationName"):
            self.apps.get_application(p["applicationName"])
        if p.get("deploymentGroupName"):
            self.apps.get_group(p["applicationName"], p["deploymentGroupName"])
        wanted = set(p.get("includeOnlyStatuses") or [])
        docs = self.deployments.list(p.get("applicationName"), p.get("deploymentGroupName"))
        docs.sort(key=lambda d: d.get("createTime", 0), reverse=True)
        return {"deployments": [d["deploymentId"] for d in docs if not wanted or d["status"] in wanted]}

    def StopDeployment(self, p: dict) -> dict:
        doc = self.deployments.get(p["deploymentId"])
        if statuses.is_terminal(statuses.DEPLOYMENT, doc["status"]):
            raise AwsError("DeploymentAlreadyCompletedException",
                           f"Deployment {p['deploymentId']} has already completed ({doc['status']})")
        self.deployments.stop(p["deploymentId"], p.get("autoRollbackEnabled"))
        return {"status": "Pending", "statusMessage": "Stopping the deployment"}

    def _deployment(self, deployment_id: str) -> dict:
        doc = dict(self.deployments.get(deployment_id))
        doc["deploymentStatusMessages"] = list(doc.get("deploymentStatusMessages") or []) + (
            [doc["errorInformation"]["message"]] if doc.get("errorInformation") else [])
        return doc

    # ------------------------------------------------------------ instances and targets

    def ListDeploymentInstances(self, p: dict) -> dict:
        wanted = set(p.get("instanceStatusFilter") or [])
        return {"instancesList": [t["instanceId"] for t in self.deployments.targets(p["deploymentId"])
                                  if not wanted or t["status"] in wanted]}

    def GetDeploymentInstance(self, p: dict) -> dict:
        return {"instanceSummary": self._instance_summary(self._target(p["deploymentId"], p["instanceId"]))}

    def BatchGetDeploymentInstances(self, p: dict) -> dict:
        return {"instancesSummary": [self._instance_summary(self._target(p["deploymentId"], i))
                                     for i in p["instanceIds"]]}

    def ListDeploymentTargets(self, p: dict) -> dict:
        return {"targetIds": [t["instanceId"] for t in self.deployments.targets(p["deploymentId"])]}

    def GetDeploymentTarget(self, p: dict) -> dict:
        if "targetId" not in p:
            raise AwsError("DeploymentTargetIdRequiredException", "targetId is required")
        return {"deploymentTarget": self._target_shape(self._target(p["deploymentId"], p["targetId"],
                                                                   "DeploymentTargetDoesNotExistException"))}

    def BatchGetDeploymentTargets(self, p: dict) -> dict:
        ids = p.get("targetIds") or []
        if len(ids) > 25:
            raise AwsError("DeploymentTargetListSizeExceededException", "At most 25 target ids per request")
        return {"deploymentTargets": [self._target_shape(self._target(p["deploymentId"], i,
                                                                      "DeploymentTargetDoesNotExistException"))
                                      for i in ids]}

    def _target(self, deployment_id: str, instance_id: str, missing: str = "InstanceDoesNotExistException") -> dict:
        for target in self.deployments.targets(deployment_id):
            if instance_id in (target["instanceId"], target.get("name")):
                return target
        raise AwsError(missing, f"Instance {instance_id} is not a target of deployment {deployment_id}")

    @staticmethod
    def _instance_summary(t: dict) -> dict:
        return {"deploymentId": t["deploymentId"], "instanceId": t["targetArn"], "status": t["status"],
                "lastUpdatedAt": t.get("updatedAt"), "lifecycleEvents": t.get("lifecycleEvents", []),
                "instanceType": t.get("instanceLabel", "Blue")}

    @staticmethod
    def _target_shape(t: dict) -> dict:
        return {"deploymentTargetType": "InstanceTarget", "instanceTarget": {
            "deploymentId": t["deploymentId"], "targetId": t["instanceId"], "targetArn": t["targetArn"],
            "status": t["status"], "lastUpdatedAt": t.get("updatedAt"),
            "lifecycleEvents": t.get("lifecycleEvents", []),
            **({"instanceLabel": t["instanceLabel"]} if t.get("instanceLabel") else {})}}

    # ------------------------------------------------------------ on-premises instances

    def RegisterOnPremisesInstance(self, p: dict) -> dict:
        name = p["instanceName"]
        arn_session, arn_user = p.get("iamSessionArn"), p.get("iamUserArn")
        if not arn_session and not arn_user:
            raise AwsError("IamArnRequiredException", "Give iamSessionArn or iamUserArn")
        if arn_session and arn_user:
            raise AwsError("MultipleIamArnsProvidedException", "Give only one of iamSessionArn and iamUserArn")
        if self.db.get(ON_PREMISES, name):
            raise AwsError("InstanceNameAlreadyRegisteredException", f"Instance {name} is already registered")
        self.db.put(ON_PREMISES, name, {
            "instanceName": name, "iamSessionArn": arn_session, "iamUserArn": arn_user,
            "instanceArn": f"arn:aws:codedeploy:{self.db.region}:{self.db.account}:instance/{name}",
            "registerTime": time.time(), "tags": [], "registrationStatus": "Registered"})
        return {}

    def DeregisterOnPremisesInstance(self, p: dict) -> dict:
        doc = self.db.get(ON_PREMISES, p["instanceName"])
        if doc:
            self.db.put(ON_PREMISES, p["instanceName"], {**doc, "deregisterTime": time.time(),
                                                           "registrationStatus": "Deregistered"})
        return {}

    def GetOnPremisesInstance(self, p: dict) -> dict:
        doc = self.db.get(ON_PREMISES, p["instanceName"])
        if doc is None:
            raise AwsError("InstanceNotRegisteredException", f"Instance {p['instanceName']} is not registered")
        return {"instanceInfo": doc}

    def BatchGetOnPremisesInstances(self, p: dict) -> dict:
        return {"instanceInfos": [d for d in (self.db.get(ON_PREMISES, n) for n in p["instanceNames"]) if d]}

    def ListOnPremisesInstances(self, p: dict) -> dict:
        status = p.get("registrationStatus")
        wanted = {(t["Key"], t.get("Value")) for t in p.get("tagFilters") or []}
        names = []
        for doc in self.db.list(ON_PREMISES):
            tags = {(t["Key"], t.get("Value")) for t in doc.get("tags", [])}
            if status and doc["registrationStatus"] != status:
                continue
            if wanted and not wanted & tags:
                continue
            names.append(doc["instanceName"])
        return {"instanceNames": sorted(names)}

    def AddTagsToOnPremisesInstances(self, p: dict) -> dict:
        for name in p["instanceNames"]:
            doc = self.db.get(ON_PREMISES, name)
            if doc is None:
                raise AwsError("InstanceNotRegisteredException", f"Instance {name} is not registered")
            tags = {t["Key"]: t for t in doc.get("tags", [])}
            tags.update({t["Key"]: t for t in p["tags"]})
            self.db.put(ON_PREMISES, name, {**doc, "tags": list(tags.values())})
        return {}
