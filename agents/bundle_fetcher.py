"""DownloadBundle: fetch the revision and unpack it into the deployment-archive directory.

The bundle is user content, so extraction refuses any member that could write outside the
archive directory (absolute names, `..`, links pointing out, hard links) before writing it.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import urllib.request
import zipfile

from agents.deployment_root import DeploymentRoot
from agents.lifecycle_failure import UNKNOWN_ERROR, LifecycleFailure

BUNDLE_TYPES = ("zip", "tar", "tgz")
_CHUNK = 256 * 1024


def fetch_bundle(root: DeploymentRoot, group_id: str, deployment_id: str, url: str, bundle_type: str) -> str:
    """Downloads and extracts the bundle; returns the archive directory."""
    if bundle_type not in BUNDLE_TYPES:
        raise LifecycleFailure(UNKNOWN_ERROR, f"Unsupported bundle type {bundle_type!r}; expected zip, tar or tgz")
    bundle = root.bundle_file(group_id, deployment_id, bundle_type)
    os.makedirs(os.path.dirname(bundle), exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(bundle, "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    except OSError as exc:
        raise LifecycleFailure(UNKNOWN_ERROR, f"Could not download the bundle: {exc}") from None
    archive = root.archive_dir(group_id, deployment_id)
    extract_bundle(bundle, bundle_type, archive)
    return archive


def extract_bundle(bundle: str, bundle_type: str, archive: str) -> None:
    # A retried DownloadBundle starts from an empty directory so stale files cannot linger.
    if os.path.lexists(archive):
        shutil.rmtree(archive)
    os.makedirs(archive)
    try:
        if bundle_type == "zip":
            _extract_zip(bundle, archive)
        else:
            _extract_tar(bundle, "r:gz" if bundle_type == "tgz" else "r:*", archive)
    except LifecycleFailure:
        shutil.rmtree(archive, ignore_errors=True)
        raise
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        shutil.rmtree(archive, ignore_errors=True)
        raise LifecycleFailure(UNKNOWN_ERROR, f"Could not extract the {bundle_type} bundle: {exc}") from None


def _refuse(name: str, why: str) -> LifecycleFailure:
    return LifecycleFailure(UNKNOWN_ERROR, f"Refusing to extract bundle member {name!r}: {why}")


def _member_path(name: str) -> str:
    """The member's path relative to the archive root, or a refusal if it could leave it."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise _refuse(name, "absolute paths are not allowed")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(name, "'..' would leave the deployment archive")
    return "/".join(parts)


def _check_link(name: str, rel: str, target: str) -> None:
    if target.startswith("/"):
        raise _refuse(name, f"symbolic link to absolute path {target!r} points outside the deployment archive")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    if resolved == ".." or resolved.startswith("../"):
        raise _refuse(name, f"symbolic link to {target!r} points outside the deployment archive")


def _inside(path: str, real_root: str) -> bool:
    return path == real_root or path.startswith(real_root + os.sep)


def _directory(archive: str, rel_dir: str, name: str) -> str:
    """Creates `rel_dir` one component at a time, resolving each so that a link extracted
    earlier cannot carry a later write outside the archive."""
    real_root = os.path.realpath(archive)
    current = archive
    for part in rel_dir.split("/") if rel_dir else []:
        current = os.path.join(current, part)
        if not _inside(os.path.realpath(current), real_root):
            raise _refuse(name, "its directory resolves outside the deployment archive")
        if not os.path.lexists(current):
            os.mkdir(current)
        elif not os.path.isdir(current):
            raise _refuse(name, f"{part!r} is not a directory")
    return current


def _destination(archive: str, rel: str, name: str) -> str:
    dest = os.path.join(_directory(archive, posixpath.dirname(rel), name), posixpath.basename(rel))
    if os.path.islink(dest) or (os.path.lexists(dest) and not os.path.isdir(dest)):
        os.unlink(dest)
    return dest


def _extract_zip(bundle: str, archive: str) -> None:
    with zipfile.ZipFile(bundle) as zf:
        members = []
        for info in zf.infolist():
            rel = _member_path(info.filename)
            mode = info.external_attr >> 16
            is_link = stat.S_ISLNK(mode)
            if is_link:
                _check_link(info.filename, rel, zf.read(info).decode("utf-8", "surrogateescape"))
            members.append((info, rel, mode, is_link))
        for info, rel, mode, is_link in members:
            if not rel:
                continue
            if info.is_dir():
                _directory(archive, rel, info.filename)
                continue
            dest = _destination(archive, rel, info.filename)
            if is_link:
                os.symlink(zf.read(info).decode("utf-8", "surrogateescape"), dest)
                continue
            with zf.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            if mode & 0o777:
                os.chmod(dest, mode & 0o777)


def _extract_tar(bundle: str, mode: str, archive: str) -> None:
    with tarfile.open(bundle, mode) as tf:
        members = []
        for member in tf.getmembers():
            rel = _member_path(member.name)
            if member.islnk():
                raise _refuse(member.name, "hard links are not allowed")
            if member.issym():
                _check_link(member.name, rel, member.linkname)
            elif not (member.isfile() or member.isdir()):
                raise _refuse(member.name, "only files, directories and symbolic links are allowed")
            members.append((member, rel))
        for member, rel in members:
            if not rel:
                continue
            if member.isdir():
                _directory(archive, rel, member.name)
                continue
            dest = _destination(archive, rel, member.name)
            if member.issym():
                os.symlink(member.linkname, dest)
                continue
            src = tf.extractfile(member)
            with src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            os.chmod(dest, member.mode & 0o777)
        for member, rel in members:
            if rel and member.isdir():
                os.chmod(_directory(archive, rel, member.name), (member.mode & 0o777) | 0o700)
