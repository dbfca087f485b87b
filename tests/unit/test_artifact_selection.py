from __future__ import annotations

import pytest

from emulator.domain.artifact_selection import NoArtifactsMatched, select_artifacts

TREE = [
    "README.md",
    "app.js",
    "dist/index.html",
    "dist/js/app.js",
    "dist/js/vendor/lib.js",
    "dist/.cache/state",
    "dist/.hidden",
    "my-directory1/a.txt",
    "my-directory1/sub/b.txt",
    "my-directory2/c.txt",
    "other/d.txt",
    ".git/config",
]


def same(*paths):
    return [(p, p) for p in paths]


CASES = [
    ("all files recursively", ["**/*"], None, False, [], same(*sorted(TREE))),
    ("files directly in dir", ["dist/*"], None, False, [], same("dist/.hidden", "dist/index.html")),
    ("dir recursively", ["dist/**/*"], None, False, [], same("dist/.cache/state", "dist/.hidden", "dist/index.html", "dist/js/app.js", "dist/js/vendor/lib.js")),
    ("plain file name", ["app.js"], None, False, [], same("app.js")),
    ("star does not cross slash", ["*.js"], None, False, [], same("app.js")),
    ("double star crosses directories", ["**/*.js"], None, False, [], same("app.js", "dist/js/app.js", "dist/js/vendor/lib.js")),
    ("double star inside a path", ["dist/**/lib.js"], None, False, [], same("dist/js/vendor/lib.js")),
    ("a directory name takes its tree", ["dist/js"], None, False, [], same("dist/js/app.js", "dist/js/vendor/lib.js")),
    ("leading ./ ignored", ["./README.md"], None, False, [], same("README.md")),
    ("several patterns, no duplicates", ["dist/*", "dist/index.html", "**/index.html"], None, False, [], same("dist/.hidden", "dist/index.html")),
    ("base-directory", ["**/*"], "dist/js", False, [], [("dist/js/app.js", "app.js"), ("dist/js/vendor/lib.js", "vendor/lib.js")]),
    ("base-directory glob takes contents only", ["**/*"], "my-directory*", False, [],
     [("my-directory1/a.txt", "a.txt"), ("my-directory2/c.txt", "c.txt"), ("my-directory1/sub/b.txt", "sub/b.txt")]),
    ("files relative to base-directory", ["*.txt"], "my-directory1", False, [], [("my-directory1/a.txt", "a.txt")]),
    ("discard-paths flattens", ["dist/js/**/*"], None, True, [], [("dist/js/app.js", "app.js"), ("dist/js/vendor/lib.js", "lib.js")]),
    ("discard-paths keeps the first on a name clash", ["**/app.js"], None, True, [], [("app.js", "app.js")]),
    ("exclude dot folders", ["**/*"], "dist", False, ["**/.*/**/*"],
     [("dist/.hidden", ".hidden"), ("dist/index.html", "index.html"), ("dist/js/app.js", "js/app.js"), ("dist/js/vendor/lib.js", "js/vendor/lib.js")]),
    ("exclude dot files", ["**/*"], "dist", False, ["**/.*"],
     [("dist/.cache/state", ".cache/state"), ("dist/index.html", "index.html"), ("dist/js/app.js", "js/app.js"), ("dist/js/vendor/lib.js", "js/vendor/lib.js")]),
    ("exclude relative to base-directory", ["**/*"], "dist", False, ["js/*", "**/.*", "**/.*/**/*"],
     [("dist/index.html", "index.html"), ("dist/js/vendor/lib.js", "js/vendor/lib.js")]),
    ("character class and braces", ["my-directory[12]/*.txt", "{README.md,app.js}"], None, False, [],
     same("README.md", "app.js", "my-directory1/a.txt", "my-directory2/c.txt")),
]


@pytest.mark.parametrize(("case", "files", "base", "discard", "exclude", "expected"), CASES, ids=[c[0] for c in CASES])
def test_select_artifacts(case, files, base, discard, exclude, expected):
    got = select_artifacts(list(reversed(TREE)), files, base, discard, exclude)
    assert got == sorted(expected, key=lambda pair: (pair[1], pair[0]))


@pytest.mark.parametrize(
    ("files", "base", "exclude"),
    [(["*.exe"], None, []), (["**/*"], "missing", []), (["dist/*"], None, ["**/*"]), (["my-directory1"], "my-directory1", [])],
)
def test_no_match_raises(files, base, exclude):
    with pytest.raises(NoArtifactsMatched, match="no matching artifact paths found"):
        select_artifacts(TREE, files, base, False, exclude)
