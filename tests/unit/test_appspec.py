"""appspec.yml parsing, refusals that name file/line/key, and checks against the bundle."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from emulator import contracts
from emulator.domain import appspec
from emulator.domain.errors import SpecError

SEED = Path("/work/shared/seed/aws-devops-pipeline.txt")


def seed_appspec() -> str:
    if SEED.exists():
        text = SEED.read_text()
        start = text.index("version: 0.0")
        return text[start : text.index("This appspec.yml", start)]
    return textwrap.dedent(
        """\
        version: 0.0
        os: linux
        files:
          - source: /latest/index.html
            destination: /var/www/html/
          - source: /latest/app.js
            destination: /var/www/html/
        hooks:
          BeforeInstall:
            - location: scripts/stop_server.sh
              timeout: 300
              runas: root
          AfterInstall:
            - location: scripts/start_server.sh
              timeout: 300
              runas: root
        """
    )


def test_seed_appspec_parses():
    spec = appspec.parse_appspec(seed_appspec())
    assert spec.version == "0.0" and spec.os == "linux"
    assert [(f.source, f.destination) for f in spec.files] == [
        ("/latest/index.html", "/var/www/html/"),
        ("/latest/app.js", "/var/www/html/"),
    ]
    assert set(spec.hooks) == {"BeforeInstall", "AfterInstall"}
    assert appspec.hooks_for(spec, "BeforeInstall") == [
        contracts.HookScript(location="scripts/stop_server.sh", timeout=300, runas="root")
    ]
    assert appspec.hooks_for(spec, "AfterInstall") == [
        contracts.HookScript(location="scripts/start_server.sh", timeout=300, runas="root")
    ]
    assert appspec.hooks_for(spec, "ApplicationStop") == []
    assert appspec.to_file_mappings(spec)[0] == contracts.FileMapping("/latest/index.html", "/var/www/html/")
    assert spec.file_exists_behavior is None


def test_full_syntax_parses():
    spec = appspec.parse_appspec(
        textwrap.dedent(
            """\
            version: 0.0
            os: linux
            files:
              - source: /
                destination: /srv/app
            file_exists_behavior: OVERWRITE
            permissions:
              - object: /srv/app
                pattern: "*.sh"
                except: [keep.sh]
                owner: www-data
                group: www-data
                mode: 0750
                acls:
                  - u:bob:rw
                context:
                  type: httpd_sys_content_t
                type:
                  - file
              - object: /srv/app/data
                mode: 644
            hooks:
              ApplicationStop:
              ValidateService:
                - location: scripts/check.sh
            """
        )
    )
    assert spec.file_exists_behavior == "OVERWRITE"
    first, second = appspec.to_permissions(spec)
    assert first == contracts.PermissionSpec(
        object="/srv/app", pattern="*.sh", except_=["keep.sh"], owner="www-data", group="www-data", mode="0750", type=["file"],
        acls=["u:bob:rw"], context={"type": "httpd_sys_content_t"},
    )
    assert second.mode == "644" and second.type == ["file", "directory"] and second.pattern == "**"
    assert spec.hooks["ApplicationStop"] == []
    assert appspec.hooks_for(spec, "ValidateService")[0].timeout == 3600


def test_custom_events_only_when_allowed():
    text = "version: 0.0\nos: linux\nhooks:\n  Warmup:\n    - location: w.sh\n"
    with pytest.raises(SpecError) as err:
        appspec.parse_appspec(text)
    assert err.value.key == "hooks.Warmup" and err.value.line == 4
    spec = appspec.parse_appspec(text, allowed_custom_events=["Warmup"])
    assert appspec.hooks_for(spec, "Warmup")[0].location == "w.sh"


BASE = "version: 0.0\nos: linux\n"


@pytest.mark.parametrize(
    "text, key, line, expected",
    [
        ("os: linux\n", "version", 1, "0.0"),
        ("version: 1.0\nos: linux\n", "version", 1, "0.0"),
        ("version: 0.0\nos: macos\n", "os", 2, "linux or windows"),
        (BASE + "colour: blue\n", "colour", 3, "one of the keys"),
        (BASE + "files:\n  - source: a\n    destination: relative/dir\n", "files[0].destination", 5, "absolute"),
        (BASE + "files:\n  - destination: /x\n", "files[0].source", 4, "required"),
        (BASE + "files:\n  - source: a\n    destination: /x\n    mode: 7\n", "files[0].mode", 6, "one of the keys"),
        (BASE + "files: {source: a}\n", "files", 3, "a list"),
        (BASE + "file_exists_behavior: CLOBBER\n", "file_exists_behavior", 3, "DISALLOW"),
        (BASE + "permissions:\n  - object: /x\n    mode: 799\n", "permissions[0].mode", 5, "octal"),
        (BASE + "permissions:\n  - object: /x\n    mode: u+x\n", "permissions[0].mode", 5, "octal"),
        (BASE + "permissions:\n  - object: /x\n    type: [socket]\n", "permissions[0].type[0]", 5, "file or directory"),
        (BASE + "permissions:\n  - owner: root\n", "permissions[0].object", 4, "required"),
        (BASE + "hooks:\n  BeforeInstall:\n    - location: a.sh\n      timeout: 3601\n", "hooks.BeforeInstall[0].timeout", 6, "3600"),
        (BASE + "hooks:\n  BeforeInstall:\n    - location: a.sh\n      timeout: soon\n", "hooks.BeforeInstall[0].timeout", 6, "whole number"),
        (BASE + "hooks:\n  BeforeInstall:\n    - location: a.sh\n      timeout: 1.5\n", "hooks.BeforeInstall[0].timeout", 6, "whole number"),
        (BASE + "hooks:\n  BeforeInstall:\n    - timeout: 30\n", "hooks.BeforeInstall[0].location", 5, "required"),
        (BASE + "hooks:\n  BeforeInstall:\n    - location: a.sh\n      user: bob\n", "hooks.BeforeInstall[0].user", 6, "one of the keys"),
        (BASE + "hooks:\n  Install:\n    - location: a.sh\n", "hooks.Install", 4, "run by the agent"),
        (BASE + "hooks:\n  BeforeInstal:\n    - location: a.sh\n", "hooks.BeforeInstal", 4, "lifecycle event name"),
        (BASE + "hooks:\n  BeforeInstall: scripts/a.sh\n", "hooks.BeforeInstall", 4, "a list"),
        (BASE + "hooks: [a]\n", "hooks", 3, "a mapping"),
        (BASE + "files:\n  - source: [a\n", "(syntax)", None, "valid YAML"),
    ],
)
def test_bad_input_names_key_and_line(text, key, line, expected):
    with pytest.raises(SpecError) as err:
        appspec.parse_appspec(text, file="app/appspec.yml")
    e = err.value
    assert e.file == "app/appspec.yml"
    assert e.key == key
    if line is not None:
        assert e.line == line
    else:
        assert e.line
    assert expected in e.expected
    assert str(e).startswith("app/appspec.yml:")


def test_validate_against_bundle():
    spec = appspec.parse_appspec(seed_appspec())
    bundle = {"latest/index.html", "latest/app.js", "scripts/stop_server.sh", "scripts/start_server.sh", "appspec.yml"}
    appspec.validate_against_bundle(spec, bundle)

    with pytest.raises(SpecError) as err:
        appspec.validate_against_bundle(spec, bundle - {"latest/app.js"})
    assert err.value.key == "files[1].source" and err.value.line == 6 and "/latest/app.js" in err.value.expected

    with pytest.raises(SpecError) as err:
        appspec.validate_against_bundle(spec, bundle - {"scripts/start_server.sh"})
    assert err.value.key == "hooks.AfterInstall[0].location" and err.value.line == 14


def test_validate_against_bundle_accepts_directories_and_root():
    spec = appspec.parse_appspec(
        BASE + "files:\n  - source: /\n    destination: /a\n  - source: web\n    destination: /b\n  - source: ./web/static/\n    destination: /c\n"
    )
    appspec.validate_against_bundle(spec, {"./web/static/site.css"})
    with pytest.raises(SpecError) as err:
        appspec.validate_against_bundle(spec, {"other/file"})
    assert err.value.key == "files[1].source"


def test_lifecycle_constants():
    assert appspec.LIFECYCLE_ORDER_IN_PLACE == [
        "ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService",
    ]
    lb = appspec.LIFECYCLE_ORDER_IN_PLACE_WITH_LOAD_BALANCER
    assert lb[:3] == ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
    assert lb[-3:] == ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
    assert lb[3:-3] == appspec.LIFECYCLE_ORDER_IN_PLACE
    assert set(appspec.SCRIPTABLE_EVENTS) == set(lb) - {"DownloadBundle", "Install", "BlockTraffic", "AllowTraffic"}
    assert appspec.LAST_SUCCESSFUL_EVENTS == {"ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"}
