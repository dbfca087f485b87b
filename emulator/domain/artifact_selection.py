"""Which source files go into an artifact, and under which path, by CodeBuild's glob rules.

Rules (reference 1.2, artifacts): `*` and `?` stay within one path component, `**` crosses
directories and `**/` may match no directory at all, so `**/*` is every file. A pattern without
glob characters that names a directory takes that directory's files recursively. base-directory
may be a glob; each directory it matches contributes its contents (paths relative to it), never
itself. exclude-paths are matched against the same relative paths. When two files land on one
artifact path (possible with discard-paths or several base directories) the first in sorted
order wins, so the result never depends on listing order.
"""

from __future__ import annotations

import posixpath
import re
from functools import lru_cache

_GLOB_CHARS = set("*?[{")


class NoArtifactsMatched(ValueError):
    """Nothing matched: CodeBuild fails UPLOAD_ARTIFACTS with CLIENT_ERROR."""

    def __init__(self, files: list[str], base_directory: str | None):
        self.files = files
        self.base_directory = base_directory
        where = f" under base-directory {base_directory!r}" if base_directory else ""
        super().__init__(f"no matching artifact paths found for {files}{where}")


def select_artifacts(
    paths: list[str],
    files: list[str],
    base_directory: str | None,
    discard_paths: bool,
    exclude_paths: list[str],
) -> list[tuple[str, str]]:
    """(source path, path in artifact) pairs, sorted by artifact path; raises NoArtifactsMatched."""
    paths = sorted({_clean(p) for p in paths if _clean(p)})
    includes = [_matcher(_clean(f)) for f in files if _clean(f)]
    excludes = [_matcher(_clean(e)) for e in exclude_paths if _clean(e)]
    chosen: dict[str, str] = {}
    for base in _base_directories(paths, base_directory):
        prefix = f"{base}/" if base else ""
        for source in paths:
            if not source.startswith(prefix):
                continue
            relative = source[len(prefix) :]
            if not any(m(relative) for m in includes) or any(m(relative) for m in excludes):
                continue
            target = posixpath.basename(relative) if discard_paths else relative
            chosen.setdefault(target, source)
    if not chosen:
        raise NoArtifactsMatched(list(files), base_directory)
    return sorted(((source, target) for target, source in chosen.items()), key=lambda pair: (pair[1], pair[0]))


def _base_directories(paths: list[str], base_directory: str | None) -> list[str]:
    base = _clean(base_directory or "")
    if not base:
        return [""]
    directories = sorted({d for p in paths for d in _parents(p)})
    matches = _regex(base)
    return [d for d in directories if d and matches.fullmatch(d)]


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _matcher(pattern: str):
    regex = _regex(pattern)
    if _GLOB_CHARS.isdisjoint(pattern):
        prefix = pattern + "/"
        return lambda path: path == pattern or path.startswith(prefix)
    return lambda path: regex.fullmatch(path) is not None


def _clean(path: str) -> str:
    path = path.strip()
    while path.startswith("./"):
        path = path[2:]
    path = path.lstrip("/").rstrip("/")
    return "" if path == "." else path


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out.append("(?:.*/)?")
                i += 1
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end
        elif c == "{" and (end := pattern.find("}", i)) != -1:
            choices = pattern[i + 1 : end].split(",")
            out.append("(?:" + "|".join(_regex(choice).pattern for choice in choices) + ")")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))
