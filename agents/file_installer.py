"""Install: copy the revision's files into place and apply the appspec permissions.

Follows the AWS agent: first remove what the previous revision of this deployment group
installed (listed in the `<group-id>-cleanup` file), then plan every copy and directory so a
conflict fails the event before anything is written, then copy while recording each created path
in a fresh cleanup file, so a later deployment or rollback can remove exactly these files.
"""

from __future__ import annotations

import fnmatch
import grp
import os
import pwd
import shutil
import subprocess

from emulator import contracts

from agents.deployment_root import DeploymentRoot
from agents.lifecycle_failure import UNKNOWN_ERROR, LifecycleFailure

PERMISSION_TYPES = ("file", "directory")


def install(root: DeploymentRoot, command: contracts.HostCommand) -> str:
    """Runs the Install event; returns a log of what was done."""
    archive = root.archive_dir(command.deployment_group_id, command.deployment_id)
    if not os.path.isdir(archive):
        raise LifecycleFailure(UNKNOWN_ERROR, f"The deployment archive {archive} does not exist; DownloadBundle has not run")
    behavior = command.file_exists_behavior or "DISALLOW"
    if behavior not in ("DISALLOW", "OVERWRITE", "RETAIN"):
        raise LifecycleFailure(
            UNKNOWN_ERROR,
            f"The deployment failed because an invalid option was specified for fileExistsBehavior: {behavior}. "
            "Valid options include OVERWRITE, RETAIN, and DISALLOW.",
        )
    log: list[str] = []
    cleanup_file = root.cleanup_file(command.deployment_group_id)
    remove_previous(cleanup_file, log)
    plan = _Plan(behavior)
    for mapping in command.files:
        plan.add_mapping(archive, mapping)
    os.makedirs(os.path.dirname(cleanup_file), exist_ok=True)
    with open(cleanup_file, "w", encoding="utf-8") as record:
        for kind, source, destination in plan.steps:
            _execute(kind, source, destination, record)
            log.append(f"{kind} {destination}")
    for permission in command.permissions:
        for target in plan.permission_targets(permission):
            _apply_permission(target, permission)
            log.append(f"permissions {target}")
    return "\n".join(log) + ("\n" if log else "")


