"""Where the agent keeps bundles and install records, laid out as the AWS agent does under
/opt/codedeploy-agent/deployment-root, so scripts and operators find things where they expect."""

from __future__ import annotations

import os

DEFAULT_DEPLOYMENT_ROOT = "/opt/codedeploy-agent/deployment-root"
ENV_DEPLOYMENT_ROOT = "PIPELOCAL_DEPLOYMENT_ROOT"


class DeploymentRoot:
    def __init__(self, path: str):
        self.path = os.path.abspath(path)

    @classmethod
    def from_environment(cls) -> "DeploymentRoot":
        return cls(os.environ.get(ENV_DEPLOYMENT_ROOT) or DEFAULT_DEPLOYMENT_ROOT)

    def deployment_dir(self, group_id: str, deployment_id: str) -> str:
        return os.path.join(self.path, _segment(group_id), _segment(deployment_id))

    def archive_dir(self, group_id: str, deployment_id: str) -> str:
        return os.path.join(self.deployment_dir(group_id, deployment_id), "deployment-archive")

    def bundle_file(self, group_id: str, deployment_id: str, bundle_type: str) -> str:
        return os.path.join(self.deployment_dir(group_id, deployment_id), f"bundle.{_segment(bundle_type)}")

    @property
    def instructions_dir(self) -> str:
        return os.path.join(self.path, "deployment-instructions")

    def cleanup_file(self, group_id: str) -> str:
        return os.path.join(self.instructions_dir, f"{_segment(group_id)}-cleanup")


def _segment(value: str) -> str:
    """Ids come from the network; one must never name a path outside the root."""
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise ValueError(f"not a usable id for a directory name: {value!r}")
    return value
