"""The in-instance agent, run for real against temporary directories and a fake control plane."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import tarfile
import tempfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agents import bundle_fetcher, command_executor, file_installer, hook_runner
from agents.command_loop import CommandLoop, LoopSettings
from agents.control_client import ControlClient
from agents.deployment_root import DeploymentRoot
from agents.lifecycle_failure import LifecycleFailure
from emulator import contracts

GROUP = "dg-1111"


@pytest.fixture
def root(tmp_path, monkeypatch) -> DeploymentRoot:
    monkeypatch.setenv("PIPELOCAL_DEPLOYMENT_ROOT", str(tmp_path / "deployment-root"))
    return DeploymentRoot.from_environment()


# ---------------------------------------------------------------- bundles


def make_bundle(path: Path, kind: str, files: dict[str, tuple[bytes, int]]) -> Path:
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            for name, (data, mode) in files.items():
                info = zipfile.ZipInfo(name)
                info.external_attr = (0o100000 | mode) << 16
                zf.writestr(info, data)
    else:
        with tarfile.open(path, "w:gz" if kind == "tgz" else "w") as tf:
            for name, (data, mode) in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = mode
                tf.addfile(info, io.BytesIO(data))
    return path


SITE = {
    "appspec.yml": (b"version: 0.0\n", 0o644),
    "latest/index.html": (b"<h1>v1</h1>\n", 0o644),
    "scripts/start_server.sh": (b"#!/bin/bash\necho start\n", 0o755),
}


@pytest.mark.parametrize("kind", ["zip", "tar", "tgz"])
def test_bundle_extracts_each_type(tmp_path, root, kind):
    bundle = make_bundle(tmp_path / f"site.{kind}", kind, SITE)
    archive = bundle_fetcher.fetch_bundle(root, GROUP, "d-1", bundle.as_uri(), kind)
    assert archive == str(Path(root.path) / GROUP / "d-1" / "deployment-archive")
    assert (Path(archive) / "latest/index.html").read_bytes() == b"<h1>v1</h1>\n"
    assert os.access(Path(archive) / "scripts/start_server.sh", os.X_OK)
    assert (Path(root.path) / GROUP / "d-1" / f"bundle.{kind}").exists()


def _tar_with(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w") as tf:
        tf.addfile(tarfile.TarInfo("ok.txt"), io.BytesIO(b""))
        for m in members:
            tf.addfile(m, io.BytesIO(b"x" * m.size) if m.isfile() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", size: int = 1) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = size if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(
    "member, why",
    [
        (_member("../escaped.txt"), "'..'"),
        (_member("a/../../escaped.txt"), "'..'"),
        (_member("/tmp/escaped.txt"), "absolute"),
        (_member("link", tarfile.SYMTYPE, "../../outside"), "outside"),
        (_member("link", tarfile.SYMTYPE, "/etc"), "outside"),
        (_member("hard", tarfile.LNKTYPE, "ok.txt"), "hard links"),
        (_member("dev", tarfile.FIFOTYPE), "only files"),
    ],
)
def test_tar_members_escaping_the_archive_are_refused(tmp_path, member, why):
    bundle = _tar_with(tmp_path / "evil.tar", member)
    archive = tmp_path / "deep" / "deployment-archive"
    with pytest.raises(LifecycleFailure) as err:
        bundle_fetcher.extract_bundle(str(bundle), "tar", str(archive))
    assert err.value.error_code == "UnknownError"
    assert why in err.value.message and "Refusing" in err.value.message
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "deep" / "escaped.txt").exists()
    assert not archive.exists()


def test_link_chain_cannot_carry_a_write_outside(tmp_path):
    # "up" -> "." is harmless alone; "out" -> "up/../x" looks inside but really resolves outside.
    bundle = _tar_with(
        tmp_path / "chain.tar",
        _member("up", tarfile.SYMTYPE, "."),
        _member("out", tarfile.SYMTYPE, "up/../.."),
        _member("out/escaped.txt"),
    )
    archive = tmp_path / "a" / "b" / "deployment-archive"
    with pytest.raises(LifecycleFailure):
        bundle_fetcher.extract_bundle(str(bundle), "tar", str(archive))
    assert not list(tmp_path.rglob("escaped.txt"))


def test_zip_escape_and_zip_symlink_out_are_refused(tmp_path):
    evil = make_bundle(tmp_path / "evil.zip", "zip", {"../escaped.txt": (b"x", 0o644)})
    with pytest.raises(LifecycleFailure) as err:
        bundle_fetcher.extract_bundle(str(evil), "zip", str(tmp_path / "a" / "deployment-archive"))
    assert "'..'" in err.value.message
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777) << 16
        zf.writestr(info, "../../../etc")
    with pytest.raises(LifecycleFailure) as err:
        bundle_fetcher.extract_bundle(str(link), "zip", str(tmp_path / "b" / "deployment-archive"))
    assert "symbolic link" in err.value.message
    assert not list(tmp_path.rglob("escaped.txt"))


def test_symlinks_inside_the_archive_are_kept(tmp_path):
    bundle = _tar_with(tmp_path / "ok.tar", _member("current", tarfile.SYMTYPE, "ok.txt"))
    archive = tmp_path / "deployment-archive"
    bundle_fetcher.extract_bundle(str(bundle), "tar", str(archive))
    assert os.readlink(archive / "current") == "ok.txt"


# ---------------------------------------------------------------- Install


def archive_with(root: DeploymentRoot, deployment: str, files: dict[str, str]) -> Path:
    archive = Path(root.archive_dir(GROUP, deployment))
    for name, text in files.items():
        (archive / name).parent.mkdir(parents=True, exist_ok=True)
        (archive / name).write_text(text)
    return archive


def install_command(deployment: str, dest: Path, behavior: str = "DISALLOW", **kw) -> contracts.HostCommand:
    return contracts.HostCommand(
        command_id=f"{deployment}-install",
        deployment_id=deployment,
        deployment_group_id=GROUP,
        lifecycle_event="Install",
        files=kw.pop("files", None)
        or [
            contracts.FileMapping("/latest/index.html", str(dest)),
            contracts.FileMapping("/static", str(dest / "static")),
        ],
        file_exists_behavior=behavior,
        **kw,
    )


def test_install_copies_files_and_trees_and_records_cleanup(tmp_path, root):
    archive_with(root, "d-1", {"latest/index.html": "v1", "static/css/site.css": "body{}", "static/a.js": "1"})
    dest = tmp_path / "www" / "html"
    result = command_executor.execute(root, install_command("d-1", dest))
    assert result.status == "Succeeded", result.message
    assert (dest / "index.html").read_text() == "v1"
    assert (dest / "static/css/site.css").read_text() == "body{}"
    cleanup = Path(root.cleanup_file(GROUP)).read_text().splitlines()
    assert str(dest / "index.html") in cleanup and str(dest / "static/css") in cleanup
    assert str(tmp_path / "www") in cleanup  # a missing ancestor is created, and recorded


def test_install_removes_the_previous_revisions_files(tmp_path, root):
    dest = tmp_path / "html"
    archive_with(root, "d-1", {"latest/index.html": "v1", "static/old.js": "old"})
    assert command_executor.execute(root, install_command("d-1", dest)).status == "Succeeded"
    (dest / "static" / "user-upload.txt").write_text("mine")  # not installed by CodeDeploy

    archive_with(root, "d-2", {"latest/index.html": "v2", "static/new.js": "new"})
    result = command_executor.execute(root, install_command("d-2", dest))
    assert result.status == "Succeeded", result.message
    assert (dest / "index.html").read_text() == "v2"
    assert not (dest / "static" / "old.js").exists()
    assert (dest / "static" / "new.js").read_text() == "new"
    assert (dest / "static" / "user-upload.txt").read_text() == "mine"  # its directory was kept
    cleanup = Path(root.cleanup_file(GROUP)).read_text()
    assert "old.js" not in cleanup and "new.js" in cleanup


def test_cleanup_skips_an_entry_cut_off_mid_write(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    cleanup = tmp_path / "g-cleanup"
    cleanup.write_text(f"{tmp_path / 'a.txt'}\n{tmp_path / 'b.txt'}")  # no final newline: unfinished
    log: list[str] = []
    file_installer.remove_previous(str(cleanup), log)
    assert not (tmp_path / "a.txt").exists() and (tmp_path / "b.txt").exists()
    assert not cleanup.exists() and log == [f"removed {tmp_path / 'a.txt'}"]


@pytest.mark.parametrize("behavior, status, content", [("DISALLOW", "Failed", "by hand"), ("OVERWRITE", "Succeeded", "v1"), ("RETAIN", "Succeeded", "by hand")])
def test_file_exists_behavior(tmp_path, root, behavior, status, content):
    dest = tmp_path / "html"
    dest.mkdir()
    (dest / "index.html").write_text("by hand")
    archive_with(root, "d-1", {"latest/index.html": "v1", "static/a.js": "1"})
    result = command_executor.execute(root, install_command("d-1", dest, behavior))
    assert result.status == status
    assert (dest / "index.html").read_text() == content
    if behavior == "DISALLOW":
        assert result.error_code == "UnknownError"
        assert str(dest / "index.html") in result.message and "already exists" in result.message
        assert not (dest / "static").exists()  # the conflict is found before anything is copied
    if behavior == "RETAIN":
        assert str(dest / "index.html") not in Path(root.cleanup_file(GROUP)).read_text()


def test_install_applies_permissions(tmp_path, root):
    dest = tmp_path / "app"
    archive_with(root, "d-1", {"app/run.sh": "#!/bin/sh\n", "app/keep.sh": "#!/bin/sh\n", "app/lib/x.txt": "x"})
    command = install_command(
        "d-1",
        dest,
        files=[contracts.FileMapping("app", str(dest))],
        permissions=[
            contracts.PermissionSpec(object=str(dest), pattern="*.sh", except_=["keep.sh"], mode="0750", type=["file"]),
            contracts.PermissionSpec(object=str(dest), mode="700", owner="root", group="root", type=["directory"]),
        ],
    )
    result = command_executor.execute(root, command)
    assert result.status == "Succeeded", result.message
    assert (dest / "run.sh").stat().st_mode & 0o777 == 0o750
    assert (dest / "keep.sh").stat().st_mode & 0o777 != 0o750
    assert (dest / "lib").stat().st_mode & 0o777 == 0o700
    assert (dest / "lib" / "x.txt").stat().st_mode & 0o777 != 0o700


def test_install_unknown_owner_fails_with_the_name(tmp_path, root):
    dest = tmp_path / "app"
    archive_with(root, "d-1", {"latest/index.html": "v1", "static/a.js": "1"})
    command = install_command(
        "d-1", dest, permissions=[contracts.PermissionSpec(object=str(dest), owner="no-such-user-xyz")]
    )
    result = command_executor.execute(root, command)
    assert result.status == "Failed" and "no-such-user-xyz" in result.message


# ---------------------------------------------------------------- hooks


def script_command(root, scripts: dict[str, str], event="BeforeInstall", deployment="d-1", timeouts=None, **kw):
    archive = Path(root.archive_dir(GROUP, kw.get("archive_deployment_id") or deployment))
    hooks = []
    for location, body in scripts.items():
        if body is not None:
            path = archive / location
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("#!/bin/bash\n" + body)
            path.chmod(0o755)
        hooks.append(contracts.HookScript(location=location, timeout=(timeouts or {}).get(location, 30), runas=kw.get("runas")))
    return contracts.HostCommand(
        command_id=f"{deployment}-{event}",
        deployment_id=deployment,
        deployment_group_id=GROUP,
        lifecycle_event=event,
        scripts=hooks,
        env={"APPLICATION_NAME": "web", "DEPLOYMENT_ID": deployment, "DEPLOYMENT_GROUP_NAME": "prod", "DEPLOYMENT_GROUP_ID": GROUP},
        archive_deployment_id=kw.get("archive_deployment_id"),
    )


def test_hooks_succeed_and_log_both_streams(root):
    cmd = script_command(root, {"scripts/a.sh": "echo out\necho err >&2\n", "scripts/b.sh": "echo second\n"})
    result = command_executor.execute(root, cmd)
    assert result.status == "Succeeded" and result.error_code == "Success"
    assert "[stdout]out\n" in result.log and "[stderr]err\n" in result.log and "[stdout]second\n" in result.log
    assert result.log.index("Script - scripts/a.sh") < result.log.index("Script - scripts/b.sh")
    assert "[stdout]out" in (Path(root.deployment_dir(GROUP, "d-1")) / "logs" / "scripts.log").read_text()


def test_hook_failure_reports_exit_code_and_stops(root):
    cmd = script_command(root, {"scripts/fail.sh": "echo boom >&2\nexit 3\n", "scripts/never.sh": "touch /never\n"}, runas="root")
    result = command_executor.execute(root, cmd)
    assert result.status == "Failed" and result.error_code == "ScriptFailed"
    assert result.message.startswith("Script at specified location: scripts/fail.sh run as user root failed with exit code 3")
    assert "[stderr]boom" in result.message
    assert "never.sh" not in result.log


def test_failure_message_keeps_only_the_tail(root):
    cmd = script_command(root, {"s.sh": "for i in $(seq 1 2000); do echo line-$i; done\nexit 1\n"})
    result = command_executor.execute(root, cmd)
    assert result.error_code == "ScriptFailed"
    assert "line-2000" in result.message and "line-1\n" not in result.message
    assert len(result.message) < 2200
    assert "[stdout]line-1\n" in result.log


def test_missing_script(root):
    result = command_executor.execute(root, script_command(root, {"scripts/gone.sh": None}))
    assert result.error_code == "ScriptMissing"
    assert result.message == "Script does not exist at specified location: scripts/gone.sh"


def test_script_without_executable_bit_is_made_executable(root):
    cmd = script_command(root, {"plain.sh": "echo ran\n"})
    (Path(root.archive_dir(GROUP, "d-1")) / "plain.sh").chmod(0o644)
    result = command_executor.execute(root, cmd)
    assert result.status == "Succeeded" and "[stdout]ran" in result.log
    assert "is not executable" in result.log


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_runas_runs_the_script_as_that_user(tmp_path):
    base = Path(tempfile.mkdtemp(dir="/tmp"))  # readable by the other user, unlike tmp_path
    try:
        base.chmod(0o755)
        root = DeploymentRoot(str(base))
        cmd = script_command(root, {"who.sh": 'echo "$(id -un) $LIFECYCLE_EVENT"\nexit 4\n'}, runas="nobody")
        for p in (base / GROUP, base / GROUP / "d-1", Path(root.archive_dir(GROUP, "d-1"))):
            p.chmod(0o755)
        result = command_executor.execute(root, cmd)
        assert "[stdout]nobody BeforeInstall" in result.log
        assert result.message.startswith("Script at specified location: who.sh run as user nobody failed with exit code 4")
    finally:
        shutil.rmtree(base)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def test_timeout_kills_the_whole_process_group(tmp_path, root):
    pidfile = tmp_path / "child.pid"
    cmd = script_command(root, {"slow.sh": f"sleep 300 &\necho $! > {pidfile}\nwait\n"}, timeouts={"slow.sh": 1})
    started = time.monotonic()
    result = command_executor.execute(root, cmd)
    assert time.monotonic() - started < 6
    assert result.error_code == "ScriptTimedOut"
    assert result.message.startswith("Script at specified location: slow.sh failed to complete in 1 seconds")
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_event_time_limit_caps_the_sum_of_timeouts(root, monkeypatch):
    monkeypatch.setattr(hook_runner, "EVENT_TIME_LIMIT", 1)
    cmd = script_command(root, {"a.sh": "sleep 0.6\n", "b.sh": "sleep 5\n"})
    started = time.monotonic()
    result = command_executor.execute(root, cmd)
    assert result.error_code == "ScriptTimedOut" and "b.sh" in result.message
    assert time.monotonic() - started < 4


def test_hook_environment(root, monkeypatch):
    monkeypatch.setenv(contracts.ENV_TOKEN, "secret-token")
    cmd = script_command(
        root,
        {"env.sh": 'echo "$LIFECYCLE_EVENT|$DEPLOYMENT_ID|$APPLICATION_NAME|$DEPLOYMENT_GROUP_NAME|$DEPLOYMENT_GROUP_ID|${PIPELOCAL_TOKEN:-none}"\n'},
        event="AfterInstall",
    )
    result = command_executor.execute(root, cmd)
    assert f"[stdout]AfterInstall|d-1|web|prod|{GROUP}|none\n" in result.log


def test_application_stop_runs_the_last_successful_revisions_script(root):
    cmd = script_command(root, {"stop.sh": "echo old revision stopping\n"}, event="ApplicationStop", deployment="d-2", archive_deployment_id="d-1")
    result = command_executor.execute(root, cmd)
    assert result.status == "Succeeded" and "[stdout]old revision stopping" in result.log


def test_backgrounded_daemon_does_not_hang_the_event(tmp_path, root):
    pidfile = tmp_path / "daemon.pid"
    cmd = script_command(root, {"start.sh": f"nohup sleep 120 &\necho $! > {pidfile}\necho started\n"})
    started = time.monotonic()
    try:
        result = command_executor.execute(root, cmd)
        assert time.monotonic() - started < 3
        assert result.status == "Succeeded" and "[stdout]started" in result.log
        assert _alive(int(pidfile.read_text()))  # the daemon is left running, as intended
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_events_without_scripts_succeed(root):
    result = command_executor.execute(root, script_command(root, {}, event="ValidateService"))
    assert result.status == "Succeeded" and result.log == ""


# ---------------------------------------------------------------- the loop against a fake control plane


class FakeControlPlane:
    def __init__(self, bundle: bytes, commands: list[dict]):
        self.bundle = bundle
        self.queue = list(commands)
        self.registrations: list[dict] = []
        self.results: dict[str, dict] = {}
        self.result_posts: list[str] = []
        self.heartbeats: list[str] = []
        self.tokens: set[str] = set()
        self.failing_polls = 2  # the first polls see the control plane "down"
        self.lock = threading.Lock()
        plane = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, code: int, body: object = None, raw: bytes | None = None):
                data = raw if raw is not None else json.dumps(body or {}).encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/bundle.zip":
                    return self._reply(200, raw=plane.bundle)
                self._reply(404)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                plane.tokens.add(self.headers.get(contracts.TOKEN_HEADER))
                path = self.path.split("?")[0]
                with plane.lock:
                    if path == contracts.AGENT_REGISTER:
                        plane.registrations.append(body)
                        return self._reply(200)
                    if path.endswith("/poll"):
                        if plane.failing_polls:
                            plane.failing_polls -= 1
                            return self._reply(503)
                        command = plane.queue.pop(0) if plane.queue else None
                    elif path.endswith("/heartbeat"):
                        plane.heartbeats.append(path.split("/")[-2])
                        return self._reply(200)
                    elif path.endswith("/result"):
                        command_id = body["command_id"]
                        plane.result_posts.append(command_id)
                        if plane.result_posts.count(command_id) == 1 and command_id.endswith("download"):
                            return self._reply(500)  # lost: the agent must post it again
                        plane.results.setdefault(command_id, body)  # repeats are idempotent
                        return self._reply(200)
                    else:
                        return self._reply(404)
                if command is None:
                    time.sleep(0.1)
                self._reply(200, {"command": command})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_full_loop_against_a_fake_control_plane(tmp_path, root, capfd):
    bundle = make_bundle(
        tmp_path / "b.zip", "zip", {"scripts/stop_server.sh": (b"#!/bin/bash\nsleep 0.5\necho \"stopping $LIFECYCLE_EVENT\"\n", 0o755)}
    ).read_bytes()
    download = {
        "command_id": "c-download",
        "deployment_id": "d-1",
        "deployment_group_id": GROUP,
        "lifecycle_event": "DownloadBundle",
        "bundle_type": "zip",
    }
    before_install = {
        "command_id": "c-before-install",
        "deployment_id": "d-1",
        "deployment_group_id": GROUP,
        "lifecycle_event": "BeforeInstall",
        "env": {"DEPLOYMENT_ID": "d-1"},
        "archive_deployment_id": "d-1",
        "scripts": [{"location": "scripts/stop_server.sh", "timeout": 300, "runas": "root"}],
    }
    plane = FakeControlPlane(bundle, [])
    download["bundle_url"] = plane.url + "/bundle.zip"
    # DownloadBundle is handed out twice, as after a lost acknowledgement; it must not run twice.
    plane.queue = [download, dict(download), before_install]

    stop = threading.Event()
    loop = CommandLoop(
        ControlClient(plane.url, "web-1", "tok"),
        root,
        LoopSettings(poll_wait=1, heartbeat_interval=0.1, backoff_start=0.05, backoff_max=0.1),
        stop=stop,
    )
    runner = threading.Thread(target=loop.run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 15
        while len(plane.results) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join(5)
        plane.server.shutdown()

    assert plane.registrations and plane.registrations[0]["instance_name"] == "web-1"
    assert plane.tokens == {"tok"}
    assert plane.results["c-download"]["status"] == "Succeeded"
    assert plane.result_posts.count("c-download") == 3  # refused once, re-posted, re-sent on repeat
    result = plane.results["c-before-install"]
    assert result["status"] == "Succeeded" and result["error_code"] == "Success"
    assert "[stdout]stopping BeforeInstall" in result["log"]
    assert "c-before-install" in plane.heartbeats
    assert not runner.is_alive()
    err = capfd.readouterr().err
    # Two outages (the failing polls, the refused result post): one line as each starts and ends.
    assert err.count("control plane unavailable (poll") == 1 and err.count("control plane unavailable (result") == 1
    assert err.count("control plane reachable again") == 2


def test_install_acls_and_selinux_context_fail_clearly_where_the_instance_cannot_apply_them(tmp_path, root,
                                                                                           monkeypatch):
    dest = tmp_path / "app"
    archive_with(root, "d-1", {"latest/index.html": "v1", "static/a.js": "1"})
    monkeypatch.setattr(file_installer.shutil, "which", lambda name: None)
    acl = install_command("d-1", dest, permissions=[contracts.PermissionSpec(object=str(dest), acls=["u:bob:rw"])])
    result = command_executor.execute(root, acl)
    assert result.status == "Failed" and "u:bob:rw" in result.message and "setfacl" in result.message
    archive_with(root, "d-2", {"latest/index.html": "v1", "static/a.js": "1"})
    context = install_command("d-2", dest, permissions=[contracts.PermissionSpec(
        object=str(dest), context={"type": "httpd_sys_content_t"})])
    result = command_executor.execute(root, context)
    assert result.status == "Failed" and "httpd_sys_content_t" in result.message and "SELinux" in result.message


def test_acls_reach_the_agent_from_the_appspec():
    from emulator.domain.appspec import parse_appspec, to_permissions

    spec = parse_appspec("version: 0.0\nos: linux\npermissions:\n  - object: /srv\n    acls: [\"u:bob:rw\"]\n"
                         "    context:\n      type: httpd_sys_content_t\n")
    permission = to_permissions(spec)[0]
    assert permission.acls == ["u:bob:rw"] and permission.context == {"type": "httpd_sys_content_t"}
    assert contracts.decode(contracts.PermissionSpec, contracts.encode(permission)) == permission
