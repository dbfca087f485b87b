"""The build runner, run as `python -m runners` with only the standard library and
emulator/contracts.py on its path (as in the build container), against a fake control plane."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from emulator import contracts

REPO = Path(__file__).resolve().parents[2]
TOKEN = "t0ken"
BUILD_ID = "demo:0001"


class FakeControlPlane:
    def __init__(self, plan: contracts.BuildPlan):
        self.plan = plan
        self.phases: list[dict] = []
        self.logs: list[dict] = []
        self.results: list[dict] = []
        self.rejected = 0
        plane = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, body=None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if self.headers.get(contracts.TOKEN_HEADER) != TOKEN:
                    plane.rejected += 1
                    self._reply(401, {"detail": "bad token"})
                    return False
                return True

            def do_GET(self):
                if not self._authorized():
                    return
                if self.path == contracts.BUILD_PLAN.format(build_id=BUILD_ID):
                    self._reply(200, contracts.encode(plane.plan))
                else:
                    self._reply(404, {"detail": self.path})

            def do_POST(self):
                if not self._authorized():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                sinks = {
                    contracts.BUILD_PHASES: plane.phases,
                    contracts.BUILD_LOGS: plane.logs,
                    contracts.BUILD_RESULT: plane.results,
                }
                for route, sink in sinks.items():
                    if self.path == route.format(build_id=BUILD_ID):
                        sink.append(body)
                        self._reply(200, {})
                        return
                self._reply(404, {"detail": self.path})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @property
    def log_text(self) -> str:
        chunks = sorted(self.logs, key=lambda c: c["seq"])
        assert [c["seq"] for c in chunks] == list(range(1, len(chunks) + 1))
        return "".join(c["text"] for c in chunks)

    def final_reports(self) -> dict[str, dict]:
        return {r["phase"]: r for r in self.phases if r["status"] != "IN_PROGRESS"}


@pytest.fixture(scope="module")
def container_root(tmp_path_factory) -> Path:
    """What the lead copies into the image: runners/ plus emulator/{__init__,contracts}.py."""
    root = tmp_path_factory.mktemp("container")
    shutil.copytree(REPO / "runners", root / "runners", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "emulator").mkdir()
    (root / "emulator" / "__init__.py").write_text("")
    shutil.copy(REPO / "emulator" / "contracts.py", root / "emulator" / "contracts.py")
    return root


def phase(name, commands, finally_commands=(), on_failure=None, run_as=None):
    return contracts.PhaseSpec(
        name=name,
        commands=[contracts.CommandSpec(c, i + 1) for i, c in enumerate(commands)],
        finally_commands=[contracts.CommandSpec(c) for c in finally_commands],
        on_failure=on_failure,
        run_as=run_as,
    )


def run_build(container_root: Path, src: Path, phases, **plan_fields):
    src.mkdir(parents=True, exist_ok=True)
    env = {"CODEBUILD_SRC_DIR": str(src), **plan_fields.pop("env", {})}
    plan = contracts.BuildPlan(build_id=BUILD_ID, src_dir=str(src), env=env, phases=phases, **plan_fields)
    with FakeControlPlane(plan) as plane:
        proc = subprocess.run(
            # -E -S: no PYTHONPATH, no site-packages; only the stdlib and the copied files
            [sys.executable, "-E", "-S", "-m", "runners"],
            cwd=container_root,
            env={
                "PATH": os.environ["PATH"],
                contracts.ENV_CONTROL_URL: plane.url,
                contracts.ENV_BUILD_ID: BUILD_ID,
                contracts.ENV_TOKEN: TOKEN,
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert plane.rejected == 0
    assert len(plane.results) == 1, proc.stderr
    return proc, plane


def test_cd_and_export_persist_across_commands_and_phases(container_root, tmp_path):
    proc, plane = run_build(
        container_root,
        tmp_path / "src",
        [
            phase("INSTALL", ["mkdir -p sub/dir", "cd sub", "export FOO=bar"]),
            phase("BUILD", ["cd dir", 'echo "where=$(pwd) foo=$FOO"']),
            phase("POST_BUILD", ['echo "post where=$(pwd) foo=$FOO"']),
        ],
    )
    src = tmp_path / "src"
    assert proc.returncode == 0, proc.stderr
    assert plane.results[0]["succeeded"] is True
    assert f"where={src}/sub/dir foo=bar\n" in plane.log_text
    assert f"post where={src}/sub/dir foo=bar\n" in plane.log_text


def test_failing_build_command_skips_rest_runs_finally_and_post_build(container_root, tmp_path):
    proc, plane = run_build(
        container_root,
        tmp_path / "src",
        [
            phase("PRE_BUILD", ['echo "pre succeeding=$CODEBUILD_BUILD_SUCCEEDING"']),
            phase("BUILD", ["echo first", "false", "echo SHOULD-NOT-RUN"], finally_commands=["echo finally-ran"]),
            phase("POST_BUILD", ['echo "post succeeding=$CODEBUILD_BUILD_SUCCEEDING"']),
        ],
    )
    log = plane.log_text
    assert proc.returncode == 1
    assert plane.results[0]["succeeded"] is False
    assert plane.results[0]["message"] == "Error while executing command: false. Reason: exit status 1"
    assert "pre succeeding=1\n" in log
    assert "first\n" in log and "SHOULD-NOT-RUN\n" not in log
    assert "finally-ran\n" in log
    assert "post succeeding=0\n" in log
    reports = plane.final_reports()
    assert reports["BUILD"]["status"] == "FAILED"
    assert reports["BUILD"]["message"] == "Error while executing command: false. Reason: exit status 1"
    assert reports["POST_BUILD"]["status"] == "SUCCEEDED"
    assert "Phase complete: BUILD State: FAILED\n" in log
    assert (
        "Phase context status code: COMMAND_EXECUTION_ERROR Message: "
        "Error while executing command: false. Reason: exit status 1\n"
    ) in log


def test_each_phase_reports_in_progress_then_its_outcome(container_root, tmp_path):
    _, plane = run_build(container_root, tmp_path / "src", [phase("BUILD", ["true"])])
    assert [(r["phase"], r["status"]) for r in plane.phases] == [("BUILD", "IN_PROGRESS"), ("BUILD", "SUCCEEDED")]
    assert plane.phases[0]["end_time"] is None
    assert plane.phases[1]["end_time"] >= plane.phases[1]["start_time"] == plane.phases[0]["start_time"]


def test_failing_finally_fails_the_phase(container_root, tmp_path):
    proc, plane = run_build(
        container_root, tmp_path / "src", [phase("BUILD", ["echo ok"], finally_commands=["exit 4", "echo after"])]
    )
    assert proc.returncode == 1
    assert plane.final_reports()["BUILD"]["message"] == "Error while executing command: exit 4. Reason: exit status 4"
    assert "after\n" in plane.log_text  # the remaining finally commands still run


def test_install_failure_skips_build_and_post_build(container_root, tmp_path):
    proc, plane = run_build(
        container_root,
        tmp_path / "src",
        [
            phase("INSTALL", ["false"]),
            phase("BUILD", ["echo BUILD-RAN"]),
            phase("POST_BUILD", ["echo POST-RAN"]),
        ],
    )
    assert proc.returncode == 1
    assert set(plane.final_reports()) == {"INSTALL"}
    assert "BUILD-RAN" not in plane.log_text and "POST-RAN" not in plane.log_text


def test_exit_in_a_command_fails_it_and_later_phases_keep_the_environment(container_root, tmp_path):
    proc, plane = run_build(
        container_root,
        tmp_path / "src",
        [
            phase("INSTALL", ["export KEEP=yes", "mkdir -p sub", "cd sub"]),
            phase("BUILD", ["exit 3", "echo SHOULD-NOT-RUN"]),
            phase("POST_BUILD", ['echo "keep=$KEEP in $(basename "$PWD")"', 'echo "succeeding=$CODEBUILD_BUILD_SUCCEEDING"']),
        ],
    )
    assert proc.returncode == 1
    assert plane.final_reports()["BUILD"]["message"] == "Error while executing command: exit 3. Reason: exit status 3"
    assert "keep=yes in sub\n" in plane.log_text
    assert "succeeding=0\n" in plane.log_text
    assert "SHOULD-NOT-RUN" not in plane.log_text


def test_secret_values_are_masked(container_root, tmp_path):
    secret = "s3cr3t-Value"
    proc, plane = run_build(
        container_root,
        tmp_path / "src",
        [phase("BUILD", ['echo "token is $TOKEN"', 'echo "$TOKEN" >&2'])],
        env={"TOKEN": secret},
        secret_values=[secret],
    )
    assert proc.returncode == 0
    assert secret not in plane.log_text
    assert "token is ***\n" in plane.log_text
    assert "\n***\n" in plane.log_text  # stderr is logged and masked too


def test_runner_credentials_do_not_reach_commands(container_root, tmp_path):
    _, plane = run_build(container_root, tmp_path / "src", [phase("BUILD", ['echo "token=[${PIPELOCAL_TOKEN-}]"'])])
    assert "token=[]\n" in plane.log_text


def test_exported_variables_are_returned(container_root, tmp_path):
    proc, plane = run_build(
        container_root,
        tmp_path / "src",
        [phase("BUILD", ["export VERSION=1.2.3", "export NOTE='two words'"]), phase("POST_BUILD", ["export VERSION=1.2.4"])],
        exported_variables=["VERSION", "NOTE", "NEVER_SET"],
    )
    assert proc.returncode == 0
    assert plane.results[0]["exported_variables"] == {"VERSION": "1.2.4", "NOTE": "two words"}


def test_log_has_codebuild_lines_and_unterminated_output(container_root, tmp_path):
    _, plane = run_build(container_root, tmp_path / "src", [phase("BUILD", ["printf no-newline", "echo hi"])])
    log = plane.log_text
    stamp = r"\[Container\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6} "
    assert re.search(stamp + r"Entering phase BUILD\n", log)
    assert re.search(stamp + r"Running command printf no-newline\nno-newline\n" + stamp + r"Running command echo hi\nhi\n", log)
    assert re.search(stamp + r"Phase complete: BUILD State: SUCCEEDED\n", log)


def test_commands_read_no_stdin(container_root, tmp_path):
    _, plane = run_build(container_root, tmp_path / "src", [phase("BUILD", ['echo "[$(cat)]"', "echo next"])])
    assert "\n[]\n" in plane.log_text and "\nnext\n" in plane.log_text  # cat saw EOF, not the shell's input


@pytest.mark.parametrize(
    ("on_failure", "post_build_runs", "build_runs"),
    [
        ("CONTINUE", True, True),  # pre_build failed, build still runs
        ("ABORT", False, False),
    ],
)
def test_on_failure_continue_and_abort(container_root, tmp_path, on_failure, post_build_runs, build_runs):
    proc, plane = run_build(
        container_root,
        tmp_path / "src",
        [
            phase("PRE_BUILD", ["false"], on_failure=on_failure),
            phase("BUILD", ['echo "build succeeding=$CODEBUILD_BUILD_SUCCEEDING"']),
            phase("POST_BUILD", ["echo POST-RAN"]),
        ],
    )
    assert proc.returncode == 1  # the failed phase still fails the build
    assert ("build succeeding=0\n" in plane.log_text) is build_runs
    assert ("POST-RAN\n" in plane.log_text) is post_build_runs


def test_abort_on_build_skips_post_build(container_root, tmp_path):
    _, plane = run_build(
        container_root,
        tmp_path / "src",
        [phase("BUILD", ["false"], on_failure="ABORT"), phase("POST_BUILD", ["echo POST-RAN"])],
    )
    assert "POST-RAN" not in plane.log_text


def test_retry_runs_the_phases_again_until_success(container_root, tmp_path):
    counter = tmp_path / "attempts"
    proc, plane = run_build(
        container_root,
        tmp_path / "src",
        [
            phase("INSTALL", [f"echo x >> {counter}"]),
            phase("BUILD", [f'[ "$(wc -l < {counter})" -ge 3 ] || {{ echo flaky network; exit 1; }}'], on_failure="RETRY-5-flaky"),
        ],
    )
    assert proc.returncode == 0
    assert plane.results[0]["succeeded"] is True
    assert counter.read_text().count("x") == 3
    assert [r["status"] for r in plane.phases if r["phase"] == "BUILD" and r["status"] != "IN_PROGRESS"] == [
        "FAILED",
        "FAILED",
        "SUCCEEDED",
    ]


def test_retry_stops_when_the_message_does_not_match_or_count_is_used(container_root, tmp_path):
    _, plane = run_build(container_root, tmp_path / "a", [phase("BUILD", ["echo boom; false"], on_failure="RETRY-3-network")])
    assert len([r for r in plane.phases if r["status"] == "FAILED"]) == 1
    _, plane = run_build(container_root, tmp_path / "b", [phase("BUILD", ["echo boom; false"], on_failure="RETRY-2")])
    assert len([r for r in plane.phases if r["status"] == "FAILED"]) == 3


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="run-as needs root and runuser")
def test_run_as_runs_as_that_user_and_keeps_exports(container_root):
    src = Path(tempfile.mkdtemp(prefix="pipelocal-runas-"))
    try:
        os.chmod(src, 0o777)
        _, plane = run_build(
            container_root,
            src,
            [
                phase("BUILD", ['echo "user=$(id -un) home=$HOME"', "export FROM_USER=1", "mkdir d", "cd d"], run_as="nobody"),
                phase("POST_BUILD", ['echo "user=$(id -un) from_user=$FROM_USER dir=$(basename "$PWD") home=$HOME"']),
            ],
            env={"HOME": "/root"},
        )
        log = plane.log_text
        assert "user=nobody home=/nonexistent\n" in log
        assert "user=root from_user=1 dir=d home=/root\n" in log
        assert plane.results[0]["succeeded"] is True
    finally:
        shutil.rmtree(src, ignore_errors=True)


def test_missing_environment_exits_2(container_root):
    proc = subprocess.run(
        [sys.executable, "-E", "-S", "-m", "runners"], cwd=container_root, env={"PATH": os.environ["PATH"]},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 2
    assert contracts.ENV_CONTROL_URL in proc.stderr
