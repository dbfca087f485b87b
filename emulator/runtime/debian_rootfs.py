"""A Debian root file system made from the host's own Debian mirror, with no container registry:
debootstrap, then apt-get inside a chroot. The build images start from one; so do runtime packs
taken from a newer Debian release.

Downloaded .debs are kept in one cache directory and linked into each rootfs, so a second rootfs
of the same release downloads nothing again.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterator, Mapping

MIRROR_ENV = "PIPELOCAL_DEBIAN_MIRROR"
SOURCES_LIST = Path("/etc/apt/sources.list")
SOURCES_DIR = Path("/etc/apt/sources.list.d")


class RootfsError(RuntimeError):
    """A rootfs could not be made; the message carries the failing command and its output."""


def find_debian_mirror(release: str, env: Mapping[str, str] | None = None,
                       sources_list: Path = SOURCES_LIST, sources_dir: Path = SOURCES_DIR) -> str:
    """The Debian mirror to debootstrap from: the override, else the one the host's apt uses.

    Taken from the host so that pipelocal never names a package host itself and works
    wherever the host's apt works (including behind local mirrors).
    """
    env = os.environ if env is None else env
    override = (env.get(MIRROR_ENV) or "").strip()
    if override:
        return override.rstrip("/")
    entries: list[tuple[str, list[str]]] = []  # (uri, suites), in apt's reading order
    if sources_list.is_file():
        entries += _one_line_entries(sources_list.read_text())
    if sources_dir.is_dir():
        for path in sorted(sources_dir.iterdir()):
            if path.suffix == ".sources" and path.is_file():
                entries += _deb822_entries(path.read_text())
            elif path.suffix == ".list" and path.is_file():
                entries += _one_line_entries(path.read_text())
    for uri, suites in entries:
        if release in suites:
            return uri.rstrip("/")
    # Another Debian release on the host: its main mirror serves every release.
    for uri, suites in entries:
        if any(s.split("-")[0] in _DEBIAN_SUITES and "-" not in s for s in suites):
            return uri.rstrip("/")
    raise RootfsError(
        f"No Debian mirror for {release} found in the host's apt sources: set {MIRROR_ENV} to a "
        "Debian mirror URL (the one your apt uses) and run the command again."
    )


_DEBIAN_SUITES = {"bullseye", "bookworm", "trixie", "forky", "sid", "stable", "testing",
                  "unstable", "oldstable"}


def _one_line_entries(text: str) -> list[tuple[str, list[str]]]:
    entries = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        line = re.sub(r"\[[^\]]*\]", " ", line)  # options such as [signed-by=...]
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "deb" and _is_http(parts[1]):
            entries.append((parts[1], [parts[2]]))
    return entries


def _deb822_entries(text: str) -> list[tuple[str, list[str]]]:
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for raw in stanza.splitlines():
            if raw.lstrip().startswith("#") or not raw.strip():
                continue
            if raw[0] in " \t" and key:  # continuation line
                fields[key] += " " + raw.strip()
                continue
            if ":" in raw:
                key, value = raw.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = fields.get("suites", "").split()
        for uri in fields.get("uris", "").split():
            if _is_http(uri):
                entries.append((uri, suites))
    return entries


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


class RootfsMaker:
    """debootstrap and apt-get into a directory, showing progress through `say`."""

    def __init__(self, debs_dir: Path, say: Callable[[str], None]) -> None:
        self.debs_dir = debs_dir
        self.say = say

    def check_host(self) -> None:
        if not shutil.which("debootstrap", path=sbin_path()):
            raise RootfsError(
                "debootstrap is not installed: run `apt-get install debootstrap` "
                "(the set-up script does this)"
            )
        if os.geteuid() != 0:
            raise RootfsError("making a Debian rootfs needs root (debootstrap and chroot): run the command as root")

    def debootstrap(self, root: Path, release: str, mirror: str, include: tuple[str, ...],
                    dpkg_config: str | None = None) -> None:
        self.debs_dir.mkdir(parents=True, exist_ok=True)
        remove_tree(root)
        self.say(f"debootstrap {release} (base)…")
        self.run(
            ["debootstrap", "--variant=minbase", f"--cache-dir={self.debs_dir}",
             *([f"--include={','.join(include)}"] if include else []), release, str(root), mirror],
            "debootstrap",
        )
        (root / "etc/apt/sources.list").write_text(f"deb {mirror} {release} main\n")
        if dpkg_config:
            (root / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
            (root / "etc/dpkg/dpkg.cfg.d/pipelocal-slim").write_text(dpkg_config)

    def apt_install(self, root: Path, packages: tuple[str, ...]) -> None:
        self.say(f"installing {' '.join(packages)}…")
        archives = root / "var/cache/apt/archives"
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        link_debs(self.debs_dir, archives)  # apt skips downloads it finds here
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")  # no services start inside the chroot
        policy.chmod(0o755)
        shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
        with self.mounted_proc(root):
            self.chroot(root, ["apt-get", "update"], "apt-get update")
            self.chroot(root, ["apt-get", "install", "-y", "--no-install-recommends", *packages],
                        "apt-get install")
        link_debs(archives, self.debs_dir)

    def chroot(self, root: Path, cmd: list[str], label: str) -> None:
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8", "HOME": "/root"}
        self.run(["chroot", str(root), *cmd], label, env=env)

    def run(self, cmd: list[str], label: str, env: dict[str, str] | None = None) -> None:
        """Runs a command, showing every 20th line so a long step visibly moves."""
        if env is None:
            env = {**os.environ, "PATH": sbin_path(), "DEBIAN_FRONTEND": "noninteractive"}
        tail: collections.deque[str] = collections.deque(maxlen=20)
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, text=True, errors="replace")
        except OSError as exc:
            raise RootfsError(f"{label}: cannot run `{' '.join(cmd)}`: {exc}") from None
        with proc:
            for n, line in enumerate(proc.stdout):
                line = line.rstrip()
                tail.append(line)
                if n % 20 == 0 or line.startswith(("E:", "W:")):
                    self.say("  " + line[:160])
            rc = proc.wait()
        if rc != 0:
            raise RootfsError(
                f"{label} failed (exit {rc}): `{' '.join(cmd)}`\n" + "\n".join(tail))

    @contextlib.contextmanager
    def mounted_proc(self, root: Path) -> Iterator[None]:
        target = root / "proc"
        target.mkdir(exist_ok=True)
        self.run(["mount", "-t", "proc", "proc", str(target)], "mount /proc")
        try:
            yield
        finally:
            subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


def sbin_path() -> str:
    parts = os.environ.get("PATH", "").split(os.pathsep)
    extra = [p for p in ("/usr/local/sbin", "/usr/sbin", "/sbin") if p not in parts]
    return os.pathsep.join(parts + extra)


def link_debs(source: Path, dest: Path) -> None:
    """Hard-links .deb files across (same file system, so no copying of hundreds of MB)."""
    for deb in source.glob("*.deb"):
        target = dest / deb.name
        if target.exists():
            continue
        try:
            os.link(deb, target)
        except OSError:
            shutil.copy2(deb, target)


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.absolute()).rstrip("/") + "/"
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    points = [line.split()[1].replace("\\040", " ") for line in lines if len(line.split()) > 1]
    return [p for p in points if p == prefix[:-1] or p.startswith(prefix)]


def remove_tree(path: Path) -> None:
    """Deletes a rootfs, refusing while anything is still mounted inside it."""
    if not path.exists() and not path.is_symlink():
        return
    for point in sorted(_mounts_under(path), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    left = _mounts_under(path)
    if left:
        raise RootfsError(f"cannot delete {path}: still mounted at {', '.join(left)}")
    shutil.rmtree(path)
