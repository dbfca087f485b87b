from __future__ import annotations

from pathlib import Path

import pytest

from emulator.domain.buildspec import RuntimeVersion, parse_buildspec, plan_phases
from emulator.domain.errors import SpecError
from runners.on_failure import OnFailure, parse_on_failure

SEED = Path("/work/shared/seed/aws-devops-pipeline.txt")


def seed_buildspec() -> str:
    text = SEED.read_text()
    return text[text.index("version: 0.2") : text.index("When a developer")]


def test_seed_buildspec_parses():
    spec = parse_buildspec(seed_buildspec())
    assert spec.version == "0.2"
    assert list(spec.phases) == ["install", "build", "post_build"]
    assert spec.runtime_versions == (RuntimeVersion("nodejs", "18", 6),)
    install = spec.phases["install"]
    assert [(c.text, c.line) for c in install.commands] == [("echo Installing dependencies...", 8), ("npm install", 9)]
    assert [c.text for c in spec.phases["build"].commands][1] == "npm test"
    assert spec.phases["post_build"].commands[-1].text == "aws s3 sync ./dist s3://my-app-build-artifacts/latest/"
    assert spec.phases["post_build"].commands[-1].line == 19
    plan = plan_phases(spec)
    assert [p.name for p in plan] == ["INSTALL", "BUILD", "POST_BUILD"]
    assert plan[1].commands[1].text == "npm test" and plan[1].commands[1].line == 13


FULL = """\
version: 0.2
run-as: builder
env:
  shell: bash
  variables:
    PYTHON: 3.10
    MODE: "0755"
    EMPTY: ""
  parameter-store:
    DB: /prod/db
  secrets-manager:
    TOKEN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:tok-AbC:token:AWSCURRENT"
    OTHER: "TestSecret:MY_SECRET_VAR"
  exported-variables:
    - VERSION
  git-credential-helper: yes
proxy:
  upload-artifacts: no
  logs: true
batch:
  fast-fail: false
  build-graph:
    - identifier: a
    - identifier: b
      depend-on: [a]
      env:
        privileged-mode: yes
        variables: {X: "1"}
phases:
  install:
    runtime-versions:
      python: 3.10
    commands:
      - 42
  pre_build:
    run-as: root
    on-failure: CONTINUE
    commands:
      - echo pre
  build:
    on-failure: RETRY-8-invalid+
    commands:
      - make
    finally:
      - echo done
  post_build:
    commands:
      - echo post
reports:
  unit:
    files: ["**/*.xml"]
    file-format: junitxml
artifacts:
  files:
    - '**/*'
  base-directory: dist
  discard-paths: no
  exclude-paths: ["**/.*"]
  secondary-artifacts:
    extra:
      files: [a.txt]
cache:
  key: npm-$(codebuild-hash-files package-lock.json)
  fallback-keys: [npm-]
  action: restore
  paths:
    - node_modules/**/*
"""


def test_full_syntax_parses():
    spec = parse_buildspec(FULL)
    assert spec.run_as == "builder"
    assert spec.env.variables == {"PYTHON": "3.10", "MODE": "0755", "EMPTY": ""}
    assert spec.env.secrets_manager["TOKEN"].secret_id == "arn:aws:secretsmanager:us-east-1:123456789012:secret:tok-AbC"
    assert spec.env.secrets_manager["TOKEN"].json_key == "token"
    assert spec.env.secrets_manager["OTHER"].json_key == "MY_SECRET_VAR"
    assert spec.env.git_credential_helper is True and spec.proxy.logs is True and spec.proxy.upload_artifacts is False
    assert spec.batch and [t.identifier for t in spec.batch.build_graph] == ["a", "b"]
    assert spec.batch.build_graph[1].env.privileged_mode is True
    assert spec.runtime_versions[0].version == "3.10"
    assert spec.phases["install"].commands[0].text == "42"
    assert spec.phases["build"].on_failure == OnFailure("RETRY", 8, "invalid+")
    assert spec.reports["unit"].file_format == "JUNITXML"
    assert spec.artifacts.base_directory == "dist" and spec.artifacts.exclude_paths == ("**/.*",)
    assert spec.artifacts.secondary_artifacts["extra"].files == ("a.txt",)
    assert spec.cache.fallback_keys == ("npm-",) and spec.cache.action == "restore"
    plan = plan_phases(spec)
    assert [(p.name, p.run_as, p.on_failure) for p in plan] == [
        ("INSTALL", "builder", None),
        ("PRE_BUILD", "root", "CONTINUE"),
        ("BUILD", "builder", "RETRY-8-invalid+"),
        ("POST_BUILD", "builder", None),
    ]
    assert [c.text for c in plan[2].finally_commands] == ["echo done"]


