"""runtime-versions: which pack a written version selects, and unpacking wheels that ship runtimes."""

from __future__ import annotations

import zipfile

import pytest

from emulator.domain.buildspec import parse_buildspec
from emulator.domain.errors import SpecError
from emulator.services.codebuild.build_environment import check_runtime_versions
from emulator.services.codebuild.runtime_packs import _unpack_wheel, choose


@pytest.mark.parametrize("runtime,written,version", [
    ("nodejs", "18", "18"), ("nodejs", "20.x", "20"), ("nodejs", "22", "22"), ("nodejs", "latest", "22"),
    ("python", "3.11", "3.11"), ("python", "3.x", "3.11"), ("java", "corretto17", "corretto17"),
    ("java", "corretto21", "corretto21"), ("java", "21", "corretto21"), ("golang", "1.22", "1.22"), ("golang", "latest", "1.23"),
])
def test_choose(runtime, written, version):
    assert choose(runtime, written, "b.yml", 3).version == version


def test_unknown_version_lists_what_exists():
    with pytest.raises(SpecError) as info:
        choose("nodejs", "8", "b.yml", 4)
    assert info.value.line == 4 and "18, 20, 22" in str(info.value)
    spec = parse_buildspec("version: 0.2\nphases:\n  install:\n    runtime-versions:\n      ruby: 3.2\n")
    with pytest.raises(SpecError, match="nodejs: 18, 20, 22; python: 3.11; java: corretto17, corretto21"):
        check_runtime_versions(spec, "b.yml")


def test_unpack_keeps_modes_and_restores_npm_links(tmp_path):
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data, mode in [("pkg/bin/node", b"\x7fELF", 0o755), ("pkg/bin/npm", b"#!/usr/bin/env node\nrequire('../lib/cli.js')", 0o644),
                                 ("pkg/lib/node_modules/npm/bin/npm-cli.js", b"#!/usr/bin/env node\n", 0o644)]:
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, data)
    _unpack_wheel(wheel, tmp_path / "out")
    bin_dir = tmp_path / "out" / "pkg" / "bin"
    assert (bin_dir / "node").stat().st_mode & 0o111
    assert (bin_dir / "npm").is_symlink() and (bin_dir / "npm").resolve().name == "npm-cli.js"


def test_corretto17_is_the_images_openjdk_with_javac_on_path_and_nothing_fetched(tmp_path):
    from emulator.services.codebuild.runtime_packs import RuntimeStore

    spec = parse_buildspec("version: 0.2\nphases:\n  install:\n    runtime-versions:\n      java: corretto17\n")
    mounts = RuntimeStore(tmp_path / "runtimes").mounts_for(spec, "b.yml")
    assert mounts.mounts == [] and not (tmp_path / "runtimes").exists()
    assert mounts.env == {"JAVA_HOME": "/usr/lib/jvm/java-17-openjdk-amd64"}
    assert mounts.path_prefix == ["/usr/lib/jvm/java-17-openjdk-amd64/bin"]
