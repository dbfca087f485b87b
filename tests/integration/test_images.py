"""Builds (or finds) the real images and checks what builds and deployments rely on."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import docker
import pytest

from emulator.runtime.images import AGENT_IMAGE, BUILD_IMAGE, ImageBuilder

pytestmark = pytest.mark.integration

DATA_DIR = Path(__file__).resolve().parents[2] / ".pipelocal" / "images"


@pytest.fixture(scope="module")
def built() -> list[str]:
    lines: list[str] = []
    names = ImageBuilder(DATA_DIR, progress=lines.append).ensure()
    return names


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker.from_env(timeout=300)


def _run(client, image: str, script: str, files: dict[str, bytes] | None = None) -> tuple[int, str]:
    """Runs `script` with no network, the way builds must be able to work offline."""
    container = client.containers.create(image, ["bash", "-c", script], network_mode="none",
                                         working_dir="/work")
    try:
        if files:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                for name, data in files.items():
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            container.put_archive("/", buf.getvalue())
        container.start()
        code = container.wait(timeout=300)["StatusCode"]
        return code, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


def test_ensure_returns_both_images(built):
    assert built == [AGENT_IMAGE, BUILD_IMAGE]


def test_build_image_tools(built, client):
    code, out = _run(client, BUILD_IMAGE, "node --version && npm --version && aws --version "
                     "&& git --version && zip -v | head -2 && unzip -v | head -1 "
                     "&& python3 --version && curl --version | head -1 && ps --version")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("v18."), out
    assert lines[1][0].isdigit(), out
    assert any(line.startswith("aws-cli/1.") for line in lines), out
    assert "git version" in out and "Python 3." in out


def test_npm_install_works_offline(built, client):
    package = {"name": "x", "version": "1.0.0", "scripts": {"test": "echo ok"}}
    code, out = _run(client, BUILD_IMAGE, "cd /work/app && npm install && npm test",
                     files={"work/app/package.json": json.dumps(package).encode()})
    assert code == 0, out
    assert "ok" in out.splitlines()[-1] or "\nok" in out, out


def test_aws_cli_honours_endpoint_env(built, client):
    script = ("AWS_ACCESS_KEY_ID=a AWS_SECRET_ACCESS_KEY=b AWS_ENDPOINT_URL_S3=http://store.invalid:9 "
              "aws s3 ls 2>&1; cat /root/.aws/config")
    code, out = _run(client, AGENT_IMAGE, script)
    assert "http://store.invalid:9" in out, out
    assert "addressing_style = path" in out and "region = us-east-1" in out


def test_agent_image_tools(built, client):
    code, out = _run(client, AGENT_IMAGE, "python3 --version && aws --version && curl --version "
                     "| head -1 && unzip -v | head -1 && tar --version | head -1 "
                     "&& test -d /var/www/html && ! command -v node && ! command -v npm")
    assert code == 0, out
    assert "aws-cli/1." in out and "Python 3." in out


def test_second_ensure_builds_nothing(built):
    builder = ImageBuilder(DATA_DIR, progress=lambda m: None)
    assert builder.missing() == []
    assert builder.ensure() == [AGENT_IMAGE, BUILD_IMAGE]
    assert builder.built == []
