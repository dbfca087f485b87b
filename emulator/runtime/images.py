"""Builds pipelocal's two images from Debian packages, without a container registry.

No registry is reachable, so nothing can be pulled: a Debian rootfs is debootstrapped from the
host's own Debian mirror, imported into Docker, and the rest (the aws CLI from cached PyPI
wheels, npm and aws settings) is layered on with a network-less `docker build`.

Each image carries the label `pipelocal.recipe`, a hash of everything that went into it, so
`ensure()` rebuilds only what changed. Caches (downloaded .debs and wheels) live under the
data directory and are reused between runs.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from emulator.runtime.container_runtime import RuntimeUnavailable

BUILD_IMAGE = "pipelocal/build:1"
AGENT_IMAGE = "pipelocal/agent:1"
RELEASE = "bookworm"
LABEL_RECIPE = "pipelocal.recipe"
MIRROR_ENV = "PIPELOCAL_DEBIAN_MIRROR"

CONTEXT_DIR = Path(__file__).parent / "image_context"
SOURCES_LIST = Path("/etc/apt/sources.list")
SOURCES_DIR = Path("/etc/apt/sources.list.d")

# debootstrap's resolver cannot follow virtual packages, so it only gets this base set;
# everything else goes through apt-get inside the rootfs.
BASE_PACKAGES: tuple[str, ...] = (
    "bash", "ca-certificates", "curl", "gzip", "procps", "python3", "python3-venv", "tar", "unzip",
)

# Keeps images small the way Debian's slim images do; copyright files stay.
_DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""

_CLEAN_SCRIPT = """\
set -e
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/log/apt \
       /var/log/dpkg.log /var/log/alternatives.log /usr/sbin/policy-rc.d
