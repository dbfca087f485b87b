"""The build cache (buildspec `cache`, project `cache`): what one build saves, the next restores.

Keys as CodeBuild reads them (reference 1.2, cache): `key` is matched exactly, then each of
`fallback-keys` as a prefix (the newest match wins); without a key the cache has one slot.
`action: restore` only restores, `action: save` only saves. A key may use `$VAR`/`${VAR}` of the
build's environment and `$(codebuild-hash-files GLOB...)`, a SHA-256 over the matching source
files, evaluated on the host before the container starts.

Entries are tar archives of absolute container paths, unpacked at `/` when the container is
created. LOCAL keeps them under the data directory; S3 in the object store at the project's
`cache.location`, with an index object listing keys for the prefix match.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from emulator.domain.artifact_selection import NoArtifactsMatched, select_artifacts

DEFAULT_KEY = "default"
SRC_MARK = "@src"  # entries under CODEBUILD_SRC_DIR, whose path changes with the build number
_HASH_FILES = re.compile(r"\$\(codebuild-hash-files\s+([^)]*)\)")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_GLOB = set("*?[{")


class LocalCacheStore:
    def __init__(self, root: Path):
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".tar")

    def keys(self) -> dict[str, float]:
        index = self.root / "index.json"
        return json.loads(index.read_text()) if index.exists() else {}

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.exists() else None

    def put(self, key: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._path(key).write_bytes(data)
        keys = self.keys()
        keys[key] = time.time()
        (self.root / "index.json").write_text(json.dumps(keys))


class S3CacheStore:
    def __init__(self, store, location: str):
        self.store = store
        self.bucket, _, prefix = location.partition("/")
        self.prefix = prefix.strip("/")

    def _key(self, name: str) -> str:
        return "/".join(p for p in (self.prefix, name) if p)

    def keys(self) -> dict[str, float]:
        try:
            return json.loads(self.store.get_bytes(self.bucket, self._key("index.json")))
        except Exception:  # noqa: BLE001 - no index yet: an empty cache
            return {}

    def get(self, key: str) -> bytes | None:
        name = self._key(hashlib.sha256(key.encode()).hexdigest()[:32] + ".tar")
        return self.store.get_bytes(self.bucket, name) if self.store.exists(self.bucket, name) else None

    def put(self, key: str, data: bytes) -> None:
        self.store.ensure_bucket(self.bucket)
        self.store.put_bytes(self.bucket, self._key(hashlib.sha256(key.encode()).hexdigest()[:32] + ".tar"), data)
        keys = self.keys()
        keys[key] = time.time()
        self.store.put_bytes(self.bucket, self._key("index.json"), json.dumps(keys).encode())


def evaluate_key(expression: str | None, env: dict[str, str], source: dict[str, bytes]) -> str:
    if not expression:
        return DEFAULT_KEY

    def hash_files(match: re.Match) -> str:
        patterns = match.group(1).split()
        try:
            pairs = select_artifacts(sorted(source), files=patterns, base_directory=None, discard_paths=False,
                                     exclude_paths=[])
        except NoArtifactsMatched:
            pairs = []
        digest = hashlib.sha256()
        for path, _ in pairs:
            digest.update(path.encode() + b"\0" + hashlib.sha256(source[path]).digest())
        return digest.hexdigest()

    text = _HASH_FILES.sub(hash_files, expression)
    return _VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), text)


def restore(cache, store, key: str, fallback_keys: list[str]) -> tuple[bytes | None, str | None]:
    """(archive, the key it was saved under) or (None, None)."""
    if cache.action == "save":
        return None, None
    data = store.get(key)
    if data is not None:
        return data, key
    if cache.key:  # fallback-keys are ignored without a key
        known = store.keys()
        for prefix in fallback_keys:
            matches = sorted((k for k in known if k.startswith(prefix)), key=lambda k: known[k], reverse=True)
            for match in matches:
                data = store.get(match)
                if data is not None:
                    return data, match
    return None, None


def save(cache, store, key: str, src_dir: str, copy_from: Callable[[str], Iterator[bytes]]) -> int:
    """Archives the cache paths from the container; returns the number of files saved."""
    if cache.action == "restore":
        return 0
    out = io.BytesIO()
    count = 0
    with tarfile.open(fileobj=out, mode="w") as archive:
        for pattern in cache.paths:
            absolute = pattern if pattern.startswith("/") else posixpath.join(src_dir, pattern)
            base, rest = _split_static(absolute)
            stored_base = SRC_MARK + base[len(src_dir):] if (base + "/").startswith(src_dir.rstrip("/") + "/") else base
            try:
                members = _read(copy_from(base))
            except Exception:  # noqa: BLE001 - a path that does not exist yet is simply not cached
                continue
            names = sorted(members)
            try:
                chosen = [p for p, _ in select_artifacts(names, files=[rest or "**/*"], base_directory=None,
                                                         discard_paths=False, exclude_paths=[])]
            except NoArtifactsMatched:
                continue
            for rel in chosen:
                info, data = members[rel]
                single_file = "/" not in info.name and rel == posixpath.basename(base)
                info.name = (stored_base if single_file else posixpath.join(stored_base, rel)).lstrip("/")
                archive.addfile(info, io.BytesIO(data))
                count += 1
    if count:
        store.put(key, out.getvalue())
    return count


def placed(archive: bytes, src_dir: str) -> bytes:
    """A saved entry with its source-directory paths moved to this build's CODEBUILD_SRC_DIR."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive)) as source, tarfile.open(fileobj=out, mode="w") as target:
        for member in source.getmembers():
            if member.name == SRC_MARK or member.name.startswith(SRC_MARK + "/"):
                member.name = src_dir.strip("/") + member.name[len(SRC_MARK):]
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
    return out.getvalue()


def _split_static(path: str) -> tuple[str, str]:
    """`/root/.npm/**/*` -> (`/root/.npm`, `**/*`)."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if set(part) & _GLOB:
            return "/".join(parts[:i]) or "/", "/".join(parts[i:])
    return path, ""


def _read(stream: Iterator[bytes]) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    """Files of a copied directory keyed by path relative to it (the tar's top entry is its name)."""
    files = {}
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            rel = member.name.split("/", 1)[1] if "/" in member.name else ""
            if not rel:  # the path itself was a file
                rel = member.name
            extracted = tar.extractfile(member)
            files[rel] = (member, extracted.read() if extracted else b"")
    return files
