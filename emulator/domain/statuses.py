"""AWS's status names and the one table of transitions each resource may make.

Names are AWS's own (botocore enums): CodePipeline uses CamelCase, CodeBuild UPPER_CASE,
CodeDeploy CamelCase. Anything not in the table is refused by the orchestrator.
"""

from __future__ import annotations

PIPELINE_EXECUTION = "pipeline-execution"
STAGE_EXECUTION = "stage-execution"
ACTION_EXECUTION = "action-execution"
BUILD = "build"
BUILD_BATCH = "build-batch"
DEPLOYMENT = "deployment"
DEPLOYMENT_TARGET = "deployment-target"
METRIC_ALARM = "metric-alarm"
ELB_TARGET = "elb-target"

TERMINAL = {
    PIPELINE_EXECUTION: {"Succeeded", "Failed", "Stopped", "Superseded", "Cancelled"},
    STAGE_EXECUTION: {"Succeeded", "Failed", "Stopped", "Cancelled", "Skipped"},
    ACTION_EXECUTION: {"Succeeded", "Failed", "Abandoned"},
    BUILD: {"SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT", "STOPPED"},
    BUILD_BATCH: {"SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT", "STOPPED"},
    DEPLOYMENT: {"Succeeded", "Failed", "Stopped"},
    DEPLOYMENT_TARGET: {"Succeeded", "Failed", "Skipped", "Unknown"},
    METRIC_ALARM: set(),
    ELB_TARGET: set(),
}

TRANSITIONS: dict[str, dict[str | None, set[str]]] = {
    PIPELINE_EXECUTION: {
        None: {"InProgress"},
        "InProgress": {"Succeeded", "Failed", "Stopping", "Stopped", "Superseded", "Cancelled"},
        "Stopping": {"Stopped", "Failed", "Succeeded"},
    },
    STAGE_EXECUTION: {
        None: {"InProgress", "Skipped"},
        "InProgress": {"Succeeded", "Failed", "Stopping", "Stopped", "Cancelled"},
        "Stopping": {"Stopped", "Failed", "Succeeded"},
    },
    ACTION_EXECUTION: {
        None: {"InProgress"},
        "InProgress": {"Succeeded", "Failed", "Abandoned"},
    },
    BUILD: {
        None: {"IN_PROGRESS"},
        "IN_PROGRESS": {"SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT", "STOPPED"},
    },
    BUILD_BATCH: {
        None: {"IN_PROGRESS"},
        "IN_PROGRESS": {"SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT", "STOPPED"},
    },
    DEPLOYMENT: {
        None: {"Created"},
        "Created": {"Queued", "InProgress", "Failed", "Stopped"},
        "Queued": {"InProgress", "Stopped", "Failed"},
        "InProgress": {"Succeeded", "Failed", "Stopped", "Baking", "Ready"},
        "Baking": {"Succeeded", "Failed", "Stopped"},
        "Ready": {"InProgress", "Succeeded", "Failed", "Stopped"},
    },
    DEPLOYMENT_TARGET: {
        None: {"Pending"},
        "Pending": {"InProgress", "Skipped", "Failed", "Unknown"},
        "InProgress": {"Succeeded", "Failed", "Skipped", "Unknown", "Ready"},
        "Ready": {"Succeeded", "Failed"},
    },
    # CloudWatch: a new alarm starts with insufficient data; any state may follow any other.
    METRIC_ALARM: {
        None: {"INSUFFICIENT_DATA"},
        "INSUFFICIENT_DATA": {"OK", "ALARM"},
        "OK": {"ALARM", "INSUFFICIENT_DATA"},
        "ALARM": {"OK", "INSUFFICIENT_DATA"},
    },
    # Elastic Load Balancing TargetHealth.State: a registered target starts "initial" (or "unused"
    # when no load balancer forwards to its group); deregistering drains it, then it is removed
    # ("unused", Target.NotRegistered). Registering a draining target again puts it back to "initial".
    ELB_TARGET: {
        None: {"initial", "unused"},
        "initial": {"healthy", "unhealthy", "draining", "unused"},
        "healthy": {"unhealthy", "draining", "unused"},
        "unhealthy": {"healthy", "draining", "unused"},
        "unused": {"initial", "draining"},
        "draining": {"initial", "unused"},
    },
}

# CodeBuild phase types, in the order a build passes through them.
BUILD_PHASES = [
    "SUBMITTED",
    "QUEUED",
    "PROVISIONING",
    "DOWNLOAD_SOURCE",
    "INSTALL",
    "PRE_BUILD",
    "BUILD",
    "POST_BUILD",
    "UPLOAD_ARTIFACTS",
    "FINALIZING",
    "COMPLETED",
]

LIFECYCLE_EVENT_STATUSES = {"Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Unknown"}


# The one way out of a terminal status: CodePipeline's RetryStageExecution runs a failed or
# stopped execution (and its stage) again, under the same id.
RESUMABLE = {
    PIPELINE_EXECUTION: {"Failed", "Stopped"},
    STAGE_EXECUTION: {"Failed", "Stopped"},
    BUILD_BATCH: {"FAILED", "FAULT", "TIMED_OUT", "STOPPED"},  # RetryBuildBatch: "only batches that have failed"
}
RESUMED = "InProgress"
RESUMED_AS = {BUILD_BATCH: "IN_PROGRESS"}  # where a retried resource's running status is not RESUMED


def resumed_status(kind: str) -> str:
    return RESUMED_AS.get(kind, RESUMED)


class TransitionRefused(ValueError):
    pass


def check_resume(kind: str, current: str | None) -> None:
    if current not in RESUMABLE.get(kind, set()):
        raise TransitionRefused(f"{kind}: {current or '(new)'} cannot be retried")


def check_transition(kind: str, current: str | None, new: str) -> None:
    allowed = TRANSITIONS[kind].get(current, set())
    if new not in allowed:
        raise TransitionRefused(f"{kind}: {current or '(new)'} -> {new} is not an allowed transition")


def is_terminal(kind: str, status: str | None) -> bool:
    return status in TERMINAL[kind]
