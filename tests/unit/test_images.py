from __future__ import annotations

import dataclasses
from pathlib import Path

import docker.errors
import pytest

from emulator.runtime import images
from emulator.runtime.debian_rootfs import MIRROR_ENV, find_debian_mirror
from emulator.runtime.images import (
    AGENT_IMAGE,
    BUILD_IMAGE,
    LABEL_RECIPE,
    RECIPES,
    ImageBuilder,
    ImageBuildError,
    recipe_hash,
)

DEB822 = """\
Types: deb
# a comment inside the stanza
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
"""


def _mirror(tmp_path: Path, *, list_text: str | None = None, sources: dict[str, str] | None = None,
            env: dict[str, str] | None = None, release: str = "bookworm") -> str:
    sources_dir = tmp_path / "sources.list.d"
    sources_dir.mkdir(exist_ok=True)
    for name, text in (sources or {}).items():
        (sources_dir / name).write_text(text)
    sources_list = tmp_path / "sources.list"
    if list_text is not None:
        sources_list.write_text(list_text)
    return find_debian_mirror(release, env=env or {}, sources_list=sources_list,
                              sources_dir=sources_dir)


def test_mirror_from_deb822_skips_security_entry(tmp_path):
    assert _mirror(tmp_path, sources={"debian.sources": DEB822}) == "http://mirror.example/debian"


def test_mirror_from_deb822_ignores_disabled_and_security_first(tmp_path):
    text = (
        "Types: deb\nURIs: http://security.example/ds\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb deb-src\nURIs: https://on.example/debian/\nSuites: bookworm\n"
    )
    assert _mirror(tmp_path, sources={"a.sources": text}) == "https://on.example/debian"


def test_mirror_from_one_line_format_with_options(tmp_path):
    text = (
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb http://security.example/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://line.example/debian bookworm main\n"
    )
    assert _mirror(tmp_path, list_text=text) == "http://line.example/debian"


def test_mirror_from_list_file_in_sources_dir(tmp_path):
    text = "deb http://dir.example/debian bookworm main contrib\n"
    assert _mirror(tmp_path, sources={"x.list": text}) == "http://dir.example/debian"


def test_mirror_of_other_debian_release_is_used(tmp_path):
    text = "deb http://trixie.example/debian trixie main\n"
    assert _mirror(tmp_path, list_text=text) == "http://trixie.example/debian"


def test_env_overrides_host_sources(tmp_path):
    got = _mirror(tmp_path, sources={"debian.sources": DEB822},
                  env={MIRROR_ENV: "http://override.example/debian/"})
    assert got == "http://override.example/debian"


def test_no_mirror_says_to_set_env(tmp_path):
    with pytest.raises(ImageBuildError) as err:
        _mirror(tmp_path, list_text="deb cdrom:[Debian]/ bookworm main\n")
    assert MIRROR_ENV in str(err.value)
    assert str(err.value).count(".") >= 1 and "\n" not in str(err.value)


def _recipe(name: str):
    return next(r for r in RECIPES if r.name == name)


def test_recipe_hash_changes_with_package_list():
    build = _recipe(BUILD_IMAGE)
    wheels = ["awscli-1.0.0-py3-none-any.whl"]
    before = recipe_hash(build, wheels)
    more = dataclasses.replace(build, packages=build.packages + ("jq",))
    assert recipe_hash(more, wheels) != before
    assert recipe_hash(build, wheels, base_packages=images.BASE_PACKAGES + ("less",)) != before
    assert recipe_hash(build, wheels) == before  # stable


def test_recipe_hash_changes_with_wheels_release_and_dockerfile(tmp_path):
    agent = _recipe(AGENT_IMAGE)
    wheels = ["awscli-1.0.0-py3-none-any.whl"]
    before = recipe_hash(agent, wheels)
    assert recipe_hash(agent, ["awscli-1.0.1-py3-none-any.whl"]) != before
    assert recipe_hash(agent, wheels, release="trixie") != before
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    for name in ("Dockerfile.agent", "aws-config", "npmrc"):
        (ctx / name).write_text((images.CONTEXT_DIR / name).read_text())
    assert recipe_hash(agent, wheels, context_dir=ctx) == before
    (ctx / "Dockerfile.agent").write_text((ctx / "Dockerfile.agent").read_text() + "RUN true\n")
    assert recipe_hash(agent, wheels, context_dir=ctx) != before


def test_images_differ_in_recipe():
    wheels = ["awscli-1.0.0-py3-none-any.whl"]
    assert recipe_hash(_recipe(AGENT_IMAGE), wheels) != recipe_hash(_recipe(BUILD_IMAGE), wheels)


class _FakeImages:
    def __init__(self, labels: dict[str, dict[str, str]]):
        self._labels = labels

    def get(self, name):
        if name not in self._labels:
            raise docker.errors.ImageNotFound(name)
        return type("Image", (), {"labels": self._labels[name]})()


class _FakeClient:
    def __init__(self, labels: dict[str, dict[str, str]]):
        self.images = _FakeImages(labels)


def _with_wheels(tmp_path: Path) -> list[str]:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    names = ["awscli-1.0.0-py3-none-any.whl", "six-1.17.0-py2.py3-none-any.whl"]
    for name in names:
        (wheels / name).write_bytes(b"")
    return names


def test_missing_debootstrap_is_a_clear_error(tmp_path, monkeypatch):
    _with_wheels(tmp_path)
    monkeypatch.setattr(images.shutil, "which", lambda *a, **k: None)
    builder = ImageBuilder(tmp_path, progress=lambda m: None, client=_FakeClient({}))
    with pytest.raises(ImageBuildError) as err:
        builder.ensure()
    assert "debootstrap is not installed" in str(err.value)
    assert "apt-get install debootstrap" in str(err.value)


def test_current_images_are_not_rebuilt(tmp_path, monkeypatch):
    names = _with_wheels(tmp_path)
    labels = {r.name: {LABEL_RECIPE: recipe_hash(r, names)} for r in RECIPES}
    monkeypatch.setattr(images.shutil, "which", lambda *a, **k: None)  # would fail if it built
    builder = ImageBuilder(tmp_path, progress=lambda m: None, client=_FakeClient(labels))
    assert builder.missing() == []
    assert builder.ensure() == [AGENT_IMAGE, BUILD_IMAGE]
    assert builder.built == []


def test_stale_label_counts_as_missing(tmp_path):
    names = _with_wheels(tmp_path)
    labels = {AGENT_IMAGE: {LABEL_RECIPE: recipe_hash(_recipe(AGENT_IMAGE), names)},
              BUILD_IMAGE: {LABEL_RECIPE: "old"}}
    builder = ImageBuilder(tmp_path, progress=lambda m: None, client=_FakeClient(labels))
    assert builder.missing() == [BUILD_IMAGE]


def test_unreachable_docker_raises_runtime_unavailable(tmp_path, monkeypatch):
    from emulator.runtime.container_runtime import RuntimeUnavailable

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    builder = ImageBuilder(tmp_path, progress=lambda m: None)
    with pytest.raises(RuntimeUnavailable) as err:
        builder.missing()
    assert "DOCKER_HOST" in str(err.value)
