"""The EC2/on-premises appspec.yml (version 0.0): parsing, checks against the bundle, and the
lifecycle orders CodeDeploy runs it in.

The control plane parses the appspec once and hands the agent ready-made contracts, so the agent
inside the instance never needs a YAML parser. Every refusal names the file, line and key.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from emulator import contracts
from emulator.domain.errors import SpecError
from emulator.domain.located_yaml import LocatedDict, LocatedList, line_of, load

# ---------------------------------------------------------------- lifecycle events

APPLICATION_STOP = "ApplicationStop"
DOWNLOAD_BUNDLE = "DownloadBundle"
BEFORE_INSTALL = "BeforeInstall"
INSTALL = "Install"
AFTER_INSTALL = "AfterInstall"
APPLICATION_START = "ApplicationStart"
VALIDATE_SERVICE = "ValidateService"
BEFORE_BLOCK_TRAFFIC = "BeforeBlockTraffic"
BLOCK_TRAFFIC = "BlockTraffic"
AFTER_BLOCK_TRAFFIC = "AfterBlockTraffic"
BEFORE_ALLOW_TRAFFIC = "BeforeAllowTraffic"
ALLOW_TRAFFIC = "AllowTraffic"
AFTER_ALLOW_TRAFFIC = "AfterAllowTraffic"

LIFECYCLE_ORDER_IN_PLACE = [
    APPLICATION_STOP,
    DOWNLOAD_BUNDLE,
    BEFORE_INSTALL,
    INSTALL,
    AFTER_INSTALL,
    APPLICATION_START,
    VALIDATE_SERVICE,
]
LIFECYCLE_ORDER_IN_PLACE_WITH_LOAD_BALANCER = [
    BEFORE_BLOCK_TRAFFIC,
    BLOCK_TRAFFIC,
    AFTER_BLOCK_TRAFFIC,
    *LIFECYCLE_ORDER_IN_PLACE,
    BEFORE_ALLOW_TRAFFIC,
    ALLOW_TRAFFIC,
    AFTER_ALLOW_TRAFFIC,
]
# Run by the agent itself; an appspec cannot attach scripts to them (Start and End neither).
AGENT_EVENTS = frozenset({DOWNLOAD_BUNDLE, INSTALL, BLOCK_TRAFFIC, ALLOW_TRAFFIC})
RESERVED_EVENTS = AGENT_EVENTS | {"Start", "End"}
SCRIPTABLE_EVENTS = [e for e in LIFECYCLE_ORDER_IN_PLACE_WITH_LOAD_BALANCER if e not in AGENT_EVENTS]
# Their scripts come from the last successful deployment's archive, not the current one.
LAST_SUCCESSFUL_EVENTS = frozenset({APPLICATION_STOP, BEFORE_BLOCK_TRAFFIC, AFTER_BLOCK_TRAFFIC})

MAX_HOOK_TIMEOUT = 3600
FILE_EXISTS_BEHAVIORS = ("DISALLOW", "OVERWRITE", "RETAIN")
PERMISSION_TYPES = ("file", "directory")

# ---------------------------------------------------------------- the parsed document


@dataclass
class AppSpecFile:
    source: str
    destination: str
    line: int | None = None


@dataclass
class AppSpecPermission:
    object: str
    pattern: str = "**"
    except_: list[str] = field(default_factory=list)
    owner: str | None = None
    group: str | None = None
    mode: str | None = None  # octal digits as written, e.g. "755" or "0644"
    acls: list[str] = field(default_factory=list)
    context: dict[str, str] | None = None
    type: list[str] = field(default_factory=lambda: list(PERMISSION_TYPES))
    line: int | None = None


@dataclass
class AppSpecHook:
    location: str
    timeout: int = MAX_HOOK_TIMEOUT
    runas: str | None = None
    line: int | None = None


@dataclass
class AppSpec:
    version: str
    os: str
    files: list[AppSpecFile] = field(default_factory=list)
    file_exists_behavior: str | None = None  # None: the deployment's own setting (default DISALLOW)
    permissions: list[AppSpecPermission] = field(default_factory=list)
    hooks: dict[str, list[AppSpecHook]] = field(default_factory=dict)
    file: str = "appspec.yml"


# ---------------------------------------------------------------- parsing

_TOP_KEYS = ("version", "os", "files", "file_exists_behavior", "permissions", "hooks")
_FILE_KEYS = ("source", "destination")
_PERMISSION_KEYS = ("object", "pattern", "except", "owner", "group", "mode", "acls", "context", "type")
_CONTEXT_KEYS = ("user", "role", "type", "range")
_HOOK_KEYS = ("location", "timeout", "runas", "sudo")  # `sudo` is undocumented but the agent reads it
_MODE = re.compile(r"^[0-7]{1,4}$")
_WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:[\\/]")


class _Reader:
    """Carries the file name and source lines so every check can name where it failed."""

    def __init__(self, file: str, text: str):
        self.file = file
        self.lines = text.splitlines()

    def fail(self, key: str, expected: str, line: int | None) -> SpecError:
        return SpecError(self.file, key, expected, line)

    def mapping(self, value: Any, key: str, line: int | None, allowed: Iterable[str]) -> LocatedDict:
        if not isinstance(value, dict):
            raise self.fail(key, "a mapping", line)
        allowed = tuple(allowed)
        for k in value:
            if k not in allowed:
                path = f"{key}.{k}" if key else str(k)
                raise self.fail(path, f"one of the keys {', '.join(allowed)}", line_of(value, k))
        return value

    def sequence(self, value: Any, key: str, line: int | None) -> LocatedList | list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, "a list", line)
        return value

    def string(self, value: Any, key: str, line: int | None, required: bool = False) -> str | None:
        if value is None:
            if required:
                raise self.fail(key, "a value (it is required)", line)
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(key, "a string", line)
        text = str(value)
        if required and not text:
            raise self.fail(key, "a non-empty string", line)
        return text

    def raw_scalar(self, line: int | None, key: str) -> str | None:
        """The scalar as typed; YAML 1.1 reads an unquoted 0644 as the integer 420."""
        if not line or line > len(self.lines):
            return None
        match = re.search(rf"(?:^|[\s{{,-]){re.escape(key)}\s*:\s*([^\s#,}}]+)", self.lines[line - 1])
        return match.group(1).strip("'\"") if match else None


def parse_appspec(
    text: str,
    file: str = "appspec.yml",
    allowed_custom_events: Iterable[str] = (),
) -> AppSpec:
    """Parses an EC2/on-premises appspec; `allowed_custom_events` admits extra hook names."""
    r = _Reader(file, text)
    doc = load(text, file)
    if doc is None:
        raise r.fail("(document)", "a mapping with version, os, files and hooks", 1)
    doc = r.mapping(doc, "", getattr(doc, "line", 1), _TOP_KEYS)

    if "version" not in doc:
        raise r.fail("version", "0.0 (it is required)", doc.line)
    version = doc["version"]
    if isinstance(version, bool) or str(version) not in ("0.0", "0"):
        raise r.fail("version", "0.0 (the only version for EC2/on-premises)", doc.line_of("version"))

    if "os" not in doc:
        raise r.fail("os", "linux or windows (it is required)", doc.line)
    os_name = doc["os"]
    if os_name not in ("linux", "windows"):
        raise r.fail("os", "linux or windows", doc.line_of("os"))

    spec = AppSpec(version="0.0", os=os_name, file=file)
    spec.files = _parse_files(r, doc, os_name)

    if doc.get("file_exists_behavior") is not None:
        behavior = doc["file_exists_behavior"]
        if behavior not in FILE_EXISTS_BEHAVIORS:
            raise r.fail(
                "file_exists_behavior", " | ".join(FILE_EXISTS_BEHAVIORS), doc.line_of("file_exists_behavior")
            )
        spec.file_exists_behavior = behavior

    spec.permissions = _parse_permissions(r, doc)
    spec.hooks = _parse_hooks(r, doc, set(allowed_custom_events))
    return spec


def _parse_files(r: _Reader, doc: LocatedDict, os_name: str) -> list[AppSpecFile]:
    result = []
    items = r.sequence(doc.get("files"), "files", doc.line_of("files"))
    for i, item in enumerate(items):
        key = f"files[{i}]"
        line = line_of(items, i)
        item = r.mapping(item, key, line, _FILE_KEYS)
        source = r.string(item.get("source"), f"{key}.source", item.line_of("source"), required=True)
        dest_line = item.line_of("destination")
        destination = r.string(item.get("destination"), f"{key}.destination", dest_line, required=True)
        absolute = destination.startswith("/") or (
            os_name == "windows" and (_WINDOWS_ABSOLUTE.match(destination) or destination.startswith("\\"))
        )
        if not absolute:
            raise r.fail(f"{key}.destination", "an absolute path such as /var/www/html", dest_line)
        result.append(AppSpecFile(source=source, destination=destination, line=line))
    return result


def _parse_permissions(r: _Reader, doc: LocatedDict) -> list[AppSpecPermission]:
    result = []
    items = r.sequence(doc.get("permissions"), "permissions", doc.line_of("permissions"))
    for i, item in enumerate(items):
        key = f"permissions[{i}]"
        line = line_of(items, i)
        item = r.mapping(item, key, line, _PERMISSION_KEYS)
        perm = AppSpecPermission(
            object=r.string(item.get("object"), f"{key}.object", item.line_of("object"), required=True),
            line=line,
        )
        if not perm.object.startswith("/"):
            raise r.fail(f"{key}.object", "an absolute path", item.line_of("object"))
        if item.get("pattern") is not None:
            perm.pattern = r.string(item["pattern"], f"{key}.pattern", item.line_of("pattern"))
        perm.except_ = _string_list(r, item, "except", key)
        perm.owner = r.string(item.get("owner"), f"{key}.owner", item.line_of("owner"))
        perm.group = r.string(item.get("group"), f"{key}.group", item.line_of("group"))
        if item.get("mode") is not None:
            perm.mode = _mode(r, item, key)
        perm.acls = _string_list(r, item, "acls", key)
        if item.get("context") is not None:
            ctx_line = item.line_of("context")
            ctx = r.mapping(item["context"], f"{key}.context", ctx_line, _CONTEXT_KEYS)
            if "type" not in ctx:
                raise r.fail(f"{key}.context.type", "an SELinux type (it is required)", ctx_line)
            perm.context = {
                k: r.string(v, f"{key}.context.{k}", ctx.line_of(k)) for k, v in ctx.items() if v is not None
            }
        if item.get("type") is not None:
            types = _string_list(r, item, "type", key)
            for j, t in enumerate(types):
                if t not in PERMISSION_TYPES:
                    raise r.fail(f"{key}.type[{j}]", "file or directory", line_of(item["type"], j))
            perm.type = types
        result.append(perm)
    return result


def _mode(r: _Reader, item: LocatedDict, key: str) -> str:
    value = item["mode"]
    line = item.line_of("mode")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise r.fail(f"{key}.mode", "an octal mode such as 755 or \"0644\"", line)
    text = str(value)
    if isinstance(value, int):
        raw = r.raw_scalar(line, "mode")
        if raw and raw.isdigit() and int(raw, 8 if raw.startswith("0") else 10) == value:
            text = raw
    if not _MODE.match(text):
        raise r.fail(f"{key}.mode", f"an octal mode such as 755 or \"0644\" (got {text})", line)
    return text


def _string_list(r: _Reader, item: LocatedDict, name: str, key: str) -> list[str]:
    value = item.get(name)
    items = r.sequence(value, f"{key}.{name}", item.line_of(name))
    return [r.string(v, f"{key}.{name}[{j}]", line_of(items, j), required=True) for j, v in enumerate(items)]


def _parse_hooks(r: _Reader, doc: LocatedDict, custom: set[str]) -> dict[str, list[AppSpecHook]]:
    hooks_value = doc.get("hooks")
    if hooks_value is None:
        return {}
    if not isinstance(hooks_value, dict):
        raise r.fail("hooks", "a mapping of lifecycle event names to lists of scripts", doc.line_of("hooks"))
    hooks_map = hooks_value
    result: dict[str, list[AppSpecHook]] = {}
    for event, scripts in hooks_map.items():
        event_key = f"hooks.{event}"
        event_line = hooks_map.line_of(event)
        if event in RESERVED_EVENTS:
            raise r.fail(event_key, f"a scriptable event; {event} is run by the agent and takes no scripts", event_line)
        if event not in SCRIPTABLE_EVENTS and event not in custom:
            raise r.fail(event_key, f"a lifecycle event name: {', '.join(SCRIPTABLE_EVENTS)}", event_line)
        items = r.sequence(scripts, event_key, event_line)
        parsed = []
        for i, item in enumerate(items):
            key = f"{event_key}[{i}]"
            line = line_of(items, i)
            item = r.mapping(item, key, line, _HOOK_KEYS)
            loc_line = item.line_of("location") if "location" in item else line
            location = r.string(item.get("location"), f"{key}.location", loc_line, required=True)
            hook = AppSpecHook(location=location, line=line)
            if "timeout" in item and item["timeout"] is not None:
                timeout = item["timeout"]
                t_line = item.line_of("timeout")
                if isinstance(timeout, bool) or not isinstance(timeout, int):
                    raise r.fail(f"{key}.timeout", f"a whole number of seconds from 1 to {MAX_HOOK_TIMEOUT}", t_line)
                if not 1 <= timeout <= MAX_HOOK_TIMEOUT:
                    raise r.fail(f"{key}.timeout", f"a whole number of seconds from 1 to {MAX_HOOK_TIMEOUT}", t_line)
                hook.timeout = timeout
            hook.runas = r.string(item.get("runas"), f"{key}.runas", item.line_of("runas"))
            if item.get("sudo") is not None and not isinstance(item["sudo"], bool):
                raise r.fail(f"{key}.sudo", "true or false", item.line_of("sudo"))
            parsed.append(hook)
        result[event] = parsed
    return result


# ---------------------------------------------------------------- checks against the bundle


def _bundle_path(path: str) -> str:
    """A files.source or hook location as a path relative to the bundle root ('' = the root)."""
    normalized = posixpath.normpath("/" + path.replace("\\", "/")).lstrip("/")
    return "" if normalized == "." else normalized


def validate_against_bundle(spec: AppSpec, bundle_paths: set[str]) -> None:
    """Refuses an appspec whose files or scripts are not in the bundle, before any instance runs it.

    `bundle_paths` are the bundle's member paths relative to its root; directories may be listed
    or only implied by the files under them.
    """
    files = {_bundle_path(p) for p in bundle_paths}
    files.discard("")
    dirs = {posixpath.dirname(p) for p in files}
    for p in list(dirs):
        while p:
            p = posixpath.dirname(p)
            dirs.add(p)
    for i, f in enumerate(spec.files):
        source = _bundle_path(f.source)
        if source and source not in files and source not in dirs:
            raise SpecError(spec.file, f"files[{i}].source", f"a file or directory in the bundle ({f.source} is not in it)", f.line)
    for event, hooks in spec.hooks.items():
        for i, hook in enumerate(hooks):
            location = _bundle_path(hook.location)
            if location not in files:
                raise SpecError(
                    spec.file,
                    f"hooks.{event}[{i}].location",
                    f"a script in the bundle ({hook.location} is not in it)",
                    hook.line,
                )


# ---------------------------------------------------------------- what the agent receives


def hooks_for(spec: AppSpec, event: str) -> list[contracts.HookScript]:
    return [contracts.HookScript(location=h.location, timeout=h.timeout, runas=h.runas) for h in spec.hooks.get(event, [])]


def to_file_mappings(spec: AppSpec) -> list[contracts.FileMapping]:
    return [contracts.FileMapping(source=f.source, destination=f.destination) for f in spec.files]


def to_permissions(spec: AppSpec) -> list[contracts.PermissionSpec]:
    return [
        contracts.PermissionSpec(
            object=p.object,
            pattern=p.pattern,
            except_=list(p.except_),
            owner=p.owner,
            group=p.group,
            mode=p.mode,
            type=list(p.type),
            acls=list(p.acls),
            context=dict(p.context) if p.context else None,
        )
        for p in spec.permissions
    ]
