"""Packs the code that runs inside containers (runners/ or agents/ plus the contracts) as a tar.

The code is copied in when a container is created, so images never go stale when pipelocal
changes: rebuilding an image is only needed when its Debian packages change.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import emulator.contracts

INSTALL_DIR = "opt/pipelocal"
_ROOT = Path(emulator.contracts.__file__).resolve().parent.parent


def code_tar(package: str, extra: dict[str, bytes] | None = None, extra_mode: int = 0o644) -> bytes:
    """`package` is "runners" or "agents"; `extra` adds files by absolute path in the container."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add_bytes(tar, f"{INSTALL_DIR}/emulator/__init__.py", b"")
        _add_bytes(tar, f"{INSTALL_DIR}/emulator/contracts.py", (_ROOT / "emulator" / "contracts.py").read_bytes())
        for path in sorted((_ROOT / package).rglob("*.py")):
            rel = path.relative_to(_ROOT).as_posix()
            _add_bytes(tar, f"{INSTALL_DIR}/{rel}", path.read_bytes())
        for name, data in (extra or {}).items():
            _add_bytes(tar, name.lstrip("/"), data, extra_mode)
    return buffer.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def tar_directory_tree(files: dict[str, bytes], prefix: str) -> bytes:
    """A tar of `files` (relative path -> content) placed under `prefix`, keeping exec bits."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for rel, data in sorted(files.items()):
            mode = 0o755 if data[:2] == b"#!" else 0o644
            _add_bytes(tar, f"{prefix.strip('/')}/{rel}", data, mode)
    return buffer.getvalue()
