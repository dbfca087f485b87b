"""Packs the code that runs inside containers (runners/ or agents/ plus the contracts) as a tar.

The code is copied in when a container is created, so images never go stale when pipelocal
changes: rebuilding an image is only needed when its Debian packages change.
"""

from __future__ import annotations

import importlib.util
import io
import tarfile
import time
from pathlib import Path

import emulator.contracts

INSTALL_DIR = "opt/pipelocal"
_ROOT = Path(emulator.contracts.__file__).resolve().parent.parent


def code_tar(package: str, extra: dict[str, bytes] | None = None, extra_mode: int = 0o644,
             compiled: bool = False) -> bytes:
    """`package` is "runners" or "agents"; `extra` adds files by absolute path in the container."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        add_code(tar, package, compiled)
        for name, data in (extra or {}).items():
            _add_bytes(tar, name.lstrip("/"), data, extra_mode)
    return buffer.getvalue()


def add_code(tar: tarfile.TarFile, package: str, compiled: bool = False) -> None:
    """Adds `package` and the contracts under INSTALL_DIR.

    `compiled` adds this Python's bytecode beside each module (and keeps the sources' times, which
    the bytecode is checked against), so a container Python of the same version starts without
    compiling: a container of another version ignores files not named for it.
    """
    now = int(time.time())  # a real time: tar warns about files from 1970
    _add_bytes(tar, f"{INSTALL_DIR}/emulator/__init__.py", b"", mtime=now if compiled else 0)
    for path in [_ROOT / "emulator" / "contracts.py", *sorted((_ROOT / package).rglob("*.py"))]:
        rel = path.relative_to(_ROOT).as_posix()
        if not compiled:
            _add_bytes(tar, f"{INSTALL_DIR}/{rel}", path.read_bytes())
            continue
        stat = path.stat()
        _add_bytes(tar, f"{INSTALL_DIR}/{rel}", path.read_bytes(), mtime=int(stat.st_mtime))
        bytecode = _bytecode(path, stat)
        if bytecode is not None:
            cached = Path(importlib.util.cache_from_source(str(path))).relative_to(_ROOT).as_posix()
            _add_bytes(tar, f"{INSTALL_DIR}/{cached}", bytecode, mtime=now)


def _bytecode(path: Path, stat) -> bytes | None:
    """This Python's cached bytecode of `path` if it is current (compiled now if not), else None."""
    cache = Path(importlib.util.cache_from_source(str(path)))
    try:
        data = cache.read_bytes()
        if (data[:4] == importlib.util.MAGIC_NUMBER and data[4:8] == b"\0\0\0\0"
                and int.from_bytes(data[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
                and int.from_bytes(data[12:16], "little") == stat.st_size & 0xFFFFFFFF):
            return data
    except OSError:
        pass
    import py_compile

    try:
        py_compile.compile(str(path), cfile=str(cache), doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
        return cache.read_bytes()
    except (OSError, py_compile.PyCompileError):
        return None  # e.g. a read-only installation: the container compiles instead


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644, mtime: int = 0) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = mtime
    tar.addfile(info, io.BytesIO(data))


def tar_directory_tree(files: dict[str, bytes], prefix: str) -> bytes:
    """A tar of `files` (relative path -> content) placed under `prefix`, keeping exec bits."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for rel, data in sorted(files.items()):
            mode = 0o755 if data[:2] == b"#!" else 0o644
            _add_bytes(tar, f"{prefix.strip('/')}/{rel}", data, mode)
    return buffer.getvalue()
