"""The environment a build sees: CodeBuild's variables, with AWS's precedence.

Precedence, highest first: the start-build override, the project, the buildspec.
"""

from __future__ import annotations

import posixpath
import re

from emulator.domain.errors import NotFound

RESERVED_PREFIX = "CODEBUILD_"
VARIABLE_TYPES = ("PLAINTEXT", "PARAMETER_STORE", "SECRETS_MANAGER")
SOURCE_IDENTIFIER = re.compile(r"[A-Za-z0-9_]{1,127}")  # CodeBuild's sourceIdentifier: it names a variable


class ReferenceError_(ValueError):
    """A parameter-store or secrets-manager reference that does not resolve (CodeBuild fails the build)."""


def secondary_source_dir(src_dir: str, identifier: str) -> str:
    """Where a secondary source is extracted: beside the primary source, in a directory of its own."""
    return posixpath.join(posixpath.dirname(src_dir), "secondary", identifier)


def check_source_identifier(identifier: str, where: str) -> None:
    """A secondary source's identifier becomes CODEBUILD_SRC_DIR_<identifier>, so it must be a variable name."""
    if not isinstance(identifier, str) or not SOURCE_IDENTIFIER.fullmatch(identifier):
        raise ValueError(f"{where}: {identifier!r} is not a valid source identifier: expected 1-127 letters, "
                         f"digits and underscores (it names the variable CODEBUILD_SRC_DIR_<identifier>)")


def check_runtime_versions(spec, file: str) -> None:
    """Refuses a runtime or version pipelocal cannot provide, listing what it can."""
    from emulator.services.codebuild.runtime_packs import choose

    for entry in spec.runtime_versions:
        choose(entry.name, entry.version, file, entry.line)


def check_variable_list(variables, where: str) -> None:
    """Project or start-build `environmentVariables`: names, types, and no CODEBUILD_ names."""
    if variables is None:
        return
    if not isinstance(variables, list):
        raise ValueError(f"{where}: expected a list of {{name, value, type}}")
    for i, var in enumerate(variables):
        if not isinstance(var, dict) or not isinstance(var.get("name"), str) or not var["name"]:
            raise ValueError(f"{where}[{i}]: expected {{name, value, type}} with a name")
        if var["name"].startswith(RESERVED_PREFIX):
            raise ValueError(f"{where}[{i}].name: {var['name']} starts with {RESERVED_PREFIX}, a prefix reserved by CodeBuild")
        if var.get("type", "PLAINTEXT") not in VARIABLE_TYPES:
            raise ValueError(f"{where}[{i}].type: expected one of {', '.join(VARIABLE_TYPES)}, not {var.get('type')!r}")


def resolve_variables(spec, project: dict, overrides: list[dict] | None, params) -> tuple[dict[str, str], list[str]]:
    """User variables with AWS's precedence (start-build, project, buildspec), and the secret values to mask.

    Parameter Store and Secrets Manager values come from `params` (a ParameterStore); every value
    resolved from either is masked in the log, as CodeBuild does.
    """
    env: dict[str, str] = {k: str(v) for k, v in spec.env.variables.items()}
    secrets: list[str] = []
    for name, parameter in spec.env.parameter_store.items():
        env[name] = _parameter(params, parameter, f"env.parameter-store.{name}")
        secrets.append(env[name])
    for name, ref in spec.env.secrets_manager.items():
        env[name] = _secret(params, ref.secret_id, ref.json_key, ref.version_stage, ref.version_id,
                            f"env.secrets-manager.{name}")
        secrets.append(env[name])
    for layer in (project.get("environment", {}).get("environmentVariables") or [], overrides or []):
        for var in layer:
            kind, value = var.get("type", "PLAINTEXT"), str(var.get("value", ""))
            if kind == "PARAMETER_STORE":
                value = _parameter(params, value, f"environmentVariables.{var['name']}")
                secrets.append(value)
            elif kind == "SECRETS_MANAGER":
                parts = (value.split(":") + [None] * 4) if not value.startswith("arn:") else \
                    [":".join(value.split(":")[:7])] + value.split(":")[7:] + [None] * 4
                value = _secret(params, parts[0], parts[1] or None, parts[2] or None, parts[3] or None,
                                f"environmentVariables.{var['name']}")
                secrets.append(value)
            env[var["name"]] = value
    return env, secrets


def _parameter(params, name: str, where: str) -> str:
    if params is None:
        raise ReferenceError_(f"{where}: cannot resolve the parameter {name}: this installation has no state yet "
                              f"(start it with `pipelocal up`, then `pipelocal params put {name} VALUE`)")
    try:
        return params.get_parameter(name, with_decryption=True)["Value"]
    except NotFound:
        raise ReferenceError_(f"{where}: parameter does not exist: {name} "
                              f"(set it with `pipelocal params put {name} VALUE`)") from None


def _secret(params, secret_id, json_key, stage, version_id, where: str) -> str:
    from emulator.services.parameters.store import secret_field

    if params is None:
        raise ReferenceError_(f"{where}: cannot resolve the secret {secret_id}: this installation has no state yet "
                              f"(start it with `pipelocal up`, then `pipelocal secrets create {secret_id} VALUE`)")
    try:
        value = params.get_secret_value(secret_id, version_stage=stage, version_id=version_id)["SecretString"]
        return secret_field(value, json_key, secret_id)
    except NotFound as exc:
        raise ReferenceError_(f"{where}: {exc} (create it with `pipelocal secrets create {secret_id} VALUE`)") from None
    except ValueError as exc:
        raise ReferenceError_(f"{where}: {exc}") from None


def build_variables(doc: dict, project: dict, spec, src_dir: str, request, region: str, account: str,
                    user_env: dict[str, str] | None = None) -> dict[str, str]:
    if user_env is not None:
        env = dict(user_env)
    else:
        env = {k: str(v) for k, v in spec.env.variables.items()}
        for var in project.get("environment", {}).get("environmentVariables", []) or []:
            if var.get("type", "PLAINTEXT") == "PLAINTEXT":
                env[var["name"]] = str(var.get("value", ""))
    env.update(request.env_overrides or {})
    env.update({
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "CODEBUILD_BUILD_ID": doc["id"],
        "CODEBUILD_BUILD_ARN": doc["arn"],
        "CODEBUILD_BUILD_NUMBER": str(doc["buildNumber"]),
        "CODEBUILD_BUILD_IMAGE": project["environment"]["image"],
        "CODEBUILD_BUILD_SUCCEEDING": "1",
        "CODEBUILD_INITIATOR": request.initiator,
        "CODEBUILD_SRC_DIR": src_dir,
        **{f"CODEBUILD_SRC_DIR_{s.identifier}": secondary_source_dir(src_dir, s.identifier)
           for s in getattr(request, "secondary_sources", None) or []},
        "CODEBUILD_SOURCE_VERSION": request.source_version or "",
        "CODEBUILD_RESOLVED_SOURCE_VERSION": request.resolved_source_version or "",
        "CODEBUILD_SOURCE_REPO_URL": request.source_repo_url or "",
        "CODEBUILD_START_TIME": str(int(doc["startTime"] * 1000)),
        "CODEBUILD_PROJECT_ARN": project["arn"],
        "CODEBUILD_LOG_PATH": doc["logs"]["streamName"],
        "CODEBUILD_CI": "true",
        "CODEBUILD_BUILD_URL": f"http://127.0.0.1/builds/{doc['id']}",
        "HOME": "/root",
        "LANG": "C.UTF-8",
    })
    return env
