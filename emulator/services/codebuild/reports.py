"""Test and coverage reports (`reports:` in the buildspec): files found, parsed, summarised.

Each report group gets a report document shaped like CodeBuild's BatchGetReports answer
(testSummary {total, statusCounts, durationInNanoSeconds} or codeCoverageSummary), plus its
test cases. Formats are read with the standard library; a file that does not parse makes the
report FAILED with the file named, never the control plane.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from emulator.domain.artifact_selection import NoArtifactsMatched, select_artifacts

TEST_FORMATS = ("JUNITXML", "NUNITXML", "NUNIT3XML", "TESTNGXML", "VISUALSTUDIOTRX", "CUCUMBERJSON")
COVERAGE_FORMATS = ("CLOVERXML", "COBERTURAXML", "JACOCOXML", "SIMPLECOV")
STATUSES = ("SUCCEEDED", "FAILED", "ERROR", "SKIPPED", "UNKNOWN")


def collect_reports(spec, files: dict[str, bytes], project: str, region: str, account: str, build_id: str) -> list[dict]:
    reports = []
    for name, report in spec.reports.items():
        group = name if name.startswith("arn:") else f"arn:aws:codebuild:{region}:{account}:report-group/{project}-{name}"
        doc: dict = {"name": name, "reportGroupArn": group, "arn": f"{group}:{build_id.split(':', 1)[1]}",
                     "type": "CODE_COVERAGE" if report.file_format in COVERAGE_FORMATS else "TEST",
                     "fileFormat": report.file_format, "executionId": build_id, "status": "SUCCEEDED",
                     "files": []}
        try:
            pairs = select_artifacts(sorted(files), files=list(report.files), base_directory=report.base_directory,
                                     discard_paths=report.discard_paths, exclude_paths=[])
        except NoArtifactsMatched:
            pairs = []
        cases: list[dict] = []
        coverage: dict[str, float] = {}
        for source, _ in pairs:
            doc["files"].append(source)
            try:
                if doc["type"] == "TEST":
                    cases.extend(parse_test_file(files[source], report.file_format, source))
                else:
                    _merge_coverage(coverage, parse_coverage_file(files[source], report.file_format))
            except (ET.ParseError, ValueError, KeyError, TypeError) as exc:
                doc["status"] = "FAILED"
                doc.setdefault("statusMessages", []).append(f"{source}: not valid {report.file_format}: {exc}")
        if not pairs:
            doc["status"] = "FAILED"
            doc["statusMessages"] = [f"no report files matched {list(report.files)}"]
        if doc["type"] == "TEST":
            counts = {s: sum(1 for c in cases if c["status"] == s) for s in STATUSES}
            doc["testSummary"] = {"total": len(cases), "statusCounts": counts,
                                  "durationInNanoSeconds": int(sum(c["durationInNanoSeconds"] for c in cases))}
            doc["testCases"] = cases
            if counts["FAILED"] or counts["ERROR"]:
                doc["status"] = "FAILED"
        else:
            doc["codeCoverageSummary"] = coverage
        reports.append(doc)
    return reports


def parse_test_file(data: bytes, file_format: str, path: str = "") -> list[dict]:
    if file_format == "CUCUMBERJSON":
        return _cucumber(json.loads(data), path)
    root = ET.fromstring(data)
    parser = {"JUNITXML": _junit, "NUNITXML": _nunit, "NUNIT3XML": _nunit, "TESTNGXML": _testng,
              "VISUALSTUDIOTRX": _trx}[file_format]
    return parser(root, path)


def _case(name: str, prefix: str, status: str, seconds: float, message: str | None, path: str) -> dict:
    return {"name": name, "prefix": prefix, "status": status, "durationInNanoSeconds": int(seconds * 1e9),
            "message": message, "testRawDataPath": path}


def _seconds(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _junit(root: ET.Element, path: str) -> list[dict]:
    cases = []
    for case in root.iter("testcase"):
        status, message = "SUCCEEDED", None
        for child in case:
            tag = child.tag
            if tag in ("failure", "error", "skipped"):
                status = {"failure": "FAILED", "error": "ERROR", "skipped": "SKIPPED"}[tag]
                message = child.get("message") or (child.text or "").strip() or None
                break
        cases.append(_case(case.get("name", ""), case.get("classname", ""), status, _seconds(case.get("time")),
                           message, path))
    return cases


def _nunit(root: ET.Element, path: str) -> list[dict]:
    cases = []
    for case in root.iter("test-case"):
        result = (case.get("result") or case.get("outcome") or "").lower()
        status = {"passed": "SUCCEEDED", "success": "SUCCEEDED", "failed": "FAILED", "failure": "FAILED",
                  "error": "ERROR", "skipped": "SKIPPED", "ignored": "SKIPPED", "inconclusive": "UNKNOWN"}.get(result)
        if status is None:
            status = "SUCCEEDED" if case.get("success") == "True" else "UNKNOWN"
        message = case.findtext("failure/message")
        cases.append(_case(case.get("fullname") or case.get("name", ""), case.get("classname", ""), status,
                           _seconds(case.get("duration") or case.get("time")), message, path))
    return cases


def _testng(root: ET.Element, path: str) -> list[dict]:
    cases = []
    for cls in root.iter("class"):
        for method in cls.iter("test-method"):
            if method.get("is-config") == "true":
                continue
            status = {"PASS": "SUCCEEDED", "FAIL": "FAILED", "SKIP": "SKIPPED"}.get(method.get("status", ""), "UNKNOWN")
            cases.append(_case(method.get("name", ""), cls.get("name", ""), status,
                               _seconds(method.get("duration-ms")) / 1000, method.findtext("exception/message"), path))
    return cases


def _trx(root: ET.Element, path: str) -> list[dict]:
    cases = []
    for result in root.iter():
        if _local(result.tag) != "UnitTestResult":
            continue
        outcome = result.get("outcome", "")
        status = {"Passed": "SUCCEEDED", "Failed": "FAILED", "NotExecuted": "SKIPPED", "Error": "ERROR"}.get(outcome, "UNKNOWN")
        duration = result.get("duration", "0:0:0")
        h, m, s = (duration.split(":") + ["0", "0"])[:3]
        seconds = int(h or 0) * 3600 + int(m or 0) * 60 + _seconds(s)
        message = next((e.text for e in result.iter() if _local(e.tag) == "Message"), None)
        cases.append(_case(result.get("testName", ""), "", status, seconds, message, path))
    return cases


def _cucumber(features: list, path: str) -> list[dict]:
    cases = []
    for feature in features:
        for element in feature.get("elements", []):
            steps = [s.get("result", {}) for s in element.get("steps", [])]
            states = [r.get("status", "") for r in steps]
            status = "FAILED" if "failed" in states else "SKIPPED" if states and all(
                s in ("skipped", "pending", "undefined") for s in states) else "SUCCEEDED"
            message = next((r.get("error_message") for r in steps if r.get("error_message")), None)
            cases.append(_case(element.get("name", ""), feature.get("name", ""), status,
                               sum(r.get("duration", 0) for r in steps) / 1e9, message, path))
    return cases


def parse_coverage_file(data: bytes, file_format: str) -> dict[str, float]:
    """Line and branch counts: {linesCovered, linesMissed, branchesCovered, branchesMissed}."""
    if file_format == "SIMPLECOV":
        doc = json.loads(data)
        lines = doc.get("metrics", {})
        covered, total = lines.get("covered_lines"), lines.get("total_lines")
        if covered is None:  # .resultset.json: per-file arrays of hit counts
            hits = [h for run in doc.values() for f in run.get("coverage", {}).values()
                    for h in (f.get("lines", f) if isinstance(f, dict) else f) if h is not None]
            covered, total = sum(1 for h in hits if h), len(hits)
        return {"linesCovered": covered, "linesMissed": total - covered, "branchesCovered": 0, "branchesMissed": 0}
    root = ET.fromstring(data)
    if file_format == "COBERTURAXML":
        lines = [ln for ln in root.iter("line")]
        covered = sum(1 for ln in lines if int(ln.get("hits", "0")) > 0)
        bc = bm = 0
        for ln in lines:
            cond = ln.get("condition-coverage")  # "50% (1/2)"
            if cond and "(" in cond:
                got, total = cond.split("(")[1].rstrip(")").split("/")
                bc, bm = bc + int(got), bm + int(total) - int(got)
        return {"linesCovered": covered, "linesMissed": len(lines) - covered, "branchesCovered": bc, "branchesMissed": bm}
    if file_format == "JACOCOXML":
        result = {"linesCovered": 0, "linesMissed": 0, "branchesCovered": 0, "branchesMissed": 0}
        for counter in root.findall("counter"):
            kind = {"LINE": "lines", "BRANCH": "branches"}.get(counter.get("type", ""))
            if kind:
                result[f"{kind}Covered"] += int(counter.get("covered", 0))
                result[f"{kind}Missed"] += int(counter.get("missed", 0))
        return result
    if file_format == "CLOVERXML":
        metrics = root.find("project/metrics")
        if metrics is None:
            raise ValueError("no project/metrics element")
        statements, covered = int(metrics.get("statements", 0)), int(metrics.get("coveredstatements", 0))
        cond, ccov = int(metrics.get("conditionals", 0)), int(metrics.get("coveredconditionals", 0))
        return {"linesCovered": covered, "linesMissed": statements - covered, "branchesCovered": ccov,
                "branchesMissed": cond - ccov}
    raise ValueError(f"unknown coverage format {file_format}")


def _merge_coverage(total: dict[str, float], part: dict[str, float]) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0) + value
    lines = total.get("linesCovered", 0) + total.get("linesMissed", 0)
    branches = total.get("branchesCovered", 0) + total.get("branchesMissed", 0)
    total["lineCoveragePercentage"] = round(100 * total.get("linesCovered", 0) / lines, 2) if lines else 0.0
    total["branchCoveragePercentage"] = round(100 * total.get("branchesCovered", 0) / branches, 2) if branches else 0.0
