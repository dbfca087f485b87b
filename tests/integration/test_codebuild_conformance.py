"""CodeBuild conformance: one case per documented behaviour (reference 1.2, 1.3), each a real
build of the real build image, run through `pipelocal build`'s engine (no control plane)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from emulator.domain.errors import SpecError
from emulator.runtime.docker_engine import CLI_API_VERSION, DockerEngine
from emulator.services.codebuild import local_build
from emulator.services.parameters.store import ParameterStore
from emulator.state.database import Database

pytestmark = pytest.mark.integration


@dataclass
class Case:
    id: str
    buildspec: str
    status: str
    phases: dict[str, str] = field(default_factory=dict)  # phase -> status; "-" = must not run
    output: tuple[str, ...] = ()  # must appear in the log
    absent: tuple[str, ...] = ()  # must not appear in the log
    files: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 120
    phase: str | None = None


CASES = [
    Case("one-shell-cd-and-export-carry-over", """
        version: 0.2
        phases:
          build:
            commands:
              - mkdir -p sub && cd sub
              - export CARRIED=yes
              - echo "pwd=$(pwd) carried=$CARRIED"
        """, "SUCCEEDED", {"BUILD": "SUCCEEDED"}, ("pwd=/codebuild/output/src1/src/sub carried=yes",)),
    Case("post-build-runs-after-build-failure-with-succeeding-0", """
        version: 0.2
        phases:
          build:
            commands:
              - echo "build succeeding=$CODEBUILD_BUILD_SUCCEEDING"
              - "false"
          post_build:
            commands:
              - echo "post succeeding=$CODEBUILD_BUILD_SUCCEEDING"
        """, "FAILED", {"BUILD": "FAILED", "POST_BUILD": "SUCCEEDED"},
         ("build succeeding=1", "post succeeding=0", "Error while executing command: false. Reason: exit status 1")),
    Case("finally-runs-after-failed-command-rest-skipped", """
        version: 0.2
        phases:
          build:
            commands:
              - exit 3
              - echo never-printed
            finally:
              - echo finally-ran
        """, "FAILED", {"BUILD": "FAILED"}, ("finally-ran", "Reason: exit status 3"), ("never-printed\n",)),
    Case("install-failure-stops-the-build", """
        version: 0.2
        phases:
          install:
            commands:
              - "false"
          build:
            commands:
              - echo build-ran
          post_build:
            commands:
              - echo post-ran
        """, "FAILED", {"INSTALL": "FAILED", "BUILD": "-", "POST_BUILD": "-"}, (), ("build-ran\n", "post-ran\n")),
    Case("pre-build-failure-stops-the-build", """
        version: 0.2
        phases:
          pre_build:
            commands:
              - "false"
          build:
            commands:
              - echo build-ran
        """, "FAILED", {"PRE_BUILD": "FAILED", "BUILD": "-"}, (), ("build-ran\n",)),
    Case("on-failure-continue-runs-next-phase-build-stays-failed", """
        version: 0.2
        phases:
          pre_build:
            on-failure: CONTINUE
            commands:
              - "false"
          build:
            commands:
              - echo "build ran succeeding=$CODEBUILD_BUILD_SUCCEEDING"
        """, "FAILED", {"PRE_BUILD": "FAILED", "BUILD": "SUCCEEDED"}, ("build ran succeeding=0",)),
    Case("on-failure-abort-skips-post-build", """
        version: 0.2
        phases:
          build:
            on-failure: ABORT
            commands:
              - "false"
          post_build:
            commands:
              - echo post-ran
        """, "FAILED", {"BUILD": "FAILED", "POST_BUILD": "-"}, (), ("post-ran\n",)),
    Case("on-failure-retry-count-retries-whole-sequence", """
        version: 0.2
        phases:
          build:
            on-failure: RETRY-2
            commands:
              - echo attempt >> attempts.txt
              - test "$(wc -l < attempts.txt)" -ge 2
              - echo "attempts=$(wc -l < attempts.txt)"
        """, "SUCCEEDED", {"BUILD": "SUCCEEDED"}, ("attempts=2", "Retrying build after BUILD failed (retry 1)")),
    Case("on-failure-retry-regex-no-match-no-retry", """
        version: 0.2
        phases:
          build:
            on-failure: RETRY-3-network
            commands:
              - echo attempt >> attempts.txt
              - exit 7
        """, "FAILED", {"BUILD": "FAILED"}, ("exit status 7",), ("Retrying build",)),
    Case("codebuild-variables-present", """
        version: 0.2
        phases:
          build:
            commands:
              - 'for v in CODEBUILD_BUILD_ID CODEBUILD_BUILD_ARN CODEBUILD_BUILD_NUMBER CODEBUILD_SRC_DIR CODEBUILD_INITIATOR CODEBUILD_START_TIME CODEBUILD_BUILD_IMAGE CODEBUILD_BUILD_SUCCEEDING AWS_REGION AWS_DEFAULT_REGION; do eval "test -n \\"\\${$v}\\"" || { echo "MISSING-VAR $v"; exit 1; }; done'
              - echo "src=$CODEBUILD_SRC_DIR image=$CODEBUILD_BUILD_IMAGE number=$CODEBUILD_BUILD_NUMBER"
              - env | grep -c '^PIPELOCAL_' || echo "no-runner-variables"
        """, "SUCCEEDED", {"BUILD": "SUCCEEDED"},
         ("src=/codebuild/output/src1/src image=pipelocal/build:1 number=1", "no-runner-variables"), ("MISSING-VAR C", "MISSING-VAR A")),
    Case("variable-precedence-project-over-buildspec", """
        version: 0.2
        env:
          variables:
            STAGE: from-buildspec
            ONLY_SPEC: spec
            PATH_LIKE: $PATH:/x
        phases:
          build:
            commands:
              - echo "stage=$STAGE only=$ONLY_SPEC pathlike=$PATH_LIKE"
        """, "SUCCEEDED", {"BUILD": "SUCCEEDED"}, ("stage=from-project only=spec pathlike=$PATH:/x",),
         env={"STAGE": "from-project"}),
    Case("run-as-user-for-a-phase", """
        version: 0.2
        phases:
          build:
            run-as: nobody
            commands:
              - echo "user=$(id -un)"
          post_build:
            commands:
              - echo "post-user=$(id -un)"
        """, "SUCCEEDED", {"BUILD": "SUCCEEDED"}, ("user=nobody", "post-user=root")),
    Case("env-shell-sh", """
        version: 0.2
        env:
          shell: /bin/sh
        phases:
          build:
            commands:
              - 'echo "shell=$(readlink -f /proc/$$/exe)"'
        """, "SUCCEEDED", {"BUILD": "SUCCEEDED"}, ("shell=/usr/bin/dash",)),
    Case("timeout-stops-a-hanging-command", """
        version: 0.2
        phases:
          build:
            commands:
              - sleep 600
        """, "TIMED_OUT", {"BUILD": "TIMED_OUT"}, (), (), timeout=3),
    Case("one-phase-only", """
        version: 0.2
        phases:
          install:
            commands:
              - echo install-ran
          build:
            commands:
              - echo build-ran
        """, "SUCCEEDED", {"BUILD": "SUCCEEDED", "INSTALL": "-"}, ("build-ran",), ("install-ran\n",), phase="build"),
]


def _run(tmp_path: Path, case: Case, params=None, artifacts: Path | None = None, source_mode: str = "copy"):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "buildspec.yml").write_text(textwrap.dedent(case.buildspec).lstrip())
    for name, text in case.files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    options = local_build.LocalBuildOptions(source_dir=src, env=dict(case.env), timeout_seconds=case.timeout,
                                            phase=case.phase, params=params, artifacts_dir=artifacts,
                                            source_mode=source_mode)
    spec, _ = local_build.prepare(options)
    log: list[str] = []
    result = local_build.run(options, spec, log.append, lambda report: None,
                             DockerEngine(installation=str(tmp_path), api_version=CLI_API_VERSION))
    return result, "".join(log)


@pytest.fixture(scope="module")
def images(images_ready):
    return None


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_documented_behaviour(case: Case, tmp_path, images):
    result, log = _run(tmp_path, case)
    assert result.status == case.status, log
    seen = {p.phase: p.status for p in result.phases}
    for phase, status in case.phases.items():
        if status == "-":
            assert phase not in seen, f"{phase} ran: {seen}\n{log}"
        else:
            assert seen.get(phase) == status, f"{phase}: {seen}\n{log}"
    for text in case.output:
        assert text in log, log
    for text in case.absent:
        assert text not in log, log


def test_exported_variables_read_after_the_last_phase(tmp_path, images):
    case = Case("exported", """
        version: 0.2
        env:
          exported-variables: [VERSION, UNSET_ONE]
        phases:
          build:
            commands:
              - export VERSION=1.2.3
          post_build:
            commands:
              - export VERSION="$VERSION-final"
        """, "SUCCEEDED")
    result, log = _run(tmp_path, case)
    assert result.exported == {"VERSION": "1.2.3-final"}, log


def test_parameter_store_and_secrets_manager_resolve_and_are_masked(tmp_path, images):
    params = ParameterStore(Database(tmp_path / "state.sqlite3", "000000000000", "us-east-1"))
    params.put_parameter("/app/db-host", "db.internal.example", "String")
    params.create_secret("app/creds", '{"password": "s3cr3t-Pa55", "user": "admin"}')
    case = Case("secrets", """
        version: 0.2
        env:
          parameter-store:
            DB_HOST: /app/db-host
          secrets-manager:
            DB_PASSWORD: app/creds:password
            WHOLE: app/creds
        phases:
          build:
            commands:
              - echo "host=$DB_HOST pw=$DB_PASSWORD"
              - test "$DB_PASSWORD" = s3cr3t-Pa55 && echo password-correct
              - echo "$WHOLE" | grep -q admin && echo whole-secret-correct
        """, "SUCCEEDED")
    result, log = _run(tmp_path, case, params=params)
    assert result.status == "SUCCEEDED", log
    assert "password-correct" in log and "whole-secret-correct" in log
    assert "s3cr3t-Pa55" not in log and "db.internal.example" not in log
    assert "host=*** pw=***" in log


def test_missing_secret_refused_with_its_name(tmp_path, images):
    params = ParameterStore(Database(tmp_path / "state.sqlite3", "000000000000", "us-east-1"))
    case = Case("missing", """
        version: 0.2
        env:
          secrets-manager:
            TOKEN: no-such-secret
        phases:
          build:
            commands:
              - echo hi
        """, "FAILED")
    with pytest.raises(ValueError, match="no-such-secret"):
        _run(tmp_path, case, params=params)


def test_junit_report_parsed_with_totals_and_failures(tmp_path, images):
    junit = ('<testsuite name="s"><testcase classname="a" name="ok" time="0.5"/>'
             '<testcase classname="a" name="bad"><failure message="expected 2"/></testcase>'
             '<testcase classname="a" name="skip"><skipped/></testcase></testsuite>')
    case = Case("reports", """
        version: 0.2
        phases:
          build:
            commands:
              - mkdir -p reports && cp junit.xml.in reports/junit.xml
        reports:
          unit:
            files: ['**/*.xml']
            base-directory: reports
            file-format: JunitXml
        """, "SUCCEEDED", files={"junit.xml.in": junit})
    result, log = _run(tmp_path, case)
    assert result.status == "SUCCEEDED", log
    [report] = result.reports
    assert report["testSummary"]["total"] == 3
    assert report["testSummary"]["statusCounts"]["FAILED"] == 1
    assert report["testSummary"]["statusCounts"]["SKIPPED"] == 1
    assert report["status"] == "FAILED"
    assert report["reportGroupArn"].endswith(":report-group/local-unit")


def test_artifacts_base_directory_discard_exclude_and_secondary(tmp_path, images):
    case = Case("artifacts", """
        version: 0.2
        phases:
          build:
            commands:
              - mkdir -p dist/js dist/.cache docs && echo a > dist/js/app.js && echo b > dist/index.html
              - echo c > dist/.cache/junk && echo d > docs/guide.md
        artifacts:
          files: ['**/*']
          base-directory: dist
          exclude-paths: ['**/.*/**/*']
          secondary-artifacts:
            docs:
              files: [docs/*.md]
              discard-paths: yes
        """, "SUCCEEDED")
    out = tmp_path / "out"
    result, log = _run(tmp_path, case, artifacts=out)
    assert result.status == "SUCCEEDED", log
    found = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert found == ["docs/guide.md", "index.html", "js/app.js"]


def test_no_matching_artifacts_fails_upload(tmp_path, images):
    case = Case("noart", """
        version: 0.2
        phases:
          build:
            commands:
              - echo nothing
        artifacts:
          files: ['missing/**/*']
        """, "FAILED")
    result, log = _run(tmp_path, case, artifacts=tmp_path / "out")
    assert result.status == "FAILED"
    assert {p.phase: p.status for p in result.phases}["UPLOAD_ARTIFACTS"] == "FAILED"


def test_git_source_mode_leaves_untracked_files_out(tmp_path, images):
    import subprocess

    src = tmp_path / "src"
    src.mkdir()
    (src / "tracked.txt").write_text("t")
    subprocess.run(["git", "init", "-q", str(src)], check=True)
    case = Case("git", """
        version: 0.2
        phases:
          build:
            commands:
              - ls
        """, "SUCCEEDED", files={"untracked.txt": "u"})
    (src / "buildspec.yml").write_text(textwrap.dedent(case.buildspec).lstrip())
    subprocess.run(["git", "-C", str(src), "add", "tracked.txt", "buildspec.yml"], check=True)
    result, log = _run(tmp_path, case, source_mode="git")
    assert result.status == "SUCCEEDED", log
    assert "tracked.txt" in log and "untracked.txt\n" not in log
    assert result.excluded == [".git/", "untracked.txt"]


BAD = [
    ("unknown-key", "version: 0.2\nphases:\n  build:\n    comands:\n      - x\n", 4, "phases.build.comands"),
    ("wrong-type", "version: 0.2\nphases:\n  build:\n    commands: echo hi\n", 4, "phases.build.commands"),
    ("phase-without-commands", "version: 0.2\nphases:\n  build:\n    finally:\n      - x\n", 3, "phases.build.commands"),
    ("invalid-on-failure", "version: 0.2\nphases:\n  build:\n    on-failure: STOP\n    commands:\n      - x\n", 4,
     "phases.build.on-failure"),
    ("reserved-variable", "version: 0.2\nenv:\n  variables:\n    CODEBUILD_X: y\nphases:\n  build:\n    commands:\n      - x\n",
     4, "env.variables.CODEBUILD_X"),
    ("unknown-runtime-version", "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      nodejs: 8\n", 5,
     "phases.install.runtime-versions.nodejs"),
]


@pytest.mark.parametrize("text,line,key", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_buildspec_refused_before_any_container(text, line, key, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "buildspec.yml").write_text(text)
    with pytest.raises(SpecError) as info:
        local_build.prepare(local_build.LocalBuildOptions(source_dir=src))
    assert info.value.line == line and info.value.key == key
    assert str(src / "buildspec.yml") in str(info.value)


CACHE_SPEC = """
    version: 0.2
    phases:
      build:
        commands:
          - test -f deps/stamp && echo "restored=$(cat deps/stamp)" || echo restored=none
          - mkdir -p deps /root/.tool && echo "$STAMP" > deps/stamp && echo t > /root/.tool/t
    cache:
      key: deps-$(codebuild-hash-files lock.txt)
      fallback-keys: [deps-]
      paths: ['deps/**/*', '/root/.tool/**/*']
    """


def test_local_cache_key_then_fallback_key(tmp_path, images):
    cache = tmp_path / "cache"

    def build(lock: str, stamp: str) -> str:
        case = Case("cache", CACHE_SPEC, "SUCCEEDED", files={"lock.txt": lock}, env={"STAMP": stamp})
        src = tmp_path / "src"
        src.mkdir(exist_ok=True)
        (src / "buildspec.yml").write_text(textwrap.dedent(case.buildspec).lstrip())
        (src / "lock.txt").write_text(lock)
        options = local_build.LocalBuildOptions(source_dir=src, env=case.env, cache_dir=cache)
        spec, _ = local_build.prepare(options)
        log: list[str] = []
        result = local_build.run(options, spec, log.append, lambda r: None, DockerEngine(installation=str(tmp_path), api_version=CLI_API_VERSION))
        assert result.status == "SUCCEEDED", "".join(log)
        return "".join(log)

    assert "restored=none" in build("v1", "first")
    assert "restored=first" in build("v1", "second")  # exact key
    log = build("v2", "third")  # new key: found through the fallback prefix deps-
    assert "restored=second" in log and "restored from key deps-" in log


def _batch(tmp_path, buildspec: str, files: dict[str, str]):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "buildspec.yml").write_text(textwrap.dedent(buildspec).lstrip())
    for name, text in files.items():
        (src / name).write_text(textwrap.dedent(text).lstrip())
    options = local_build.LocalBuildOptions(source_dir=src)
    spec, _ = local_build.prepare(options)
    log: list[str] = []
    results = local_build.run_batch(options, spec, log.append, lambda r: None, DockerEngine(installation=str(tmp_path), api_version=CLI_API_VERSION))
    return {r.identifier: r for r in results}, "".join(log)


def test_batch_graph_dependency_failure_and_own_buildspec(tmp_path, images):
    results, log = _batch(tmp_path, """
        version: 0.2
        batch:
          build-graph:
            - identifier: compile
              env:
                variables: {STEP: compile}
            - identifier: test
              buildspec: fail.yml
              depend-on: [compile]
            - identifier: publish
              depend-on: [test]
        phases:
          build:
            commands:
              - echo "step=$STEP"
        """, {"fail.yml": """
        version: 0.2
        phases:
          build:
            commands:
              - echo from-fail-yml && false
        """})
    assert results["compile"].status == "SUCCEEDED" and "step=compile" in log
    assert results["test"].status == "FAILED" and "from-fail-yml" in log
    assert results["publish"].status == "STOPPED" and "test" in results["publish"].message
    assert local_build.batch_status(list(results.values())) == "FAILED"


def test_batch_builds_without_dependencies_run_together_and_dependents_after(tmp_path, images):
    results, log = _batch(tmp_path, """
        version: 0.2
        batch:
          build-graph:
            - identifier: left
            - identifier: right
            - identifier: join
              depend-on: [left, right]
        phases:
          build:
            commands:
              - echo "began $(date +%s.%N)"
              - sleep 3
              - echo "ended $(date +%s.%N)"
        """, {})
    assert all(r.status == "SUCCEEDED" for r in results.values())
    times = {}
    for line in log.splitlines():  # lines of builds running together carry the build's identifier
        identifier, sep, rest = line.partition(" | ")
        if sep and rest.startswith(("began ", "ended ")):
            times[identifier, rest.split()[0]] = float(rest.split()[1])
    assert times["right", "began"] < times["left", "ended"] and times["left", "began"] < times["right", "ended"]
    assert times["join", "began"] > max(times["left", "ended"], times["right", "ended"])


def test_batch_fast_fail_stops_the_running_build_and_starts_no_more(tmp_path, images):
    results, log = _batch(tmp_path, """
        version: 0.2
        batch:
          fast-fail: true
          build-graph:
            - identifier: breaks
              env:
                variables: {MODE: break}
            - identifier: slow
            - identifier: after
              depend-on: [slow]
        phases:
          build:
            commands:
              - if [ "$MODE" = break ]; then sleep 1; exit 7; fi
              - sleep 60
        """, {})
    assert results["breaks"].status == "FAILED"
    assert results["slow"].status == "STOPPED" and "fast-fail" in results["slow"].message
    assert [p.status for p in results["slow"].result.phases] == ["STOPPED"]
    assert results["after"].status == "STOPPED" and results["after"].result is None


def test_batch_matrix_runs_each_combination(tmp_path, images):
    results, log = _batch(tmp_path, """
        version: 0.2
        batch:
          build-matrix:
            dynamic:
              env:
                variables:
                  FLAVOUR: [plain, fancy]
        phases:
          build:
            commands:
              - echo "flavour=$FLAVOUR"
        """, {})
    assert sorted(results) == ["fancy", "plain"]
    assert all(r.status == "SUCCEEDED" for r in results.values())
    assert "flavour=plain" in log and "flavour=fancy" in log


def test_runtime_versions_from_a_pack_and_the_image(tmp_path, images):
    """nodejs 20 comes from a pack (fetched once into ~/.pipelocal/data/runtimes), python 3.11 from the image."""
    case = Case("runtimes", """
        version: 0.2
        phases:
          install:
            runtime-versions:
              nodejs: 20.x
              python: 3.11
          build:
            commands:
              - echo "node=$(node --version) npm=$(npm --version) py=$(python3 --version)"
        """, "SUCCEEDED")
    result, log = _run(tmp_path, case)
    assert result.status == "SUCCEEDED", log
    assert "node=v20." in log and "py=Python 3.11" in log


def test_java_corretto17_compiles_with_javac_from_the_image(tmp_path, images):
    case = Case("java", """
        version: 0.2
        phases:
          install:
            runtime-versions:
              java: corretto17
          build:
            commands:
              - javac -version
              - javac -d out Hello.java
              - java -cp out Hello
              - echo "home=$JAVA_HOME"
        """, "SUCCEEDED", files={"Hello.java": 'class Hello { public static void main(String[] a) { '
                                                'System.out.println("hello from " + Runtime.version().feature()); } }\n'})
    result, log = _run(tmp_path, case)
    assert result.status == "SUCCEEDED", log
    assert "javac 17." in log and "hello from 17" in log and "home=/usr/lib/jvm/java-17-openjdk-amd64" in log


def test_python_313_and_java_21_from_debian_packs(tmp_path, images):
    """Both come from Debian trixie packages (made once): pip installs as root into the container,
    venvs get their own pip, javac compiles and java starts child processes."""
    case = Case("debian-packs", """
        version: 0.2
        phases:
          install:
            runtime-versions:
              python: 3.13
              java: corretto21
          build:
            commands:
              - echo "py=$(python --version) py3=$(python3 --version) pip=$(pip --version | cut -d' ' -f1-2)"
              - python -m venv /tmp/venv && /tmp/venv/bin/python -c "import sys, ssl, sqlite3; print('venv', sys.version_info[:2])"
              - pip install --no-index --no-build-isolation ./hello-pkg
              - python -c "import hello; print('imported', hello.__name__)"
              - javac -version
              - javac -d out Hello.java && java -cp out Hello
              - echo "home=$JAVA_HOME"
              - aws --version
        """, "SUCCEEDED", files={
        "Hello.java": 'class Hello { public static void main(String[] a) throws Exception {\n'
                      '  new ProcessBuilder("echo", "child ran").inheritIO().start().waitFor();\n'
                      '  System.out.println("hello from " + Runtime.version().feature()); } }\n',
        "hello-pkg/setup.py": "from setuptools import setup\nsetup(name='hello', version='1.0', py_modules=['hello'])\n",
        "hello-pkg/hello.py": "VALUE = 1\n",
    })
    result, log = _run(tmp_path, case)
    assert result.status == "SUCCEEDED", log
    assert "py=Python 3.13." in log and "py3=Python 3.13." in log and "pip=pip 2" in log
    assert "venv (3, 13)" in log and "imported hello" in log
    assert "javac 21." in log and "child ran" in log and "hello from 21" in log
    assert "home=/opt/pipelocal-runtimes/java-corretto21/usr/lib/jvm/java-21-openjdk-amd64" in log
    assert "aws-cli/" in log


def test_shell_on_failure_pauses_with_the_build_environment(tmp_path, images):
    """The pause comes at the failed command, with the shell's variables and directory; the build
    goes on (and fails) after it. The interactive shell itself is replaced by a command here."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "buildspec.yml").write_text(textwrap.dedent("""
        version: 0.2
        phases:
          build:
            commands:
              - export STATE=kept && mkdir -p deeper && cd deeper
              - "false"
            finally:
              - echo "after=$(cat /tmp/probe)"
        """).lstrip())
    options = local_build.LocalBuildOptions(source_dir=src, shell_on_failure=True)
    spec, _ = local_build.prepare(options)
    engine = DockerEngine(installation=str(tmp_path), api_version=CLI_API_VERSION)
    seen: list[dict] = []

    def probe(event: dict, container: str) -> None:
        seen.append(event)
        script = f'. {event["env_file"]}; cd "$(cat {event["cwd_file"]})"; echo "$STATE $(pwd)" > /tmp/probe'
        assert engine.exec(container, ["bash", "-c", script]) == 0

    log: list[str] = []
    result = local_build.run(options, spec, log.append, lambda r: None, engine, on_pause=probe)
    text = "".join(log)
    assert [e["command"] for e in seen] == ["false"]
    assert result.status == "FAILED"
    assert "after=kept /codebuild/output/src1/src/deeper" in text, text


def test_bind_source_mode_builds_in_the_directory_itself(tmp_path, images):
    src = tmp_path / "src"
    src.mkdir()
    (src / "input.txt").write_text("from-host")
    (src / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    commands:\n"
                                       "      - cat input.txt\n      - echo written-in-container > output.txt\n")
    options = local_build.LocalBuildOptions(source_dir=src, source_mode="bind")
    spec, _ = local_build.prepare(options)
    log: list[str] = []
    result = local_build.run(options, spec, log.append, lambda r: None, DockerEngine(installation=str(tmp_path), api_version=CLI_API_VERSION))
    assert result.status == "SUCCEEDED" and "from-host" in "".join(log)
    assert (src / "output.txt").read_text() == "written-in-container\n"


@pytest.mark.parametrize("command,code,table_row,module", [
    ("echo fine", 0, "PASS", "emulator.cli.main"),  # the full CLI
    ("exit 4", 1, "FAIL", "emulator.cli.entry"),  # the installed `pipelocal` command's fast path
])
def test_cli_exit_code_and_phase_table(command, code, table_row, module, tmp_path, images):
    import os
    import subprocess
    import sys

    src = tmp_path / "src"
    src.mkdir()
    (src / "buildspec.yml").write_text(f"version: 0.2\nphases:\n  build:\n    commands:\n      - {command}\n")
    done = subprocess.run([sys.executable, "-m", module, "build", "--source", str(src)],
                          capture_output=True, text=True, env={**os.environ, "PIPELOCAL_HOME": str(tmp_path / "home")})
    assert done.returncode == code, done.stdout + done.stderr
    row = next(line for line in done.stdout.splitlines() if "BUILD" in line and ("PASS" in line or "FAIL" in line))
    assert table_row in row
    assert f"Running command {command}" in done.stdout


def test_cli_refuses_bad_buildspec_with_exit_2(tmp_path):
    import os
    import subprocess
    import sys

    src = tmp_path / "src"
    src.mkdir()
    (src / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    on-failure: SOMETIMES\n    commands:\n      - x\n")
    done = subprocess.run([sys.executable, "-m", "emulator.cli.main", "build", "--source", str(src)],
                          capture_output=True, text=True, env={**os.environ, "PIPELOCAL_HOME": str(tmp_path / "home")})
    assert done.returncode == 2
    assert "buildspec.yml:4: phases.build.on-failure" in done.stdout.replace("\n", "")
