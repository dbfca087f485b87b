"""Report parsing: each documented format to CodeBuild's test and coverage summaries."""

from __future__ import annotations

import json

import pytest

from emulator.domain.buildspec import parse_buildspec
from emulator.services.codebuild.reports import collect_reports, parse_coverage_file, parse_test_file

JUNIT = b"""<testsuites><testsuite name="s">
<testcase classname="a.B" name="passes" time="1.5"/>
<testcase classname="a.B" name="fails"><failure message="boom">trace</failure></testcase>
<testcase classname="a.B" name="errors"><error message="npe"/></testcase>
<testcase classname="a.B" name="skipped"><skipped/></testcase>
</testsuite></testsuites>"""


def test_junit_statuses_and_durations():
    cases = parse_test_file(JUNIT, "JUNITXML")
    assert [c["status"] for c in cases] == ["SUCCEEDED", "FAILED", "ERROR", "SKIPPED"]
    assert cases[0]["durationInNanoSeconds"] == 1_500_000_000 and cases[1]["message"] == "boom"


@pytest.mark.parametrize("fmt,data,expected", [
    ("NUNIT3XML", b'<test-run><test-case fullname="A.x" result="Passed" duration="0.1"/>'
                  b'<test-case fullname="A.y" result="Failed"><failure><message>m</message></failure></test-case></test-run>',
     ["SUCCEEDED", "FAILED"]),
    ("TESTNGXML", b'<testng-results><suite><test><class name="C"><test-method name="a" status="PASS" duration-ms="5"/>'
                  b'<test-method name="b" status="SKIP"/><test-method name="setup" status="PASS" is-config="true"/>'
                  b'</class></test></suite></testng-results>', ["SUCCEEDED", "SKIPPED"]),
    ("VISUALSTUDIOTRX", b'<TestRun xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010"><Results>'
                        b'<UnitTestResult testName="t1" outcome="Passed" duration="00:00:01.5"/>'
                        b'<UnitTestResult testName="t2" outcome="Failed"/></Results></TestRun>', ["SUCCEEDED", "FAILED"]),
    ("CUCUMBERJSON", json.dumps([{"name": "F", "elements": [
        {"name": "ok", "steps": [{"result": {"status": "passed", "duration": 10}}]},
        {"name": "bad", "steps": [{"result": {"status": "failed", "error_message": "x"}}]}]}]).encode(),
     ["SUCCEEDED", "FAILED"]),
])
def test_other_test_formats(fmt, data, expected):
    assert [c["status"] for c in parse_test_file(data, fmt)] == expected


def test_coverage_formats():
    cobertura = b'<coverage><packages><package><classes><class><lines><line number="1" hits="1"/>' \
                b'<line number="2" hits="0" branch="true" condition-coverage="50% (1/2)"/></lines></class>' \
                b'</classes></package></packages></coverage>'
    assert parse_coverage_file(cobertura, "COBERTURAXML") == {
        "linesCovered": 1, "linesMissed": 1, "branchesCovered": 1, "branchesMissed": 1}
    jacoco = b'<report><counter type="LINE" missed="3" covered="7"/><counter type="BRANCH" missed="1" covered="1"/></report>'
    assert parse_coverage_file(jacoco, "JACOCOXML")["linesCovered"] == 7
    clover = b'<coverage><project><metrics statements="10" coveredstatements="4" conditionals="2" coveredconditionals="2"/></project></coverage>'
    assert parse_coverage_file(clover, "CLOVERXML")["linesMissed"] == 6
    simplecov = json.dumps({"metrics": {"covered_lines": 8, "total_lines": 10}}).encode()
    assert parse_coverage_file(simplecov, "SIMPLECOV")["linesMissed"] == 2


def test_collect_reports_summary_and_bad_file():
    spec = parse_buildspec("version: 0.2\nphases:\n  build:\n    commands:\n      - x\nreports:\n"
                           "  unit:\n    files: ['*.xml']\n    base-directory: out\n"
                           "  cov:\n    files: [cov.xml]\n    file-format: COBERTURAXML\n")
    files = {"out/a.xml": JUNIT, "out/broken.xml": b"<not-closed", "cov.xml": b'<coverage><line hits="1"/></coverage>'}
    unit, cov = collect_reports(spec, files, "proj", "us-east-1", "123456789012", "proj:abc")
    assert unit["reportGroupArn"] == "arn:aws:codebuild:us-east-1:123456789012:report-group/proj-unit"
    assert unit["testSummary"]["total"] == 4 and unit["status"] == "FAILED"
    assert any("out/broken.xml" in m for m in unit["statusMessages"])
    assert cov["type"] == "CODE_COVERAGE" and cov["codeCoverageSummary"]["lineCoveragePercentage"] == 100.0


def test_no_report_files_is_a_failed_report():
    spec = parse_buildspec("version: 0.2\nphases:\n  build:\n    commands:\n      - x\nreports:\n  r:\n    files: ['*.xml']\n")
    [report] = collect_reports(spec, {}, "p", "us-east-1", "1", "p:x")
    assert report["status"] == "FAILED" and report["testSummary"]["total"] == 0
