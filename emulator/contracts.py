"""Schemas of the internal HTTP API between the control plane, build runners and agents.

This module is imported inside build and agent containers, where only the Python standard
library exists, so it uses dataclasses and nothing else. The control plane validates the same
classes with FastAPI; the containers encode and decode them with `encode` / `decode`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

INTERNAL_PREFIX = "/_internal"
TOKEN_HEADER = "X-Pipelocal-Token"


# ---------------------------------------------------------------- builds (runners/)


@dataclass
class CommandSpec:
    text: str
    line: int = 0  # line of the command in buildspec.yml, for error messages


@dataclass
class PhaseSpec:
    name: str  # AWS phase type: INSTALL, PRE_BUILD, BUILD, POST_BUILD
    commands: list[CommandSpec] = field(default_factory=list)
    finally_commands: list[CommandSpec] = field(default_factory=list)
    run_as: str | None = None
    on_failure: str | None = None  # ABORT | CONTINUE | RETRY[-count][-regex]


@dataclass
class BuildPlan:
    """Everything a runner needs to execute one build inside its container."""

    build_id: str
    src_dir: str
    shell: str = "bash"
    env: dict[str, str] = field(default_factory=dict)
    secret_values: list[str] = field(default_factory=list)  # masked in every log line
    run_as: str | None = None
    phases: list[PhaseSpec] = field(default_factory=list)
    exported_variables: list[str] = field(default_factory=list)


@dataclass
class PhaseReport:
    phase: str
    status: str  # SUCCEEDED | FAILED | FAULT | TIMED_OUT | STOPPED | IN_PROGRESS
    start_time: float
    end_time: float | None = None
    message: str | None = None


@dataclass
class LogChunk:
    seq: int
    text: str


@dataclass
class RunnerResult:
    succeeded: bool
    exported_variables: dict[str, str] = field(default_factory=dict)
    message: str | None = None


# ---------------------------------------------------------------- deployments (agents/)


@dataclass
class InstanceRegistration:
    instance_name: str
    address: str = ""
    agent_version: str = ""
    # self-registration (like an on-premises instance): the tags deployment groups select by,
    # and the URL the instance's port 80 is reachable at from the host
    tags: dict[str, str] = field(default_factory=dict)
    app_url: str = ""


@dataclass
class HookScript:
    location: str
    timeout: int = 3600
    runas: str | None = None


@dataclass
class FileMapping:
    source: str
    destination: str


@dataclass
class PermissionSpec:
    object: str
    pattern: str = "**"
    except_: list[str] = field(default_factory=list)
    owner: str | None = None
    group: str | None = None
    mode: str | None = None
    type: list[str] = field(default_factory=list)  # "file" and/or "directory"
    acls: list[str] = field(default_factory=list)  # setfacl entries such as "u:bob:rw"
    context: dict[str, str] | None = None  # SELinux user, role, type, range


@dataclass
class HostCommand:
    """One lifecycle event for one instance, as CodeDeploy's PollHostCommand hands it out."""

    command_id: str
    deployment_id: str
    deployment_group_id: str
    lifecycle_event: str
    env: dict[str, str] = field(default_factory=dict)
    # DownloadBundle
    bundle_url: str | None = None
    bundle_type: str | None = None  # zip | tar | tgz
    # Install
    files: list[FileMapping] = field(default_factory=list)
    permissions: list[PermissionSpec] = field(default_factory=list)
    file_exists_behavior: str = "DISALLOW"
    # script events: the archive whose scripts run (the current or the last successful deployment)
    archive_deployment_id: str | None = None
    scripts: list[HookScript] = field(default_factory=list)


@dataclass
class PollResponse:
    command: HostCommand | None = None


@dataclass
class HostSample:
    """The agent's own container as its cgroup counts it, sent with each poll (host metrics)."""
    sampled_at: float = 0.0
    cpu_seconds: float | None = None  # cumulative CPU time used
    cpus: float | None = None  # CPUs the container may use
    memory_used_bytes: float | None = None
    memory_limit_bytes: float | None = None


@dataclass
class PollRequest:
    host: HostSample | None = None


@dataclass
class CommandResult:
    command_id: str
    status: str  # Succeeded | Failed
    error_code: str = "Success"  # LifecycleErrorCode
    message: str = ""
    log: str = ""
    start_time: float = 0.0
    end_time: float = 0.0


