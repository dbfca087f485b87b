"""`pipelocal deploy`'s input handling: bundle kinds, packing a directory, tags, event tables."""

from __future__ import annotations

import io
import tarfile

import pytest
import typer

from emulator.cli import deploy_command as dc


def test_bundle_type_from_the_name_or_the_option():
    assert dc.bundle_type_of("app.zip", None) == "zip"
    assert dc.bundle_type_of("app.tar.gz", None) == "tgz"
    assert dc.bundle_type_of("app.TGZ", None) == "tgz"
    assert dc.bundle_type_of("bundle.bin", "tar") == "tar"
    with pytest.raises(typer.BadParameter, match="--type zip\\|tar\\|tgz"):
        dc.bundle_type_of("bundle.bin", None)
    with pytest.raises(typer.BadParameter, match="expected zip, tar or tgz"):
        dc.bundle_type_of("a.zip", "rar")


def test_directory_is_packed_relative_to_its_root(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    (tmp_path / "scripts" / "start.sh").write_text("#!/bin/sh\n")
    (tmp_path / "scripts" / "start.sh").chmod(0o755)
    with tarfile.open(fileobj=io.BytesIO(dc.pack_directory(tmp_path)), mode="r:gz") as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert set(members) == {"appspec.yml", "scripts", "scripts/start.sh"}
    assert members["scripts/start.sh"].mode & 0o111


def test_s3_and_missing_bundles(tmp_path):
    revision = dc.revision_for(client=None, bundle="s3://bucket/path/app.tgz", bundle_type=None)
    assert revision["s3Location"] == {"bucket": "bucket", "key": "path/app.tgz", "bundleType": "tgz"}
    with pytest.raises(typer.BadParameter, match="s3://bucket/key"):
        dc.revision_for(client=None, bundle="s3://bucket", bundle_type=None)
    with pytest.raises(typer.BadParameter, match="neither a directory"):
        dc.revision_for(client=None, bundle=str(tmp_path / "nope"), bundle_type=None)


def test_tags_need_key_equals_value():
    assert dc.parse_tags(["Env=prod", "Empty=", "Url=a=b"]) == {"Env": "prod", "Empty": "", "Url": "a=b"}
    for bad in (["novalue"], ["=x"]):
        with pytest.raises(typer.BadParameter, match="Key=Value"):
            dc.parse_tags(bad)
