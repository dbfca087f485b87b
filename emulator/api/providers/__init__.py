"""One provider per AWS service: the operations it answers, mapped onto the emulator's services."""

from __future__ import annotations

from typing import Any

from emulator.api.providers.cloudwatch import CloudWatchProvider
from emulator.api.providers.codebuild import CodeBuildProvider
from emulator.api.providers.codecommit import CodeCommitProvider
from emulator.api.providers.codedeploy import CodeDeployProvider
from emulator.api.providers.codepipeline import CodePipelineProvider
from emulator.api.providers.elbv2 import Elbv2Provider
from emulator.api.providers.secretsmanager import SecretsManagerProvider
from emulator.api.providers.ssm import SsmProvider


class NotYetImplemented:
    """A service whose every operation answers "not implemented" (CloudWatch Logs until it exists)."""


def providers_for(cp: Any) -> dict[str, Any]:
    """botocore service name -> provider, built over one control plane's services."""
    providers: dict[str, Any] = {
        "codepipeline": CodePipelineProvider(cp.pipelines, cp.executions),
        "codebuild": CodeBuildProvider(cp.projects, cp.builds, cp.repos, cp.store, getattr(cp, "batches", None)),
        "codedeploy": CodeDeployProvider(cp.apps, cp.deployments, cp.fleet),
        "codecommit": CodeCommitProvider(cp.repos),
        "cloudwatch": CloudWatchProvider(cp.metrics, cp.alarms) if getattr(cp, "alarms", None) else NotYetImplemented(),
        "logs": NotYetImplemented(),
    }
    params = getattr(cp, "params", None)
    providers["ssm"] = SsmProvider(params) if params is not None else NotYetImplemented()
    providers["secretsmanager"] = SecretsManagerProvider(params) if params is not None else NotYetImplemented()
    return providers


def query_providers_for(cp: Any) -> dict[str, Any]:
    """The query-protocol services (botocore service name -> provider): Elastic Load Balancing v2."""
    load_balancing = getattr(cp, "load_balancing", None)
    return {"elbv2": Elbv2Provider(load_balancing, cp.fleet)} if load_balancing is not None else {}
