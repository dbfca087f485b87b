"""CodeDeploy applications, deployment groups and deployment configurations."""

from __future__ import annotations

import time
import uuid

from emulator.domain import deployment_math
from emulator.domain.errors import Conflict, NotFound
from emulator.state.database import Database

APPLICATION = "codedeploy-application"
GROUP = "codedeploy-deployment-group"
CONFIG = "codedeploy-deployment-config"


class Applications:
    def __init__(self, db: Database):
        self.db = db

    def create_application(self, name: str, compute_platform: str = "Server") -> dict:
        if self.db.get(APPLICATION, name):
            raise Conflict(f"Application {name} already exists")
        return self.db.put(APPLICATION, name, {
            "applicationId": str(uuid.uuid4()), "applicationName": name, "createTime": time.time(),
            "computePlatform": compute_platform,
        })

    def get_application(self, name: str) -> dict:
        app = self.db.get(APPLICATION, name)
        if app is None:
            raise NotFound("Application", name)
        return app

    def list_applications(self) -> list[dict]:
        return self.db.list(APPLICATION)

    def create_group(self, application: str, name: str, **options) -> dict:
        self.get_application(application)
        key = f"{application}/{name}"
        if self.db.get(GROUP, key):
            raise Conflict(f"Deployment group {name} already exists for application {application}")
        config = options.get("deploymentConfigName") or deployment_math.DEFAULT_CONFIG
        self.get_config(config)
        group = {
            "applicationName": application,
            "deploymentGroupId": str(uuid.uuid4()),
            "deploymentGroupName": name,
            "deploymentConfigName": config,
            "ec2TagFilters": options.get("ec2TagFilters") or [],
            "onPremisesInstanceTagFilters": options.get("onPremisesInstanceTagFilters") or [],
            "serviceRoleArn": options.get("serviceRoleArn", f"arn:aws:iam::{self.db.account}:role/CodeDeployRole"),
            "autoRollbackConfiguration": options.get("autoRollbackConfiguration") or {"enabled": False, "events": []},
            "deploymentStyle": options.get("deploymentStyle") or
            {"deploymentType": "IN_PLACE", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"},
            "computePlatform": "Server",
        }
        return self.db.put(GROUP, key, group, parent=application)

    def get_group(self, application: str, name: str) -> dict:
        self.get_application(application)
        group = self.db.get(GROUP, f"{application}/{name}")
        if group is None:
            raise NotFound("DeploymentGroup", name)
        return group

    def update_group(self, application: str, name: str, **changes) -> dict:
        self.get_group(application, name)
        return self.db.update(GROUP, f"{application}/{name}", **changes)

    def list_groups(self, application: str) -> list[dict]:
        return self.db.list(GROUP, parent=application)

    def get_config(self, name: str) -> dict:
        if name in deployment_math.PREDEFINED:
            return {"deploymentConfigName": name, "computePlatform": "Server",
                    "minimumHealthyHosts": deployment_math.PREDEFINED[name]}
        config = self.db.get(CONFIG, name)
        if config is None:
            raise NotFound("DeploymentConfig", name)
        return config
