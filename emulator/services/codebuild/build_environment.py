"""The environment a build sees: CodeBuild's variables, with AWS's precedence.

Precedence, highest first: the start-build override, the project, the buildspec.
"""

from __future__ import annotations

from emulator.domain.errors import SpecError

# What the build image provides for `runtime-versions`, by runtime and major version.
AVAILABLE_RUNTIMES: dict[str, list[str]] = {"nodejs": ["18"], "python": ["3.11"]}


def check_runtime_versions(spec, file: str) -> None:
    """Refuses a runtime the image cannot provide, listing what it can."""
    for entry in spec.runtime_versions:
        runtime, version = entry.name, entry.version
        available = AVAILABLE_RUNTIMES.get(runtime)
        listing = "; ".join(f"{r}: {', '.join(v)}" for r, v in AVAILABLE_RUNTIMES.items())
        if available is None:
            raise SpecError(file, f"phases.install.runtime-versions.{runtime}",
                            f"a runtime of the build image ({listing})", entry.line)
        wanted = str(version).strip()
        if wanted in ("latest",) or any(_matches(wanted, v) for v in available):
            continue
        raise SpecError(file, f"phases.install.runtime-versions.{runtime}",
                        f"a version the build image provides for {runtime} ({', '.join(available)}, "
                        f"'latest' or forms like '{available[0].split('.')[0]}.x'); got {wanted!r}", entry.line)


def _matches(wanted: str, available: str) -> bool:
    wanted = wanted.removesuffix(".x").removesuffix(".X")
    return available == wanted or available.startswith(wanted + ".") or wanted.startswith(available + ".")


def build_variables(doc: dict, project: dict, spec, src_dir: str, request, region: str, account: str) -> dict[str, str]:
    env: dict[str, str] = {}
    env.update({k: str(v) for k, v in spec.env.variables.items()})
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
