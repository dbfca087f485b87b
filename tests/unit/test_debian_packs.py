"""Making a newer Debian release's runtime run from a mount point: links, programs, Python's pip."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from emulator.services.codebuild import debian_packs


def test_absolute_symlinks_point_inside_the_pack(tmp_path):
    (tmp_path / "etc/java-21-openjdk").mkdir(parents=True)
    (tmp_path / "etc/java-21-openjdk/jvm-amd64.cfg").write_text("-server KNOWN\n")
    lib = tmp_path / "usr/lib/jvm/java-21-openjdk-amd64/lib"
    lib.mkdir(parents=True)
    (lib / "jvm.cfg").symlink_to("/etc/java-21-openjdk/jvm-amd64.cfg")
    (lib / "relative").symlink_to("jvm.cfg")
    assert debian_packs.relative_symlinks(tmp_path) == 1
    assert (lib / "jvm.cfg").read_text() == "-server KNOWN\n"
    assert not str((lib / "jvm.cfg").readlink()).startswith("/")
    assert str((lib / "relative").readlink()) == "jvm.cfg"


def test_a_program_is_repointed_at_the_packs_loader_keeping_its_own_paths(tmp_path):
    patchelf = debian_packs.find_patchelf()
    program = tmp_path / "java"
    shutil.copy2("/bin/true", program)
    subprocess.run([patchelf, "--set-rpath", "$ORIGIN/../lib", str(program)], check=True)
    debian_packs.repoint(patchelf, program, "/opt/pipelocal-runtimes/java-corretto21")
    interpreter = subprocess.run([patchelf, "--print-interpreter", str(program)], capture_output=True, text=True).stdout
    rpath = subprocess.run([patchelf, "--print-rpath", str(program)], capture_output=True, text=True).stdout
    assert interpreter.strip() == "/opt/pipelocal-runtimes/java-corretto21/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    assert rpath.strip() == "$ORIGIN/../lib:/opt/pipelocal-runtimes/java-corretto21/usr/lib/x86_64-linux-gnu"
    dynamic = subprocess.run(["readelf", "-d", str(program)], capture_output=True, text=True).stdout
    assert "(RPATH)" in dynamic and "(RUNPATH)" not in dynamic


def test_python_gets_its_commands_a_writable_local_prefix_and_its_own_wheels(tmp_path):
    stdlib = tmp_path / "usr/lib/python3.13"
    stdlib.mkdir(parents=True)
    (stdlib / "EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    (stdlib / "_sysconfigdata__x86_64-linux-gnu.py").write_text(
        "build_time_vars = {'WHEEL_PKG_DIR': '/usr/share/python-wheels/', 'prefix': '/usr'}\n")
    (tmp_path / "usr/local/bin").mkdir(parents=True)
    debian_packs.finish_python("3.13")(tmp_path, "/opt/p")
    assert not (stdlib / "EXTERNALLY-MANAGED").exists()
    assert "'WHEEL_PKG_DIR': '/opt/p/usr/share/python-wheels/', 'prefix': '/usr'" in (
        stdlib / "_sysconfigdata__x86_64-linux-gnu.py").read_text()
    assert str((tmp_path / "usr/local").readlink()) == "/usr/local"
    bin_dir = tmp_path / "pipelocal-bin"
    assert {p.name for p in bin_dir.iterdir()} == {"python", "python3", "python3.13", "pip", "pip3", "pip3.13"}
    assert str((bin_dir / "python3").readlink()) == "../usr/bin/python3.13"
    assert (bin_dir / "pip").read_text() == '#!/bin/sh\nexec /opt/p/usr/bin/python3.13 -m pip "$@"\n'


def test_a_librarys_runpath_becomes_an_rpath_so_the_programs_path_still_applies(tmp_path):
    patchelf = debian_packs.find_patchelf()
    library = tmp_path / "libjvm.so"
    shutil.copy2("/bin/true", library)
    subprocess.run([patchelf, "--set-rpath", "$ORIGIN", str(library)], check=True)
    assert "(RUNPATH)" in subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True).stdout
    debian_packs.keep_search_path_of_programs(patchelf, library)
    dynamic = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True).stdout
    assert "(RPATH)" in dynamic and "(RUNPATH)" not in dynamic and "[$ORIGIN]" in dynamic


def test_a_python_whose_wheel_directory_is_elsewhere_is_refused(tmp_path):
    stdlib = tmp_path / "usr/lib/python3.13"
    stdlib.mkdir(parents=True)
    (stdlib / "_sysconfigdata__x86_64-linux-gnu.py").write_text("build_time_vars = {'WHEEL_PKG_DIR': None}\n")
    with pytest.raises(debian_packs.DebianPackError, match="WHEEL_PKG_DIR"):
        debian_packs.finish_python("3.13")(tmp_path, "/opt/p")
