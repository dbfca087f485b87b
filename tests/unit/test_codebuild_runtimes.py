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
    ("python", "3.11", "3.11"), ("python", "3.13", "3.13"), ("python", "3.x", "3.13"), ("python", "latest", "3.13"), ("java", "corretto17", "corretto17"),
    ("java", "corretto21", "corretto21"), ("java", "21", "corretto21"), ("golang", "1.22", "1.22"), ("golang", "latest", "1.23"),
])
def test_choose(runtime, written, version):
    assert choose(runtime, written, "b.yml", 3).version == version


def test_unknown_version_lists_what_exists():
    with pytest.raises(SpecError) as info:
        choose("nodejs", "8", "b.yml", 4)
    assert info.value.line == 4 and "18, 20, 22" in str(info.value)
    spec = parse_buildspec("version: 0.2\nphases:\n  install:\n    runtime-versions:\n      ruby: 3.2\n")
    with pytest.raises(SpecError, match="nodejs: 18, 20, 22; python: 3.11, 3.13; java: corretto17, corretto21"):
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


def test_debian_packs_mount_their_runtime_first_on_path(tmp_path):
    """A pack already made is only mounted: python 3.13's commands and the JDK 21's bin first on PATH."""
    from emulator.services.codebuild.runtime_packs import CATALOGUE, RuntimeStore

    for name, bin_dir in [("python-3.13", "pipelocal-bin"), ("java-corretto21", "usr/lib/jvm/java-21-openjdk-amd64/bin")]:
        (tmp_path / name / bin_dir).mkdir(parents=True)
        (tmp_path / name / ".bin").write_text(bin_dir)
        pack = next(p for p in CATALOGUE if f"{p.runtime}-{p.version}" == name)
        (tmp_path / name / ".recipe").write_text(pack.source)
    spec = parse_buildspec("version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 3.13\n      java: 21\n")
    mounts = RuntimeStore(tmp_path).mounts_for(spec, "b.yml")
    assert mounts.mounts == [(str(tmp_path / "python-3.13"), "/opt/pipelocal-runtimes/python-3.13"),
                             (str(tmp_path / "java-corretto21"), "/opt/pipelocal-runtimes/java-corretto21")]
    assert mounts.path_prefix == ["/opt/pipelocal-runtimes/python-3.13/pipelocal-bin",
                                  "/opt/pipelocal-runtimes/java-corretto21/usr/lib/jvm/java-21-openjdk-amd64/bin"]
    assert mounts.env == {"JAVA_HOME": "/opt/pipelocal-runtimes/java-corretto21/usr/lib/jvm/java-21-openjdk-amd64"}


def test_a_debian_pack_that_cannot_be_made_fails_the_build_naming_it(tmp_path, monkeypatch):
    from emulator.services.codebuild import debian_packs
    from emulator.services.codebuild.runtime_packs import RuntimePackError, RuntimeStore

    def refuse(*args, **kwargs):
        raise debian_packs.DebianPackError("making a Debian rootfs needs root")

    monkeypatch.setattr(debian_packs, "install", refuse)
    spec = parse_buildspec("version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 3.13\n")
    lines = []
    with pytest.raises(RuntimePackError, match="runtime python 3.13: making a Debian rootfs needs root"):
        RuntimeStore(tmp_path, log=lines.append).mounts_for(spec, "b.yml")
    assert lines == ["Installing runtime python 3.13 from Debian trixie packages python3.13, python3.13-venv, python3-pip, python3-setuptools (once)"]
    assert not (tmp_path / "python-3.13").exists()


def test_a_debian_pack_made_from_another_source_is_made_again(tmp_path, monkeypatch):
    """java corretto21 was once a PyPI runtime without javac, written without a recipe."""
    from emulator.services.codebuild import debian_packs
    from emulator.services.codebuild.runtime_packs import RuntimeStore

    old = tmp_path / "java-corretto21"
    (old / "bin").mkdir(parents=True)
    (old / ".bin").write_text("bin")
    made = []

    def install(packages, release, programs, staging, mount, debs_dir, log, finish=None):
        made.append(packages)
        (staging / "usr/lib/jvm/java-21-openjdk-amd64/bin").mkdir(parents=True)

    monkeypatch.setattr(debian_packs, "install", install)
    spec = parse_buildspec("version: 0.2\nphases:\n  install:\n    runtime-versions:\n      java: corretto21\n")
    store = RuntimeStore(tmp_path)
    mounts = store.mounts_for(spec, "b.yml")
    assert made == [("openjdk-21-jdk-headless",)]
    assert mounts.env["JAVA_HOME"].endswith("/usr/lib/jvm/java-21-openjdk-amd64")
    assert not (old / "bin").exists() and (old / ".recipe").read_text().startswith("Debian trixie packages")
    store.mounts_for(spec, "b.yml")
    assert len(made) == 1  # now current