def remove_previous(cleanup_file: str, log: list[str]) -> None:
    """Removes what the previous revision installed, newest first; directories only if empty."""
    if not os.path.exists(cleanup_file):
        return
    with open(cleanup_file, encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()  # an entry cut off by a crash mid-write
    for line in reversed(lines):
        path = line.rstrip("\n")
        if not path:
            continue
        try:
            if os.path.islink(path) or os.path.isfile(path):
                os.unlink(path)
            elif os.path.isdir(path):
                os.rmdir(path)
            else:
                continue
            log.append(f"removed {path}")
        except OSError as exc:
            # A directory the user has since put files in stays, as with the AWS agent.
            log.append(f"kept {path} ({exc.strerror})")
    os.unlink(cleanup_file)


class _Plan:
    def __init__(self, behavior: str):
        self.behavior = behavior
        self.steps: list[tuple[str, str, str]] = []  # (copy|mkdir, source, destination)
        self.copy_targets: dict[str, str] = {}
        self.mkdir_targets: set[str] = set()

    def add_mapping(self, archive: str, mapping: contracts.FileMapping) -> None:
        source = os.path.join(archive, mapping.source.replace("\\", "/").lstrip("/"))
        source = os.path.normpath(source)
        if source != archive and not source.startswith(archive + os.sep):
            raise LifecycleFailure(UNKNOWN_ERROR, f"The source {mapping.source} is outside the deployment archive")
        if not os.path.lexists(source):
            raise LifecycleFailure(
                UNKNOWN_ERROR, f"The deployment failed because the source {mapping.source} does not exist in the bundle"
            )
        destination = os.path.normpath(mapping.destination)
        if os.path.isdir(source) and not os.path.islink(source):
            self._missing_ancestors(destination)
            self._directory(source, destination)
        else:
            target = os.path.join(destination, os.path.basename(source))
            self._missing_ancestors(target)
            self._file(source, target)

    def _missing_ancestors(self, path: str) -> None:
        missing = []
        parent = os.path.dirname(path)
        while not os.path.exists(parent) and parent not in ("", "/"):
            missing.insert(0, parent)
            parent = os.path.dirname(parent)
        for directory in missing:
            self._mkdir(directory)

    def _directory(self, source: str, destination: str) -> None:
        if not os.path.isdir(destination):
            self._mkdir(destination)
        for entry in sorted(os.listdir(source)):
            entry_source = os.path.join(source, entry)
            entry_destination = os.path.join(destination, entry)
            if os.path.isdir(entry_source) and not os.path.islink(entry_source):
                self._directory(entry_source, entry_destination)
            else:
                self._file(entry_source, entry_destination)

    def _mkdir(self, destination: str) -> None:
        if destination in self.copy_targets:
            raise LifecycleFailure(
                UNKNOWN_ERROR,
                f"The deployment failed because the application specification file includes an mkdir command "
                f"more than once for the same destination path ({destination}) from ({self.copy_targets[destination]}).",
            )
        if destination not in self.mkdir_targets:
            self.mkdir_targets.add(destination)
            self.steps.append(("mkdir", "", destination))

    def _file(self, source: str, destination: str) -> None:
        if destination in self.copy_targets:
            raise LifecycleFailure(
                UNKNOWN_ERROR,
                f"The deployment failed because the application specification file specifies two source files "
                f"named {source} and {self.copy_targets[destination]} for the same destination ({destination}).",
            )
        if destination in self.mkdir_targets:
            raise LifecycleFailure(
                UNKNOWN_ERROR,
                f"The deployment failed because the application specification file calls for installing the file "
                f"{source}, but a directory with that name is also created at ({destination}).",
            )
        if os.path.lexists(destination):
            # After the cleanup, anything still there was not installed by the last successful revision.
            if self.behavior == "DISALLOW":
                raise LifecycleFailure(
                    UNKNOWN_ERROR,
                    f"The deployment failed because a specified file already exists at this location: {destination}",
                )
            if self.behavior == "RETAIN":
                return
            if os.path.isdir(destination) and not os.path.islink(destination):
                raise LifecycleFailure(
                    UNKNOWN_ERROR, f"The deployment failed because a directory exists where the file {destination} goes"
                )
        self.copy_targets[destination] = source
        self.steps.append(("copy", source, destination))

    def permission_targets(self, permission: contracts.PermissionSpec) -> list[str]:
        """Only paths this deployment installs, as the AWS agent does: "**" reaches the whole tree
        under the object, another pattern (and `except`) only its direct children."""
        types = permission.type or list(PERMISSION_TYPES)
        obj = os.path.normpath(permission.object)
        if obj in self.copy_targets:
            return [obj] if "file" in types else []
        if not (obj in self.mkdir_targets or os.path.isdir(obj)):
            return []
        candidates = []
        if "file" in types:
            candidates += sorted(self.copy_targets)
        if "directory" in types:
            candidates += sorted(self.mkdir_targets)
        return [p for p in candidates if _matches(p, obj, permission)]


def _matches(path: str, obj: str, permission: contracts.PermissionSpec) -> bool:
    base = obj.rstrip("/") + "/"
    if not path.startswith(base):
        return False
    relative = path[len(base):]
    direct = "/" not in relative
    pattern = permission.pattern or "**"
    if pattern != "**" and not (direct and fnmatch.fnmatchcase(relative, pattern)):
        return False
    return not (direct and any(fnmatch.fnmatchcase(relative, e) for e in permission.except_))


def _execute(kind: str, source: str, destination: str, record) -> None:
    try:
        if kind == "mkdir":
            if os.path.lexists(destination):
                raise LifecycleFailure(
                    UNKNOWN_ERROR,
                    f"The deployment failed because a specified file already exists at this location: {destination}",
                )
            os.mkdir(destination)
        else:
            if os.path.lexists(destination):  # OVERWRITE
                os.unlink(destination)
            if os.path.islink(source):
                os.symlink(os.readlink(source), destination)
            else:
                shutil.copy2(source, destination)
    except OSError as exc:
        raise LifecycleFailure(UNKNOWN_ERROR, f"Could not {kind} {destination}: {exc}") from None
    record.write(destination + "\n")
    record.flush()


def _apply_permission(target: str, permission: contracts.PermissionSpec) -> None:
    if permission.acls:
        _apply_acls(target, permission.acls)
    if permission.context:
        _apply_context(target, permission.context)
    try:
        if permission.mode and not os.path.islink(target):
            os.chmod(target, int(permission.mode, 8))
        if permission.owner or permission.group:
            uid = pwd.getpwnam(permission.owner).pw_uid if permission.owner else -1
            gid = grp.getgrnam(permission.group).gr_gid if permission.group else -1
            os.chown(target, uid, gid, follow_symlinks=False)
    except KeyError as exc:
        raise LifecycleFailure(UNKNOWN_ERROR, f"Could not set permissions on {target}: no such user or group {exc}") from None
    except (OSError, ValueError) as exc:
        raise LifecycleFailure(UNKNOWN_ERROR, f"Could not set permissions on {target}: {exc}") from None


def _run_tool(argv: list[str], target: str, what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LifecycleFailure(UNKNOWN_ERROR, f"Could not set {what} on {target}: {exc}") from None
    if done.returncode != 0:
        raise LifecycleFailure(UNKNOWN_ERROR, f"Could not set {what} on {target}: {done.stderr.strip()}")


def _apply_acls(target: str, acls: list[str]) -> None:
    if shutil.which("setfacl") is None:
        raise LifecycleFailure(
            UNKNOWN_ERROR,
            f"The appspec asks for acls ({', '.join(acls)}) on {target}, but this instance has no setfacl "
            "(the acl package); remove permissions[].acls or use an instance image that has it",
        )
    for entry in acls:
        _run_tool(["setfacl", "-m", entry, target], target, f"acl {entry}")


def _apply_context(target: str, context: dict[str, str]) -> None:
    if not os.path.exists("/sys/fs/selinux/enforce") or shutil.which("chcon") is None:
        raise LifecycleFailure(
            UNKNOWN_ERROR,
            f"The appspec asks for the SELinux context {context} on {target}, but SELinux is not enabled in "
            "this instance (containers share the host kernel and run without it); remove permissions[].context",
        )
    argv = ["chcon"]
    for key, flag in (("user", "-u"), ("role", "-r"), ("type", "-t"), ("range", "-l")):
        if context.get(key):
            argv += [flag, context[key]]
    _run_tool(argv + [target], target, "the SELinux context")
