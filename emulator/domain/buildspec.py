"""buildspec.yml (versions 0.1 and 0.2): validated into frozen values before any build starts.

A build should fail at submission with `file:line: key: expected`, not halfway through a
container run, so every key of the 0.2 syntax is checked here, including unknown keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator import contracts
from emulator.domain import located_yaml
from emulator.domain.errors import SpecError
from runners.on_failure import OnFailure, parse_on_failure

VERSIONS = ("0.1", "0.2")
SHELLS = ("bash", "/bin/sh")
PHASE_TYPES = {"install": "INSTALL", "pre_build": "PRE_BUILD", "build": "BUILD", "post_build": "POST_BUILD"}
REPORT_FORMATS = (
    "CUCUMBERJSON", "JUNITXML", "NUNITXML", "NUNIT3XML", "TESTNGXML", "VISUALSTUDIOTRX",
    "CLOVERXML", "COBERTURAXML", "JACOCOXML", "SIMPLECOV",
)  # fmt: skip
MAX_FALLBACK_KEYS = 5
CACHE_ACTIONS = ("restore", "save")
RESERVED_ENV_PREFIX = "CODEBUILD_"
_FLAG_WORDS = {"yes": True, "true": True, "no": False, "false": False}
_YES_NO = "yes or no"


@dataclass(frozen=True)
class Command:
    text: str
    line: int


@dataclass(frozen=True)
class RuntimeVersion:
    name: str  # e.g. nodejs
    version: str  # as written: 18, 3.x, latest, "$NODE_VERSION"
    line: int


@dataclass(frozen=True)
class SecretRef:
    """`secret-id:json-key:version-stage:version-id`; only the secret id is required."""

    secret_id: str
    json_key: str | None = None
    version_stage: str | None = None
    version_id: str | None = None


@dataclass(frozen=True)
class Env:
    shell: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    parameter_store: Mapping[str, str] = field(default_factory=dict)
    secrets_manager: Mapping[str, SecretRef] = field(default_factory=dict)
    exported_variables: tuple[str, ...] = ()
    git_credential_helper: bool = False


@dataclass(frozen=True)
class Proxy:
    upload_artifacts: bool = False
    logs: bool = False


@dataclass(frozen=True)
class BatchEnv:
    compute_type: str | None = None
    image: str | None = None
    privileged_mode: bool | None = None
    type: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchTask:
    """One entry of build-list or build-graph."""

    identifier: str
    buildspec: str | None = None
    debug_session: bool = False
    env: BatchEnv = field(default_factory=BatchEnv)
    ignore_failure: bool = False
    depend_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildMatrix:
    static_ignore_failure: bool = False
    static_env: BatchEnv = field(default_factory=BatchEnv)
    buildspecs: tuple[str, ...] = ()
    compute_types: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    variables: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    fast_fail: bool = False
    build_list: tuple[BatchTask, ...] | None = None
    build_graph: tuple[BatchTask, ...] | None = None
    build_matrix: BuildMatrix | None = None
    build_fanout: Mapping[str, Any] | None = None  # fields not confirmed in AWS text; kept as given


@dataclass(frozen=True)
class Phase:
    name: str  # the buildspec key: install, pre_build, build, post_build
    line: int
    commands: tuple[Command, ...] = ()
    finally_commands: tuple[Command, ...] = ()
    run_as: str | None = None
    on_failure: OnFailure | None = None
    on_failure_text: str | None = None
    runtime_versions: tuple[RuntimeVersion, ...] = ()  # install only

    @property
    def phase_type(self) -> str:
        return PHASE_TYPES[self.name]


@dataclass(frozen=True)
class Report:
    name: str
    files: tuple[str, ...]
    base_directory: str | None = None
    discard_paths: bool = False
    file_format: str = "JUNITXML"


@dataclass(frozen=True)
class SecondaryArtifact:
    identifier: str
    files: tuple[str, ...]
    name: str | None = None
    discard_paths: bool = False
    base_directory: str | None = None
    exclude_paths: tuple[str, ...] = ()
    enable_symlinks: bool = False
    s3_prefix: str | None = None


@dataclass(frozen=True)
class Artifacts:
    files: tuple[str, ...]
    name: str | None = None
    discard_paths: bool = False
    base_directory: str | None = None
    exclude_paths: tuple[str, ...] = ()
    enable_symlinks: bool = False
    s3_prefix: str | None = None
    secondary_artifacts: Mapping[str, SecondaryArtifact] = field(default_factory=dict)


@dataclass(frozen=True)
class Cache:
    paths: tuple[str, ...]
    key: str | None = None
    fallback_keys: tuple[str, ...] = ()
    action: str | None = None  # None: restore and save


@dataclass(frozen=True)
class BuildSpec:
    file: str
    version: str
    phases: Mapping[str, Phase]  # in execution order
    run_as: str | None = None
    env: Env = field(default_factory=Env)
    proxy: Proxy = field(default_factory=Proxy)
    batch: Batch | None = None
    reports: Mapping[str, Report] = field(default_factory=dict)
    artifacts: Artifacts | None = None
    cache: Cache | None = None

    @property
    def runtime_versions(self) -> tuple[RuntimeVersion, ...]:
        install = self.phases.get("install")
        return install.runtime_versions if install else ()


def parse_buildspec(text: str, file: str = "buildspec.yml") -> BuildSpec:
    doc = located_yaml.load(text, file)
    return _Reader(file, text).buildspec(doc)


def plan_phases(spec: BuildSpec) -> list[contracts.PhaseSpec]:
    """The phases the runner executes; runtime-versions are left to the caller."""
    return [
        contracts.PhaseSpec(
            name=phase.phase_type,
            commands=[contracts.CommandSpec(c.text, c.line) for c in phase.commands],
            finally_commands=[contracts.CommandSpec(c.text, c.line) for c in phase.finally_commands],
            run_as=phase.run_as or spec.run_as,
            on_failure=phase.on_failure_text,
        )
        for name in PHASE_TYPES
        if (phase := spec.phases.get(name)) is not None
    ]


class _Reader:
    """Walks the loaded YAML, turning each mistake into a SpecError with its key path and line."""

    def __init__(self, file: str, text: str):
        self.file = file
        self.lines = text.splitlines()

    # ------------------------------------------------------------ document

    def buildspec(self, doc: Any) -> BuildSpec:
        if not isinstance(doc, dict):
            raise SpecError(self.file, "(document)", "a mapping with version and phases", 1)
        self.keys(doc, "", ("version", "run-as", "env", "proxy", "batch", "phases", "reports", "artifacts", "cache"))
        version = self.version(doc)
        phases = self.phases(doc)
        return BuildSpec(
            file=self.file,
            version=version,
            phases=phases,
            run_as=self.opt_str(doc, "run-as", "run-as"),
            env=self.env(doc["env"]) if doc.get("env") is not None else Env(),
            proxy=self.proxy(doc["proxy"]) if doc.get("proxy") is not None else Proxy(),
            batch=self.batch(doc["batch"]) if doc.get("batch") is not None else None,
            reports=self.reports(doc["reports"]) if doc.get("reports") is not None else {},
            artifacts=self.artifacts(doc["artifacts"]) if doc.get("artifacts") is not None else None,
            cache=self.cache(doc["cache"]) if doc.get("cache") is not None else None,
        )

    def version(self, doc: dict) -> str:
        if "version" not in doc:
            raise SpecError(self.file, "version", f"a version ({' or '.join(VERSIONS)})", _line(doc))
        value = doc["version"]
        text = self.raw_scalar(doc, "version") if not isinstance(value, str) else value
        if text not in VERSIONS:
            raise SpecError(self.file, "version", f"{' or '.join(VERSIONS)}, not {text!r}", _line(doc, "version"))
        return text

    def phases(self, doc: dict) -> dict[str, Phase]:
        if doc.get("phases") is None:
            raise SpecError(self.file, "phases", "a phases mapping (install, pre_build, build, post_build)", _line(doc, "phases"))
        phases = self.mapping(doc, "phases", "phases")
        self.keys(phases, "phases", tuple(PHASE_TYPES))
        return {name: self.phase(phases, name) for name in PHASE_TYPES if name in phases}

    def phase(self, phases: dict, name: str) -> Phase:
        path = f"phases.{name}"
        allowed = ("run-as", "on-failure", "commands", "finally") + (("runtime-versions",) if name == "install" else ())
        body = phases[name]
        if body is None:
            body = located_yaml.LocatedDict()
            body.line, body.key_lines = _line(phases, name), {}
        elif not isinstance(body, dict):
            raise SpecError(self.file, path, "a mapping with commands", _line(phases, name))
        if "runtime-versions" in body and name != "install":
            raise SpecError(self.file, f"{path}.runtime-versions", "runtime-versions only under phases.install", _line(body, "runtime-versions"))
        self.keys(body, path, allowed)
        if name != "install" and body.get("commands") is None:
            raise SpecError(self.file, f"{path}.commands", "a list of commands (required in this phase)", _line(body, "commands") if "commands" in body else _line(phases, name))
        commands = self.commands(body, "commands", path) if body.get("commands") is not None else ()
        if name != "install" and not commands:
            raise SpecError(self.file, f"{path}.commands", "at least one command", _line(body, "commands"))
        on_failure_text = self.opt_str(body, "on-failure", f"{path}.on-failure")
        on_failure = None
        if on_failure_text is not None:
            try:
                on_failure = parse_on_failure(on_failure_text)
            except ValueError as exc:
                raise SpecError(self.file, f"{path}.on-failure", f"{exc}, not {on_failure_text!r}", _line(body, "on-failure")) from None
        runtimes: tuple[RuntimeVersion, ...] = ()
        if body.get("runtime-versions") is not None:
            section = body["runtime-versions"]
            versions = self.str_map(body, "runtime-versions", f"{path}.runtime-versions")
            runtimes = tuple(RuntimeVersion(n, v, _line(section, n) or 0) for n, v in versions.items())
        return Phase(
            name=name,
            line=_line(phases, name) or 0,
            commands=commands,
            finally_commands=self.commands(body, "finally", path) if body.get("finally") is not None else (),
            run_as=self.opt_str(body, "run-as", f"{path}.run-as"),
            on_failure=on_failure,
            on_failure_text=on_failure_text,
            runtime_versions=runtimes,
        )

    def commands(self, body: dict, key: str, path: str) -> tuple[Command, ...]:
        path = f"{path}.{key}"
        items = body[key]
        if not isinstance(items, list):
            raise SpecError(self.file, path, "a list of commands (each on its own '- ' line)", _line(body, key))
        result = []
        for i, item in enumerate(items):
            line = _line(items, i) or 0
            if isinstance(item, (dict, list)) or item is None:
                hint = " (quote a command that contains ': ')" if isinstance(item, dict) else ""
                raise SpecError(self.file, f"{path}[{i}]", f"a command string{hint}", line)
            result.append(Command(self.item_text(item, line), line))
        return tuple(result)

    # ------------------------------------------------------------ env, proxy

    def env(self, env: Any) -> Env:
        env = self.require_mapping(env, "env", None)
        self.keys(env, "env", ("shell", "variables", "parameter-store", "secrets-manager", "exported-variables", "git-credential-helper"))
        shell = self.opt_str(env, "shell", "env.shell")
        if shell is not None and shell not in SHELLS:
            raise SpecError(self.file, "env.shell", f"{' or '.join(SHELLS)} on Linux, not {shell!r}", _line(env, "shell"))
        variables = self.env_names(env, "variables")
        parameters = self.env_names(env, "parameter-store")
        secrets = {name: self.secret_ref(value) for name, value in self.env_names(env, "secrets-manager").items()}
        exported = self.str_list(env, "exported-variables", "env.exported-variables") if env.get("exported-variables") is not None else ()
        items = env.get("exported-variables") or []
        for i, name in enumerate(exported):
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise SpecError(self.file, f"env.exported-variables[{i}]", f"a variable name, not {name!r}", _line(items, i))
            if name.startswith("AWS_"):
                raise SpecError(self.file, f"env.exported-variables[{i}]", "a name that does not start with AWS_ (those cannot be exported)", _line(items, i))
        return Env(
            shell=shell,
            variables=variables,
            parameter_store=parameters,
            secrets_manager=secrets,
            exported_variables=exported,
            git_credential_helper=self.flag(env, "git-credential-helper", "env.git-credential-helper"),
        )

    def env_names(self, env: dict, key: str) -> dict[str, str]:
        if env.get(key) is None:
            return {}
        values = self.str_map(env, key, f"env.{key}")
        section = env[key]
        for name in values:
            if name.startswith(RESERVED_ENV_PREFIX):
                raise SpecError(self.file, f"env.{key}.{name}", f"a name that does not start with {RESERVED_ENV_PREFIX} (reserved by CodeBuild)", _line(section, name))
        return values

    @staticmethod
    def secret_ref(value: str) -> SecretRef:
        parts = value.split(":")
        if value.startswith("arn:") and len(parts) >= 7:
            parts = [":".join(parts[:7])] + parts[7:]
        parts = [p or None for p in parts] + [None] * 4
        return SecretRef(parts[0] or "", parts[1], parts[2], parts[3])

    def proxy(self, proxy: Any) -> Proxy:
        proxy = self.require_mapping(proxy, "proxy", None)
        self.keys(proxy, "proxy", ("upload-artifacts", "logs"))
        return Proxy(self.flag(proxy, "upload-artifacts", "proxy.upload-artifacts"), self.flag(proxy, "logs", "proxy.logs"))

    # ------------------------------------------------------------ batch

    def batch(self, batch: Any) -> Batch:
        batch = self.require_mapping(batch, "batch", None)
        kinds = ("build-list", "build-matrix", "build-graph", "build-fanout")
        self.keys(batch, "batch", ("fast-fail",) + kinds)
        present = [k for k in kinds if batch.get(k) is not None]
        if len(present) > 1:
            raise SpecError(self.file, f"batch.{present[1]}", f"only one of {', '.join(kinds)}", _line(batch, present[1]))
        fanout = None
        if batch.get("build-fanout") is not None:
            fanout = self.require_mapping(batch["build-fanout"], "batch.build-fanout", _line(batch, "build-fanout"))
        return Batch(
            fast_fail=self.flag(batch, "fast-fail", "batch.fast-fail"),
            build_list=self.batch_tasks(batch, "build-list") if "build-list" in present else None,
            build_graph=self.batch_tasks(batch, "build-graph") if "build-graph" in present else None,
            build_matrix=self.build_matrix(batch["build-matrix"]) if "build-matrix" in present else None,
            build_fanout=located_yaml.plain(fanout) if fanout is not None else None,
        )

    def batch_tasks(self, batch: dict, key: str) -> tuple[BatchTask, ...]:
        path = f"batch.{key}"
        items = batch[key]
        if not isinstance(items, list):
            raise SpecError(self.file, path, "a list of builds with identifier", _line(batch, key))
        allowed = ("identifier", "buildspec", "debug-session", "env", "ignore-failure")
        if key == "build-graph":
            allowed += ("depend-on",)
        tasks = []
        for i, item in enumerate(items):
            item_path = f"{path}[{i}]"
            item = self.require_mapping(item, item_path, _line(items, i))
            self.keys(item, item_path, allowed)
            identifier = self.opt_str(item, "identifier", f"{item_path}.identifier")
            if not identifier:
                raise SpecError(self.file, f"{item_path}.identifier", "an identifier (required)", _line(item))
            tasks.append(
                BatchTask(
                    identifier=identifier,
                    buildspec=self.opt_str(item, "buildspec", f"{item_path}.buildspec"),
                    debug_session=self.flag(item, "debug-session", f"{item_path}.debug-session"),
                    env=self.batch_env(item, f"{item_path}.env") if item.get("env") is not None else BatchEnv(),
                    ignore_failure=self.flag(item, "ignore-failure", f"{item_path}.ignore-failure"),
                    depend_on=self.str_list(item, "depend-on", f"{item_path}.depend-on") if item.get("depend-on") is not None else (),
                )
            )
        ids = [t.identifier for t in tasks]
        for i, task in enumerate(tasks):
            if ids.count(task.identifier) > 1:
                raise SpecError(self.file, f"{path}[{i}].identifier", f"a unique identifier, {task.identifier!r} is repeated", _line(items[i], "identifier"))
            for dep in task.depend_on:
                if dep not in ids:
                    raise SpecError(self.file, f"{path}[{i}].depend-on", f"identifiers of builds in {path}, not {dep!r}", _line(items[i], "depend-on"))
        return tuple(tasks)

    def batch_env(self, parent: dict, path: str) -> BatchEnv:
        env = self.require_mapping(parent["env"], path, _line(parent, "env"))
        self.keys(env, path, ("compute-type", "image", "privileged-mode", "type", "variables"))
        return BatchEnv(
            compute_type=self.opt_str(env, "compute-type", f"{path}.compute-type"),
            image=self.opt_str(env, "image", f"{path}.image"),
            privileged_mode=self.flag(env, "privileged-mode", f"{path}.privileged-mode") if env.get("privileged-mode") is not None else None,
            type=self.opt_str(env, "type", f"{path}.type"),
            variables=self.str_map(env, "variables", f"{path}.variables") if env.get("variables") is not None else {},
        )

    def build_matrix(self, matrix: Any) -> BuildMatrix:
        path = "batch.build-matrix"
        matrix = self.require_mapping(matrix, path, None)
        self.keys(matrix, path, ("static", "dynamic"))
        static = self.require_mapping(matrix.get("static") or located_yaml.LocatedDict(), f"{path}.static", _line(matrix, "static"))
        dynamic = self.require_mapping(matrix.get("dynamic") or located_yaml.LocatedDict(), f"{path}.dynamic", _line(matrix, "dynamic"))
        self.keys(static, f"{path}.static", ("ignore-failure", "env"))
        self.keys(dynamic, f"{path}.dynamic", ("buildspec", "env"))
        denv_path = f"{path}.dynamic.env"
        denv = self.require_mapping(dynamic.get("env") or located_yaml.LocatedDict(), denv_path, _line(dynamic, "env"))
        self.keys(denv, denv_path, ("compute-type", "image", "variables"))
        variables: dict[str, tuple[str, ...]] = {}
        if denv.get("variables") is not None:
            vars_map = self.require_mapping(denv["variables"], f"{denv_path}.variables", _line(denv, "variables"))
            for name in vars_map:
                variables[str(name)] = self.str_list(vars_map, name, f"{denv_path}.variables.{name}")
        return BuildMatrix(
            static_ignore_failure=self.flag(static, "ignore-failure", f"{path}.static.ignore-failure"),
            static_env=self.batch_env(static, f"{path}.static.env") if static.get("env") is not None else BatchEnv(),
            buildspecs=self.str_list(dynamic, "buildspec", f"{path}.dynamic.buildspec") if dynamic.get("buildspec") is not None else (),
            compute_types=self.str_list(denv, "compute-type", f"{denv_path}.compute-type") if denv.get("compute-type") is not None else (),
            images=self.str_list(denv, "image", f"{denv_path}.image") if denv.get("image") is not None else (),
            variables=variables,
        )

    # ------------------------------------------------------------ reports, artifacts, cache

    def reports(self, reports: Any) -> dict[str, Report]:
        reports = self.require_mapping(reports, "reports", None)
        result = {}
        for name in reports:
            path = f"reports.{name}"
            body = self.require_mapping(reports[name], path, _line(reports, name))
            self.keys(body, path, ("files", "base-directory", "discard-paths", "file-format"))
            file_format = (self.opt_str(body, "file-format", f"{path}.file-format") or "JUNITXML").upper()
            if file_format not in REPORT_FORMATS:
                raise SpecError(self.file, f"{path}.file-format", f"one of {', '.join(REPORT_FORMATS)}", _line(body, "file-format"))
            result[str(name)] = Report(
                name=str(name),
                files=self.required_list(body, "files", path),
                base_directory=self.opt_str(body, "base-directory", f"{path}.base-directory"),
                discard_paths=self.flag(body, "discard-paths", f"{path}.discard-paths"),
                file_format=file_format,
            )
        return result

    _ARTIFACT_KEYS = ("files", "name", "discard-paths", "base-directory", "exclude-paths", "enable-symlinks", "s3-prefix")

    def artifacts(self, artifacts: Any) -> Artifacts:
        artifacts = self.require_mapping(artifacts, "artifacts", None)
        # `type` is the deprecated 0.1 property; accepted and ignored as CodeBuild does
        self.keys(artifacts, "artifacts", self._ARTIFACT_KEYS + ("secondary-artifacts", "type"))
        secondary: dict[str, SecondaryArtifact] = {}
        if artifacts.get("secondary-artifacts") is not None:
            section = self.mapping(artifacts, "secondary-artifacts", "artifacts.secondary-artifacts")
            for identifier in section:
                path = f"artifacts.secondary-artifacts.{identifier}"
                body = self.require_mapping(section[identifier], path, _line(section, identifier))
                self.keys(body, path, self._ARTIFACT_KEYS)
                secondary[str(identifier)] = SecondaryArtifact(identifier=str(identifier), **self.artifact_fields(body, path))
        return Artifacts(**self.artifact_fields(artifacts, "artifacts"), secondary_artifacts=secondary)

    def artifact_fields(self, body: dict, path: str) -> dict[str, Any]:
        exclude: tuple[str, ...] = ()
        if isinstance(body.get("exclude-paths"), (str, int, float)):
            exclude = (str(body["exclude-paths"]),)
        elif body.get("exclude-paths") is not None:
            exclude = self.str_list(body, "exclude-paths", f"{path}.exclude-paths")
        return {
            "files": self.required_list(body, "files", path),
            "name": self.opt_str(body, "name", f"{path}.name"),
            "discard_paths": self.flag(body, "discard-paths", f"{path}.discard-paths"),
            "base_directory": self.opt_str(body, "base-directory", f"{path}.base-directory"),
            "exclude_paths": exclude,
            "enable_symlinks": self.flag(body, "enable-symlinks", f"{path}.enable-symlinks"),
            "s3_prefix": self.opt_str(body, "s3-prefix", f"{path}.s3-prefix"),
        }

    def cache(self, cache: Any) -> Cache:
        cache = self.require_mapping(cache, "cache", None)
        self.keys(cache, "cache", ("paths", "key", "fallback-keys", "action"))
        fallback = self.str_list(cache, "fallback-keys", "cache.fallback-keys") if cache.get("fallback-keys") is not None else ()
        if len(fallback) > MAX_FALLBACK_KEYS:
            raise SpecError(self.file, "cache.fallback-keys", f"at most {MAX_FALLBACK_KEYS} keys, not {len(fallback)}", _line(cache, "fallback-keys"))
        action = self.opt_str(cache, "action", "cache.action")
        if action is not None and action not in CACHE_ACTIONS:
            raise SpecError(self.file, "cache.action", f"restore or save, not {action!r}", _line(cache, "action"))
        return Cache(
            paths=self.required_list(cache, "paths", "cache"),
            key=self.opt_str(cache, "key", "cache.key"),
            fallback_keys=fallback,
            action=action,
        )

    # ------------------------------------------------------------ value readers

    def keys(self, mapping: dict, path: str, allowed: tuple[str, ...]) -> None:
        for key in mapping:
            if key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                raise SpecError(self.file, where, f"one of the keys {', '.join(allowed)}", _line(mapping, key))

    def require_mapping(self, value: Any, path: str, line: int | None) -> dict:
        if not isinstance(value, dict):
            raise SpecError(self.file, path, "a mapping", getattr(value, "line", None) or line)
        return value

    def mapping(self, parent: dict, key: str, path: str) -> dict:
        return self.require_mapping(parent[key], path, _line(parent, key))

    def opt_str(self, parent: dict, key: str, path: str) -> str | None:
        value = parent.get(key)
        if value is None:
            return None
        if isinstance(value, (dict, list)):
            raise SpecError(self.file, path, "a single value", _line(parent, key))
        return value if isinstance(value, str) else self.raw_scalar(parent, key)

    def flag(self, parent: dict, key: str, path: str) -> bool:
        value = parent.get(key)
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _FLAG_WORDS:
            return _FLAG_WORDS[value.lower()]
        raise SpecError(self.file, path, f"{_YES_NO}, not {value!r}", _line(parent, key))

    def str_list(self, parent: dict, key: str, path: str) -> tuple[str, ...]:
        items = parent[key]
        if not isinstance(items, list):
            raise SpecError(self.file, path, "a list of strings", _line(parent, key))
        result = []
        for i, item in enumerate(items):
            if item is None or isinstance(item, (dict, list)):
                raise SpecError(self.file, f"{path}[{i}]", "a string", _line(items, i))
            result.append(self.item_text(item, _line(items, i) or 0))
        return tuple(result)

    def required_list(self, parent: dict, key: str, path: str) -> tuple[str, ...]:
        if parent.get(key) is None:
            raise SpecError(self.file, f"{path}.{key}", f"a list of paths ({key} is required)", _line(parent, key))
        values = self.str_list(parent, key, f"{path}.{key}")
        if not values:
            raise SpecError(self.file, f"{path}.{key}", "at least one path", _line(parent, key))
        return values

    def str_map(self, parent: dict, key: str, path: str) -> dict[str, str]:
        section = self.mapping(parent, key, path)
        result = {}
        for name, value in section.items():
            if value is None or isinstance(value, (dict, list)):
                raise SpecError(self.file, f"{path}.{name}", "a string value (quote an empty one: \"\")", _line(section, name))
            result[str(name)] = value if isinstance(value, str) else self.raw_scalar(section, name)
        return result

    def raw_scalar(self, parent: dict, key: Any) -> str:
        """The value as written: YAML reads `3.10` as 3.1 and `0755` as 493, users mean the text."""
        value = parent[key]
        line = _line(parent, key)
        if line and 0 < line <= len(self.lines):
            m = re.match(rf"\s*(?:-\s+)?{re.escape(str(key))}\s*:\s+([^\s#,\[\]{{}}'\"][^#,\[\]{{}}]*?)\s*(?:\s#.*)?$", self.lines[line - 1])
            if m:
                return m.group(1)
        return _scalar_str(value)

    def item_text(self, item: Any, line: int) -> str:
        if isinstance(item, str):
            return item
        if line and 0 < line <= len(self.lines):
            m = re.match(r"\s*-\s+([^\s#,\[\]{}'\"][^#,\[\]{}]*?)\s*(?:\s#.*)?$", self.lines[line - 1])
            if m:
                return m.group(1)
        return _scalar_str(item)


def _scalar_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _line(container: Any, key: Any = None) -> int | None:
    if key is None:
        return getattr(container, "line", None)
    return located_yaml.line_of(container, key)