find /usr/share/doc -depth -type f ! -name copyright -delete
find /usr/share/doc -depth -mindepth 1 -type d -empty -delete
rm -rf /usr/share/man/* /usr/share/info/*
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
: > /etc/resolv.conf
"""

_AWSCLI_PIP_ARGS = (
    "--only-binary=:all:", "--python-version", "3.11",
    "--platform", "manylinux2014_x86_64", "--implementation", "cp",
)


class ImageBuildError(RuntimeError):
    """An image could not be built; the message carries the failing command and its output."""


@dataclass(frozen=True)
class ImageRecipe:
    name: str
    kind: str  # "agent" | "build": names the Dockerfile and the rootfs image
    packages: tuple[str, ...]  # installed with apt on top of BASE_PACKAGES

    @property
    def dockerfile(self) -> str:
        return f"Dockerfile.{self.kind}"


RECIPES: tuple[ImageRecipe, ...] = (
    ImageRecipe(AGENT_IMAGE, "agent", ()),
    # openjdk-17-jdk-headless: javac and java for runtime-versions java corretto17 (OpenJDK, not Corretto)
    ImageRecipe(BUILD_IMAGE, "build", ("git", "nodejs", "npm", "zip", "openjdk-17-jdk-headless")),
)

CONTEXT_FILES = ("aws-config", "npmrc")
# Both Dockerfiles install the aws CLI in a stage based on this rootfs, so it is built once.
_AWSCLI_BASE = RECIPES[0]


def rootfs_hash(recipe: ImageRecipe, base_packages: Iterable[str] = BASE_PACKAGES,
                release: str = RELEASE) -> str:
    """Identifies the imported rootfs, so a Dockerfile edit does not redo debootstrap."""
    doc = {"release": release, "base": sorted(base_packages), "packages": sorted(recipe.packages),
           "excludes": _DPKG_EXCLUDES, "clean": _CLEAN_SCRIPT}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def recipe_hash(recipe: ImageRecipe, wheels: Iterable[str], base_packages: Iterable[str] = BASE_PACKAGES,
                release: str = RELEASE, context_dir: Path = CONTEXT_DIR) -> str:
    """Everything that shapes an image; stored as its label to decide whether to rebuild."""
    files = {name: (context_dir / name).read_text() for name in (recipe.dockerfile, *CONTEXT_FILES)}
    doc = {"rootfs": rootfs_hash(recipe, base_packages, release),
           "awscli_base": rootfs_hash(_AWSCLI_BASE, base_packages, release),
           "files": files, "wheels": sorted(wheels)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


# ------------------------------------------------------------------ mirror


def find_debian_mirror(release: str = RELEASE, env: Mapping[str, str] | None = None,
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
    raise ImageBuildError(
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


# ------------------------------------------------------------------ builder


class ImageBuilder:
    """Makes sure pipelocal's images exist and match their recipe, building what does not."""

    def __init__(self, cache_dir: Path, progress: Callable[[str], None] = print, *,
                 client=None, release: str = RELEASE,
                 env: Mapping[str, str] | None = None) -> None:
        self.cache_dir = Path(cache_dir).absolute()
        self.progress = progress
        self.release = release
        self.env = os.environ if env is None else env
        self.built: list[str] = []  # images the last ensure() actually built
        self._client = client
        self._t0 = time.monotonic()

    # -------------------------------------------------------------- public

    def missing(self) -> list[str]:
        """Images that are absent or built from another recipe than the current one."""
        wheels = self._wheel_names()
        return [r.name for r in RECIPES if not self._current(r, wheels)]

    def ensure(self, force: bool = False) -> list[str]:
        """Builds what is missing or stale (everything with `force`); returns all image names."""
        self._t0 = time.monotonic()
        self.built = []
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            wheels = self._wheel_names()
            stale = list(RECIPES) if force else [r for r in RECIPES if not self._current(r, wheels)]
            if stale and not wheels:
                self._fetch_wheels()
                wheels = self._wheel_names()
                if not force:
                    stale = [r for r in RECIPES if not self._current(r, wheels)]
            for recipe in RECIPES:
                if recipe not in stale:
                    self._say(f"{recipe.name} is up to date")
            if stale:
                self._build(stale, wheels, force)
        return [r.name for r in RECIPES]

    # -------------------------------------------------------------- docker

    @property
    def client(self):
        if self._client is None:
            import docker

            from emulator.runtime.docker_engine import _NOT_RUNNING, _short

            try:
                client = docker.from_env(timeout=900)
                client.ping()
            except Exception as exc:  # the SDK raises several types for the same problem
                raise RuntimeUnavailable(_NOT_RUNNING.format(error=_short(exc))) from None
            self._client = client
        return self._client

    def _labels(self, image: str) -> dict[str, str] | None:
        import docker.errors

        try:
            return self.client.images.get(image).labels or {}
        except docker.errors.ImageNotFound:
            return None

    def _current(self, recipe: ImageRecipe, wheels: list[str]) -> bool:
        labels = self._labels(recipe.name)
        if labels is None or not wheels:
            return False
        return labels.get(LABEL_RECIPE) == recipe_hash(recipe, wheels, release=self.release)

    # -------------------------------------------------------------- steps

    def _build(self, stale: list[ImageRecipe], wheels: list[str], force: bool) -> None:
        work = self.cache_dir / "work"
        wanted = stale if _AWSCLI_BASE in stale else [_AWSCLI_BASE, *stale]
        need_rootfs = [r for r in wanted
                       if (force and r in stale) or self._labels(self._rootfs_tag(r)) is None]
        if need_rootfs:
            self._check_host()
            mirror = find_debian_mirror(self.release, self.env)
            self._make_rootfs_images(need_rootfs, work, mirror)
        for recipe in stale:
            self._layer(recipe, wheels, force)
            self.built.append(recipe.name)
            self._say(f"{recipe.name} ready ({self._elapsed()} s)")

    def _check_host(self) -> None:
        if not shutil.which("debootstrap", path=_sbin_path()):
            raise ImageBuildError(
                "debootstrap is not installed: run `apt-get install debootstrap` "
                "(the set-up script does this)"
            )
        if os.geteuid() != 0:
            raise ImageBuildError(
                "building the images needs root (debootstrap and chroot): run the command as root"
            )

    def _rootfs_tag(self, recipe: ImageRecipe) -> str:
        return f"pipelocal/rootfs-{recipe.kind}:{rootfs_hash(recipe, release=self.release)}"

    def _make_rootfs_images(self, recipes: list[ImageRecipe], work: Path, mirror: str) -> None:
        work.mkdir(parents=True, exist_ok=True)
        base = work / "rootfs-base"
        try:
            self._debootstrap(base, mirror)
            for i, recipe in enumerate(recipes):
                last = i == len(recipes) - 1
                root = work / f"rootfs-{recipe.kind}"
                _remove_tree(root)
                if last:
                    base.rename(root)
                else:
                    self._run(["cp", "-a", str(base), str(root)], "copying the base rootfs")
                if recipe.packages:
                    self._apt_install(root, mirror, recipe.packages)
                self._clean(root)
                self._import(root, self._rootfs_tag(recipe))
                _remove_tree(root)
        finally:
            for path in [base, *(work / f"rootfs-{r.kind}" for r in recipes)]:
                _remove_tree(path)

    def _debootstrap(self, root: Path, mirror: str) -> None:
        debs = self.cache_dir / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        _remove_tree(root)
        self._say(f"debootstrap {self.release} (base)…")
        self._run(
            ["debootstrap", "--variant=minbase", f"--cache-dir={debs}",
             f"--include={','.join(BASE_PACKAGES)}", self.release, str(root), mirror],
            "debootstrap",
        )
        (root / "etc/apt/sources.list").write_text(f"deb {mirror} {self.release} main\n")
        (root / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
        (root / "etc/dpkg/dpkg.cfg.d/pipelocal-slim").write_text(_DPKG_EXCLUDES)

    def _apt_install(self, root: Path, mirror: str, packages: tuple[str, ...]) -> None:
        self._say(f"installing {' '.join(packages)}…")
        debs = self.cache_dir / "debs"
        archives = root / "var/cache/apt/archives"
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        _link_debs(debs, archives)  # apt skips downloads it finds here
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")  # no services start inside the chroot
        policy.chmod(0o755)
        shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
        with self._mounted_proc(root):
            self._chroot(root, ["apt-get", "update"], "apt-get update")
            self._chroot(root, ["apt-get", "install", "-y", "--no-install-recommends", *packages],
                         "apt-get install")
        _link_debs(archives, debs)

    def _clean(self, root: Path) -> None:
        self._chroot(root, ["sh", "-c", _CLEAN_SCRIPT], "cleaning the rootfs")

    def _import(self, root: Path, tag: str) -> None:
        self._say(f"importing rootfs as {tag}…")
        repository, _, version = tag.rpartition(":")
        proc = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(root), "-c", "."],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

        def chunks() -> Iterator[bytes]:
            while block := proc.stdout.read(1 << 20):
                yield block

        try:
            self.client.api.import_image(src=chunks(), repository=repository, tag=version,
                                         stream_src=True)
        except Exception as exc:
            proc.kill()
            raise ImageBuildError(f"docker import of {root} failed: {exc}") from None
        finally:
            stderr = proc.stderr.read().decode(errors="replace")
            rc = proc.wait()
        if rc != 0:
            raise ImageBuildError(f"`tar -C {root} -c .` failed (exit {rc}):\n{stderr[-2000:]}")
        if self._labels(tag) is None:
            raise ImageBuildError(f"docker import of {root} reported success but {tag} is missing")

    def _layer(self, recipe: ImageRecipe, wheels: list[str], force: bool) -> None:
        self._say(f"layering aws CLI onto {recipe.name}…")
        ctx = self.cache_dir / "work" / f"context-{recipe.kind}"
        _remove_tree(ctx)
        ctx.mkdir(parents=True)
        try:
            shutil.copyfile(CONTEXT_DIR / recipe.dockerfile, ctx / "Dockerfile")
            for name in CONTEXT_FILES:
                shutil.copyfile(CONTEXT_DIR / name, ctx / name)
            (ctx / "wheels").mkdir()
            for name in wheels:
                shutil.copyfile(self._wheel_dir / name, ctx / "wheels" / name)
            stream = self.client.api.build(
                path=str(ctx), tag=recipe.name, buildargs={"BASE": self._rootfs_tag(recipe),
                                                   "AWSCLI_BASE": self._rootfs_tag(_AWSCLI_BASE)},
                labels={LABEL_RECIPE: recipe_hash(recipe, wheels, release=self.release)},
                network_mode="none", rm=True, forcerm=True, nocache=force, pull=False,
                decode=True,
            )
            follow_build(stream, recipe.name, self._say)
        finally:
            _remove_tree(ctx)
        if self._labels(recipe.name) is None:
            raise ImageBuildError(f"docker build of {recipe.name} finished but the image is missing")

    # -------------------------------------------------------------- wheels

    @property
    def _wheel_dir(self) -> Path:
        return self.cache_dir / "wheels"

    def _wheel_names(self) -> list[str]:
        if not self._wheel_dir.is_dir():
            return []
        names = sorted(p.name for p in self._wheel_dir.glob("*.whl"))
        return names if any(n.startswith("awscli-") for n in names) else []

    def _fetch_wheels(self) -> None:
        """Downloads the aws CLI and its dependencies once; builds then install them offline."""
        self._say("downloading the aws CLI wheels…")
        partial = self.cache_dir / "wheels.partial"
        _remove_tree(partial)
        self._run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
                   "--dest", str(partial), *_AWSCLI_PIP_ARGS, "awscli"], "pip download")
        if not any(p.name.startswith("awscli-") for p in partial.glob("*.whl")):
            raise ImageBuildError("pip download awscli finished without an awscli wheel")
        _remove_tree(self._wheel_dir)
        partial.rename(self._wheel_dir)

    # -------------------------------------------------------------- processes

    def _chroot(self, root: Path, cmd: list[str], label: str) -> None:
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8", "HOME": "/root"}
        self._run(["chroot", str(root), *cmd], label, env=env)

    def _run(self, cmd: list[str], label: str, env: dict[str, str] | None = None) -> None:
        """Runs a command, showing every 20th line so a long step visibly moves."""
        if env is None:
            env = {**os.environ, "PATH": _sbin_path(), "DEBIAN_FRONTEND": "noninteractive"}
        tail: collections.deque[str] = collections.deque(maxlen=20)
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, text=True, errors="replace")
        except OSError as exc:
            raise ImageBuildError(f"{label}: cannot run `{' '.join(cmd)}`: {exc}") from None
        with proc:
            for n, line in enumerate(proc.stdout):
                line = line.rstrip()
                tail.append(line)
                if n % 20 == 0 or line.startswith(("E:", "W:")):
                    self._say("  " + line[:160])
            rc = proc.wait()
        if rc != 0:
            raise ImageBuildError(
                f"{label} failed (exit {rc}): `{' '.join(cmd)}`\n" + "\n".join(tail))

    @contextlib.contextmanager
    def _mounted_proc(self, root: Path) -> Iterator[None]:
        target = root / "proc"
        target.mkdir(exist_ok=True)
        self._run(["mount", "-t", "proc", "proc", str(target)], "mount /proc")
        try:
            yield
        finally:
            subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Two pipelocal commands building at once would share a work dir."""
        with open(self.cache_dir / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _elapsed(self) -> int:
        return int(time.monotonic() - self._t0)

    def _say(self, message: str) -> None:
        self.progress(f"[{self._elapsed():4d} s] {message}")


def follow_build(stream: Iterable[dict], image: str, say: Callable[[str], None]) -> None:
    """Shows each Dockerfile step of a `docker build` and fails with the last lines on an error."""
    tail: collections.deque[str] = collections.deque(maxlen=20)
    for chunk in stream:
        if "error" in chunk:
            tail.append(str(chunk["error"]).rstrip())
            raise ImageBuildError(f"docker build of {image} failed:\n" + "\n".join(tail))
        for line in str(chunk.get("stream", "")).splitlines():
            if line.strip():
                tail.append(line)
                if line.startswith("Step "):
                    say("  " + line)


def _sbin_path() -> str:
    parts = os.environ.get("PATH", "").split(os.pathsep)
    extra = [p for p in ("/usr/local/sbin", "/usr/sbin", "/sbin") if p not in parts]
    return os.pathsep.join(parts + extra)


def _link_debs(source: Path, dest: Path) -> None:
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


def _remove_tree(path: Path) -> None:
    """Deletes a rootfs, refusing while anything is still mounted inside it."""
    if not path.exists() and not path.is_symlink():
        return
    for point in sorted(_mounts_under(path), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    left = _mounts_under(path)
    if left:
        raise ImageBuildError(f"cannot delete {path}: still mounted at {', '.join(left)}")
    shutil.rmtree(path)
