"""YAML loading that remembers the line of every key and list item."""

from __future__ import annotations

import textwrap

import pytest

from emulator.domain import located_yaml
from emulator.domain.errors import SpecError
from emulator.domain.located_yaml import LocatedDict, LocatedList, line_of

DOC = textwrap.dedent("""\
    # a comment
    version: 0.2

    phases:
      install:
        commands:
          - echo one
          - echo two

          - echo three
      build:
        commands: [make, test]
    env:
      variables: {A: "1", B: "2"}
""")


def test_mappings_and_lists_are_located_types():
    doc = located_yaml.load(DOC, "buildspec.yml")
    assert isinstance(doc, LocatedDict)
    assert isinstance(doc["phases"], LocatedDict)
    assert isinstance(doc["phases"]["install"]["commands"], LocatedList)
    assert doc == {
        "version": 0.2,
        "phases": {"install": {"commands": ["echo one", "echo two", "echo three"]},
                   "build": {"commands": ["make", "test"]}},
        "env": {"variables": {"A": "1", "B": "2"}},
    }


def test_line_numbers_of_keys():
    doc = located_yaml.load(DOC, "buildspec.yml")
    assert doc.line_of("version") == 2
    assert doc.line_of("phases") == 4
    assert doc.line_of("env") == 13
    assert doc["phases"].line_of("install") == 5
    assert doc["phases"].line_of("build") == 11
    assert doc["env"]["variables"].line_of("B") == 14
    assert line_of(doc["phases"], "build") == 11


def test_line_numbers_of_list_items():
    doc = located_yaml.load(DOC, "buildspec.yml")
    commands = doc["phases"]["install"]["commands"]
    assert [commands.line_of(i) for i in range(3)] == [7, 8, 10]
    assert line_of(commands, 2) == 10
    flow = doc["phases"]["build"]["commands"]
    assert [flow.line_of(i) for i in range(2)] == [12, 12]


def test_unknown_key_or_index_falls_back_to_the_container_line():
    doc = located_yaml.load(DOC, "buildspec.yml")
    phases = doc["phases"]
    assert phases.line_of("missing") == phases.line == 5
    commands = phases["install"]["commands"]
    assert commands.line_of(99) == commands.line == 7
    assert line_of(commands, "not-an-index") == commands.line


def test_line_of_plain_values():
    assert line_of({"a": 1}, "a") is None
    assert line_of("text", 0) is None


@pytest.mark.parametrize("word", ["yes", "on", "no", "off", "Yes", "ON", "true", "False"])
def test_yes_on_keys_are_kept_as_words(word):
    doc = located_yaml.load(f"hooks:\n  {word}: value\n", "f.yml")
    assert doc["hooks"] == {word: "value"}
    assert doc["hooks"].line_of(word) == 2


def test_boolean_values_are_still_booleans():
    doc = located_yaml.load("a: yes\nb: off\nc: 'yes'\n", "f.yml")
    assert doc == {"a": True, "b": False, "c": "yes"}


def test_numeric_and_null_keys_are_accepted():
    doc = located_yaml.load("1: one\n2.5: x\n~: nothing\n", "f.yml")
    assert doc[1] == "one"
    assert doc[2.5] == "x"
    assert doc[None] == "nothing"


def test_complex_keys_are_refused_with_line():
    with pytest.raises(SpecError) as info:
        located_yaml.load("ok: 1\n? [a, b]\n: value\n", "f.yml")
    assert info.value.line == 2
    assert info.value.file == "f.yml"


def test_merge_keys_are_flattened():
    text = "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n"
    doc = located_yaml.load(text, "f.yml")
    assert doc["derived"] == {"x": 1, "y": 3}


@pytest.mark.parametrize("text,line", [
    ("a: 1\nb: [1, 2\nc: 3\n", 3),
    ("a:\n  - x\n - y\n", 3),
    ("a: 1\n  b: 2\n", 2),
    ("a: 'unterminated\n", 2),
])
def test_syntax_error_becomes_spec_error_with_line(text, line):
    with pytest.raises(SpecError) as info:
        located_yaml.load(text, "appspec.yml")
    err = info.value
    assert err.file == "appspec.yml"
    assert err.key == "(syntax)"
    assert err.line == line
    assert str(err).startswith(f"appspec.yml:{line}: (syntax): valid YAML")


def test_unsafe_tags_are_refused():
    with pytest.raises(SpecError):
        located_yaml.load("a: !!python/object/apply:os.system ['true']\n", "f.yml")


def test_empty_document_is_none():
    assert located_yaml.load("", "f.yml") is None
    assert located_yaml.load("# only a comment\n", "f.yml") is None
