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
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from emulator.runtime.container_runtime import RuntimeUnavailable
from emulator.runtime.debian_rootfs import (
    RootfsError,
    RootfsMaker,
    find_debian_mirror,
    remove_tree,
)

BUILD_IMAGE = "pipelocal/build:1"
AGENT_IMAGE = "pipelocal/agent:1"
RELEASE = "bookworm"
LABEL_RECIPE = "pipelocal.recipe"

CONTEXT_DIR = Path(__file__).parent / "image_context"

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


# One error for every step of making an image, the rootfs steps included.
ImageBuildError = RootfsError


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
        self._rootfs = RootfsMaker(self.cache_dir / "debs", self._say)

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
            self._rootfs.check_host()
            mirror = find_debian_mirror(self.release, self.env)
            self._make_rootfs_images(need_rootfs, work, mirror)
        for recipe in stale:
            self._layer(recipe, wheels, force)
            self.built.append(recipe.name)
            self._say(f"{recipe.name} ready ({self._elapsed()} s)")

    def _rootfs_tag(self, recipe: ImageRecipe) -> str:
        return f"pipelocal/rootfs-{recipe.kind}:{rootfs_hash(recipe, release=self.release)}"

    def _make_rootfs_images(self, recipes: list[ImageRecipe], work: Path, mirror: str) -> None:
        work.mkdir(parents=True, exist_ok=True)
        base = work / "rootfs-base"
        try:
            self._rootfs.debootstrap(base, self.release, mirror, BASE_PACKAGES, _DPKG_EXCLUDES)
            for i, recipe in enumerate(recipes):
                last = i == len(recipes) - 1
                root = work / f"rootfs-{recipe.kind}"
                remove_tree(root)
                if last:
                    base.rename(root)
                else:
                    self._rootfs.run(["cp", "-a", str(base), str(root)], "copying the base rootfs")
                if recipe.packages:
                    self._rootfs.apt_install(root, recipe.packages)
                self._clean(root)
                self._import(root, self._rootfs_tag(recipe))
                remove_tree(root)
        finally:
            for path in [base, *(work / f"rootfs-{r.kind}" for r in recipes)]:
                remove_tree(path)

    def _clean(self, root: Path) -> None:
        self._rootfs.chroot(root, ["sh", "-c", _CLEAN_SCRIPT], "cleaning the rootfs")

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
        remove_tree(ctx)
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
            remove_tree(ctx)
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
        remove_tree(partial)
        self._rootfs.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
                   "--dest", str(partial), *_AWSCLI_PIP_ARGS, "awscli"], "pip download")
        if not any(p.name.startswith("awscli-") for p in partial.glob("*.whl")):
            raise ImageBuildError("pip download awscli finished without an awscli wheel")
        remove_tree(self._wheel_dir)
        partial.rename(self._wheel_dir)

    # -------------------------------------------------------------- processes

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