BAD = [
    ("unknown top-level key", "version: 0.2\nphases:\n  build:\n    commands: [make]\nartifact:\n  files: [a]\n", "artifact", 5),
    ("build without commands", "version: 0.2\nphases:\n  install:\n    commands: [a]\n  build:\n    finally: [b]\n", "phases.build.commands", 5),
    ("bad on-failure", "version: 0.2\nphases:\n  build:\n    on-failure: IGNORE\n    commands: [make]\n", "phases.build.on-failure", 4),
    ("retry count above 100", "version: 0.2\nphases:\n  build:\n    on-failure: RETRY-101\n    commands: [make]\n", "phases.build.on-failure", 4),
    ("commands as a string", "version: 0.2\nphases:\n  build:\n    commands: make all\n", "phases.build.commands", 4),
    ("command with colon", "version: 0.2\nphases:\n  build:\n    commands:\n      - echo a: b\n", "phases.build.commands[0]", 5),
    ("CODEBUILD_ variable", "version: 0.2\nenv:\n  variables:\n    OK: 1\n    CODEBUILD_X: y\nphases:\n  build:\n    commands: [make]\n", "env.variables.CODEBUILD_X", 5),
    ("version missing", "phases:\n  build:\n    commands: [make]\n", "version", 1),
    ("bad version", "version: 0.3\nphases:\n  build:\n    commands: [make]\n", "version", 1),
    ("phases missing", "version: 0.2\nenv:\n  shell: bash\n", "phases", 1),
    ("yaml syntax error", "version: 0.2\nphases:\n  build:\n    commands:\n      - make\n     bad: indent\n", "(syntax)", 6),
    ("secondary artifact without files", "version: 0.2\nphases:\n  build:\n    commands: [make]\nartifacts:\n  files: [a]\n  secondary-artifacts:\n    extra:\n      name: x\n", "artifacts.secondary-artifacts.extra.files", 9),
    ("cache without paths", "version: 0.2\nphases:\n  build:\n    commands: [make]\ncache:\n  key: k\n", "cache.paths", 6),
    ("fallback-keys above 5", "version: 0.2\nphases:\n  build:\n    commands: [make]\ncache:\n  paths: [x]\n  fallback-keys: [a, b, c, d, e, f]\n", "cache.fallback-keys", 7),
    ("runtime-versions outside install", "version: 0.2\nphases:\n  build:\n    runtime-versions:\n      nodejs: 18\n    commands: [make]\n", "phases.build.runtime-versions", 4),
    ("unknown phase key", "version: 0.2\nphases:\n  build:\n    comands: [make]\n    commands: [make]\n", "phases.build.comands", 4),
    ("bad yes/no", "version: 0.2\nphases:\n  build:\n    commands: [make]\nartifacts:\n  files: [a]\n  discard-paths: maybe\n", "artifacts.discard-paths", 7),
    ("bad cache action", "version: 0.2\nphases:\n  build:\n    commands: [make]\ncache:\n  paths: [x]\n  action: both\n", "cache.action", 7),
    ("exported AWS_ variable", "version: 0.2\nenv:\n  exported-variables:\n    - AWS_REGION\nphases:\n  build:\n    commands: [make]\n", "env.exported-variables[0]", 4),
    ("artifacts without files", "version: 0.2\nphases:\n  build:\n    commands: [make]\nartifacts:\n  name: x\n", "artifacts.files", 6),
    ("build-graph unknown dependency", "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n      depend-on: [zz]\nphases:\n  build:\n    commands: [make]\n", "batch.build-graph[0].depend-on", 5),
    ("build-list item without identifier", "version: 0.2\nbatch:\n  build-list:\n    - buildspec: x.yml\nphases:\n  build:\n    commands: [make]\n", "batch.build-list[0].identifier", 4),
    ("bad report format", "version: 0.2\nphases:\n  build:\n    commands: [make]\nreports:\n  r:\n    files: [a]\n    file-format: XML\n", "reports.r.file-format", 8),
    ("windows shell", "version: 0.2\nenv:\n  shell: cmd.exe\nphases:\n  build:\n    commands: [make]\n", "env.shell", 3),
]


@pytest.mark.parametrize(("case", "text", "key", "line"), BAD, ids=[b[0] for b in BAD])
def test_bad_buildspec_names_key_and_line(case, text, key, line):
    with pytest.raises(SpecError) as caught:
        parse_buildspec(text, file="buildspec.yml")
    err = caught.value
    assert (err.file, err.key, err.line) == ("buildspec.yml", key, line), str(err)
    assert err.expected
    assert str(err).startswith(f"buildspec.yml:{line}: {key}: ")


@pytest.mark.parametrize("word", ["yes", "no", "true", "false", "Yes", "FALSE"])
def test_yes_no_words(word):
    spec = parse_buildspec(f"version: 0.2\nphases:\n  build:\n    commands: [make]\nartifacts:\n  files: [a]\n  discard-paths: {word}\n")
    assert spec.artifacts.discard_paths is (word.lower() in ("yes", "true"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ABORT", OnFailure("ABORT")),
        ("CONTINUE", OnFailure("CONTINUE")),
        ("RETRY", OnFailure("RETRY", 3, ".*")),
        ("RETRY-4", OnFailure("RETRY", 4, ".*")),
        ("RETRY-0", OnFailure("RETRY", 0, ".*")),
        ("RETRY-100", OnFailure("RETRY", 100, ".*")),
        ("RETRY-invalid+", OnFailure("RETRY", 3, "invalid+")),
        ("RETRY-8-invalid+", OnFailure("RETRY", 8, "invalid+")),
        ("RETRY-2-a-b", OnFailure("RETRY", 2, "a-b")),
    ],
)
def test_on_failure_forms(value, expected):
    assert parse_on_failure(value) == expected
    spec = parse_buildspec(f"version: 0.2\nphases:\n  build:\n    on-failure: {value}\n    commands: [make]\n")
    assert spec.phases["build"].on_failure == expected


@pytest.mark.parametrize("value", ["RETRY-", "RETRY-101", "RETRY-(", "retry", "STOP"])
def test_bad_on_failure(value):
    with pytest.raises(ValueError):
        parse_on_failure(value)


def test_retry_regex_matching():
    policy = parse_on_failure("RETRY-2-net(work)?")
    assert policy.retries_on("flaky network")
    assert not policy.retries_on("disk full")
    assert parse_on_failure("RETRY").retries_on("")


def test_install_may_omit_commands_and_version_0_1_is_accepted():
    spec = parse_buildspec("version: 0.1\nphases:\n  install:\n    runtime-versions:\n      nodejs: latest\n")
    assert spec.version == "0.1"
    assert spec.phases["install"].commands == ()
    assert plan_phases(spec)[0].name == "INSTALL"
