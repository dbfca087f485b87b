"""Cache keys and the restore order: exact key, then fallback prefixes, newest first."""

from __future__ import annotations

import io
import tarfile
import time

from emulator.domain.buildspec import parse_buildspec
from emulator.services.codebuild import build_cache


def _spec(cache: str):
    return parse_buildspec("version: 0.2\nphases:\n  build:\n    commands:\n      - x\ncache:\n" + cache).cache


def test_key_expression_variables_and_hash_files():
    source = {"package-lock.json": b"lock", "src/a.js": b"a"}
    key = build_cache.evaluate_key("npm-$STAGE-${ARCH}-$(codebuild-hash-files package-lock.json)", {"STAGE": "x", "ARCH": "amd"}, source)
    assert key.startswith("npm-x-amd-") and len(key) == len("npm-x-amd-") + 64
    changed = build_cache.evaluate_key("$(codebuild-hash-files package-lock.json)", {}, {**source, "package-lock.json": b"other"})
    assert changed != key.rsplit("-", 1)[1]
    assert build_cache.evaluate_key(None, {}, {}) == build_cache.DEFAULT_KEY


def test_restore_exact_then_newest_fallback(tmp_path):
    store = build_cache.LocalCacheStore(tmp_path)
    store.put("npm-old", b"old")
    time.sleep(0.01)
    store.put("npm-new", b"new")
    cache = _spec("  key: npm-abc\n  fallback-keys: [npm-]\n  paths: [x]\n")
    assert build_cache.restore(cache, store, "npm-abc", ["npm-"]) == (b"new", "npm-new")
    store.put("npm-abc", b"exact")
    assert build_cache.restore(cache, store, "npm-abc", ["npm-"]) == (b"exact", "npm-abc")


def test_fallback_ignored_without_key_and_action_save_skips_restore(tmp_path):
    store = build_cache.LocalCacheStore(tmp_path)
    store.put("npm-1", b"x")
    assert build_cache.restore(_spec("  paths: [x]\n"), store, "default", ["npm-"]) == (None, None)
    assert build_cache.restore(_spec("  key: npm-1\n  action: save\n  paths: [x]\n"), store, "npm-1", []) == (None, None)


def _tar(files: dict[str, bytes], top: str) -> list[bytes]:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return [out.getvalue()]


def test_save_selects_globs_under_absolute_and_relative_paths(tmp_path):
    store = build_cache.LocalCacheStore(tmp_path)
    trees = {"/src/node_modules": _tar({"a/index.js": b"a", "b.txt": b"b"}, "node_modules"),
             "/root/.npm": _tar({"_cacache/x": b"x"}, ".npm")}
    cache = _spec("  key: k\n  paths: ['node_modules/**/*.js', '/root/.npm/**/*']\n")
    assert build_cache.save(cache, store, "k", "/src", lambda path: iter(trees[path])) == 2
    with tarfile.open(fileobj=io.BytesIO(store.get("k"))) as tar:
        assert sorted(tar.getnames()) == ["@src/node_modules/a/index.js", "root/.npm/_cacache/x"]
    with tarfile.open(fileobj=io.BytesIO(build_cache.placed(store.get("k"), "/codebuild/output/src7/src"))) as tar:
        assert sorted(tar.getnames()) == ["codebuild/output/src7/src/node_modules/a/index.js", "root/.npm/_cacache/x"]
    restore_only = _spec("  key: k2\n  action: restore\n  paths: ['node_modules/**/*']\n")
    assert build_cache.save(restore_only, store, "k2", "/src", lambda path: iter(trees[path])) == 0
    assert store.get("k2") is None
