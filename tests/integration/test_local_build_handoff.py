"""`pipelocal build` handed to the running control plane: the same build, output and exit status
as when the command runs it itself, and a caller that goes away stops its build."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time

from emulator import contracts
from emulator.cli.build_handoff import Receiver, hand_over
from emulator.runtime.container_runtime import LABEL_OWNER, LABEL_ROLE
from emulator.runtime.docker_engine import DockerEngine
from emulator.services.codebuild.warm_containers import WARM_OWNER


def _source(tmp_path, commands: list[str], extra: str = "") -> str:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    body = "".join(f"      - {c}\n" for c in commands)
    (src / "buildspec.yml").write_text(f"version: 0.2\nphases:\n  build:\n    commands:\n{body}{extra}")
    return str(src)


def _receiver(text: list[str]) -> Receiver:
    return Receiver(text=text.append, phase=lambda phase: None, refused=lambda kind, message: 2,
                    result=lambda result: 0 if result.status == "SUCCEEDED" else 1)


def test_the_control_plane_runs_the_build_and_writes_its_artifacts(control_plane, tmp_path):
    src = _source(tmp_path, ["echo handed > out.txt", "echo done"], "artifacts:\n  files:\n    - out.txt\n")
    text, phases, results = [], [], []
    request = contracts.LocalBuildRequest(source_dir=src, artifacts_dir=str(tmp_path / "out"), uid=os.getuid(),
                                          env={"GREETING": "hi"})
    receiver = Receiver(text=text.append, phase=phases.append, refused=lambda kind, message: 2,
                        result=lambda result: (results.append(result), 0)[1])
    code = hand_over(request, control_plane.settings.run_dir, control_plane.settings.port, receiver)
    assert code == 0, "".join(text)
    assert "Running command echo done" in "".join(text)
    assert phases == ["BUILD", "UPLOAD_ARTIFACTS"]
    assert results[0].status == "SUCCEEDED" and [p.phase for p in results[0].phases] == ["BUILD", "UPLOAD_ARTIFACTS"]
    assert (tmp_path / "out" / "out.txt").read_text() == "handed\n"


def test_the_command_hands_over_with_the_same_exit_status_table_and_refusals(control_plane, tmp_path):
    env = {**os.environ, "PIPELOCAL_HOME": str(control_plane.settings.home),
           "PIPELOCAL_PORT": str(control_plane.settings.port)}
    src = _source(tmp_path, ["exit 4"])
    done = subprocess.run([sys.executable, "-m", "emulator.cli.entry", "build", "--source", src],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Running command exit 4" in done.stdout
    assert any("BUILD" in line and "FAIL" in line for line in done.stdout.splitlines())
    (tmp_path / "src" / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    on-failure: SOMETIMES\n"
                                                    "    commands:\n      - x\n")
    done = subprocess.run([sys.executable, "-m", "emulator.cli.entry", "build", "--source", src],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert "buildspec.yml:4: phases.build.on-failure" in done.stdout.replace("\n", "")
    (tmp_path / "src" / "buildspec.yml").write_text("version: 0.2\nenv:\n  parameter-store:\n    KEY: /no/such/name\n"
                                                    "phases:\n  build:\n    commands:\n      - echo $KEY\n")
    answers = [subprocess.run([sys.executable, "-m", "emulator.cli.entry", "build", "--source", src, *extra],
                              capture_output=True, text=True, env=env, timeout=120) for extra in ([], ["--standalone"])]
    assert [a.returncode for a in answers] == [2, 2], [a.stdout + a.stderr for a in answers]
    assert all(a.stdout.startswith("build refused: ") and "/no/such/name" in a.stdout for a in answers), answers
    answers = [subprocess.run([sys.executable, "-m", "emulator.cli.entry", "build", "--source", src, "--source-mode", "git",
                               *extra], capture_output=True, text=True, env=env, timeout=120)
               for extra in ([], ["--standalone"])]  # not a git work tree: found when the source is read
    assert [a.returncode for a in answers] == [2, 2], [a.stdout + a.stderr for a in answers]
    assert all(a.stdout.startswith("refused: --source-mode git") for a in answers), answers


def test_the_command_does_not_load_the_docker_sdk_when_it_hands_over(control_plane, tmp_path):
    env = {**os.environ, "PIPELOCAL_HOME": str(control_plane.settings.home),
           "PIPELOCAL_PORT": str(control_plane.settings.port)}
    src = _source(tmp_path, ["echo quick"])
    probe = ("import sys; sys.argv = ['pipelocal', 'build', '--source', sys.argv[1]]\n"
             "import emulator.cli.build_command as b\n"
             "code = b.main(sys.argv[2:])\n"
             "print('docker loaded' if 'docker' in sys.modules else 'docker not loaded', code)\n")
    done = subprocess.run([sys.executable, "-c", probe, src], capture_output=True, text=True, env=env, timeout=120)
    assert "docker not loaded 0" in done.stdout, done.stdout + done.stderr
    done = subprocess.run([sys.executable, "-c", probe.replace("sys.argv[2:]", "sys.argv[2:] + ['--standalone']"), src],
                          capture_output=True, text=True, env=env, timeout=120)
    assert "docker loaded 0" in done.stdout, done.stdout + done.stderr


def test_a_build_stops_when_its_caller_goes_away(control_plane, tmp_path):
    src = _source(tmp_path, ["echo waiting", "sleep 120"])
    token = (control_plane.settings.run_dir / contracts.LOCAL_BUILD_TOKEN_FILE).read_text()
    connection = http.client.HTTPConnection("127.0.0.1", control_plane.settings.port, timeout=60)
    connection.request("POST", contracts.LOCAL_BUILDS, headers={contracts.TOKEN_HEADER: token},
                       body=json.dumps(contracts.encode(contracts.LocalBuildRequest(source_dir=src, uid=os.getuid()))))
    response = connection.getresponse()
    assert response.status == 200
    for line in response:
        if "Running command sleep 120" in json.loads(line).get("text", ""):
            break
    engine = DockerEngine(installation=str(control_plane.settings.home))

    def running_builds() -> list[str]:
        # a container made ahead keeps its label once a build takes it, and takes the build's name
        return [i.name for i in engine.list({LABEL_ROLE: "local-build"}) if i.name.startswith("pipelocal-local-build-")]

    assert running_builds(), "the build's container should be running"
    connection.close()  # as a Ctrl-C of `pipelocal build` does
    deadline = time.monotonic() + 20
    while running_builds() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert running_builds() == []


def test_requests_without_the_installations_token_are_refused(control_plane, tmp_path):
    connection = http.client.HTTPConnection("127.0.0.1", control_plane.settings.port, timeout=10)
    body = json.dumps(contracts.encode(contracts.LocalBuildRequest(source_dir=str(tmp_path), uid=os.getuid())))
    connection.request("POST", contracts.LOCAL_BUILDS, body=body, headers={contracts.TOKEN_HEADER: "guess"})
    assert connection.getresponse().status == 403


def test_builds_after_the_first_start_in_a_fresh_container_made_ahead(control_plane, tmp_path):
    src = _source(tmp_path, ["echo host=$HOSTNAME src=$CODEBUILD_SRC_DIR", "ls"])
    (tmp_path / "src" / "marker.txt").write_text("x")
    engine = DockerEngine(installation=str(control_plane.settings.home))
    hosts = []
    for _ in range(3):
        text: list[str] = []
        request = contracts.LocalBuildRequest(source_dir=src, uid=os.getuid())
        code = hand_over(request, control_plane.settings.run_dir, control_plane.settings.port, _receiver(text))
        log = "".join(text)
        assert code == 0, log
        assert "marker.txt" in log and "src=/codebuild/output/src1/src" in log
        hosts.append(log.split("host=")[2].split()[0])  # the first "host=" is the echoed command line
        deadline = time.monotonic() + 20  # the next one is made after the build
        while not engine.list({LABEL_ROLE: "local-build", LABEL_OWNER: WARM_OWNER}) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert engine.list({LABEL_ROLE: "local-build", LABEL_OWNER: WARM_OWNER})
    assert len(set(hosts)) == 3, hosts  # never the same container twice


def test_a_handed_build_reaches_the_installations_store_with_the_aws_cli(control_plane, tmp_path):
    """As the seed's post_build does (`aws s3 sync ./dist s3://…`): the control plane gives its local
    builds the store and AWS endpoint its pipeline builds have."""
    bucket = "handed-build-bucket"
    control_plane.store.ensure_bucket(bucket)
    src = _source(tmp_path, ["mkdir -p dist && echo synced > dist/index.html", f"aws s3 sync ./dist s3://{bucket}/latest/"])
    text: list[str] = []
    code = hand_over(contracts.LocalBuildRequest(source_dir=src, uid=os.getuid()), control_plane.settings.run_dir,
                     control_plane.settings.port, _receiver(text))
    assert code == 0, "".join(text)
    assert control_plane.store.get_bytes(bucket, "latest/index.html") == b"synced\n"