# ---------------------------------------------------------------- local builds (`pipelocal build`)


@dataclass
class LocalBuildRequest:
    """A `pipelocal build` handed to the running control plane of the same installation, which
    has the Docker SDK loaded already. Paths are absolute on the machine both run on."""

    source_dir: str
    buildspec: str | None = None
    image: str = "pipelocal/build:1"
    compute_type: str = "BUILD_GENERAL1_SMALL"
    env: dict[str, str] = field(default_factory=dict)
    artifacts_dir: str | None = None
    source_mode: str = "copy"
    privileged: bool = False
    phase: str | None = None
    timeout_seconds: float = 3600
    cache_dir: str | None = None
    uid: int = -1  # the caller's: files the build writes must belong to whoever asked


@dataclass
class LocalBuildEvent:
    """One line of the answer to LocalBuildRequest, in order."""

    # text | phase (one starts) | result (the last line) | refused (bad input, before the build) |
    # build-refused (a reference or runtime that does not resolve) | no-engine
    kind: str
    text: str = ""  # text: build output; refused, no-engine: the reason
    phase: str = ""
    result: dict | None = None  # the fields of local_build.LocalBuildResult


# ---------------------------------------------------------------- encoding


def encode(obj: typing.Any) -> typing.Any:
    if dataclasses.is_dataclass(obj):
        return {f.name.rstrip("_"): encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [encode(v) for v in obj]
    if isinstance(obj, dict):
        return {k: encode(v) for k, v in obj.items()}
    return obj


def decode(cls: type, data: typing.Any) -> typing.Any:
    """Builds `cls` from JSON data, ignoring unknown keys so either side can grow first."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = f.name.rstrip("_")
        if key in data:
            kwargs[f.name] = _decode_value(hints[f.name], data[key])
    return cls(**kwargs)


def _decode_value(tp: typing.Any, value: typing.Any) -> typing.Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        inner = [a for a in args if a is not type(None)]
        return _decode_value(inner[0], value) if inner else value
    if origin is list:
        return [_decode_value(args[0], v) for v in value]
    if origin is dict:
        return {k: _decode_value(args[1], v) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return decode(tp, value)
    return value


# ---------------------------------------------------------------- routes
# The whole internal API. Runners and agents get the base URL, their id and a token through the
# environment variables below; every request carries the token in TOKEN_HEADER.

ENV_CONTROL_URL = "PIPELOCAL_CONTROL_URL"
ENV_TOKEN = "PIPELOCAL_TOKEN"
ENV_BUILD_ID = "PIPELOCAL_BUILD_ID"
ENV_INSTANCE_NAME = "PIPELOCAL_INSTANCE_NAME"
ENV_INSTANCE_TAGS = "PIPELOCAL_INSTANCE_TAGS"  # "Key=Value,Key2=Value2", sent when registering
ENV_INSTANCE_URL = "PIPELOCAL_INSTANCE_URL"  # app URL from the host, sent when registering

BUILD_PLAN = INTERNAL_PREFIX + "/builds/{build_id}/plan"  # GET -> BuildPlan
BUILD_PHASES = INTERNAL_PREFIX + "/builds/{build_id}/phases"  # POST PhaseReport
BUILD_LOGS = INTERNAL_PREFIX + "/builds/{build_id}/logs"  # POST LogChunk
BUILD_RESULT = INTERNAL_PREFIX + "/builds/{build_id}/result"  # POST RunnerResult

# POST LocalBuildRequest -> LocalBuildEvent per line; 409 when this control plane cannot run it
# (another user, paths it cannot see): the caller runs the build itself. Token: LOCAL_BUILD_TOKEN_FILE
LOCAL_BUILDS = INTERNAL_PREFIX + "/local-builds"
LOCAL_BUILD_TOKEN_FILE = "local-build.token"  # in the installation's run directory, readable by its owner only

AGENT_REGISTER = INTERNAL_PREFIX + "/agents/register"  # POST InstanceRegistration
AGENT_POLL = INTERNAL_PREFIX + "/agents/{instance}/poll"  # POST ?wait=S -> PollResponse
AGENT_HEARTBEAT = INTERNAL_PREFIX + "/agents/{instance}/commands/{command_id}/heartbeat"  # POST
AGENT_RESULT = INTERNAL_PREFIX + "/agents/{instance}/commands/{command_id}/result"  # POST CommandResult
