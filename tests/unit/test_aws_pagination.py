"""Pages cut by the protocol layer from botocore's paginator models: limits, tokens and their errors."""

from __future__ import annotations

import json

import pytest

from emulator.api.aws_protocol import AwsProtocol
from emulator.api.pagination import decode_token, encode_token, InvalidToken


class Lists:
    """Providers that return whole lists, as the real ones do."""

    def __init__(self, count: int):
        self.count = count

    def ListPipelines(self, p):
        return {"pipelines": [{"name": f"p{i:03}", "version": 1} for i in range(self.count)]}

    def ListProjects(self, p):
        return {"projects": [f"proj{i:03}" for i in range(self.count)]}

    def ListRepositories(self, p):
        return {"repositories": [{"repositoryName": f"r{i}", "repositoryId": str(i)} for i in range(self.count)]}

    def DescribeAlarms(self, p):
        return {"MetricAlarms": [{"AlarmName": f"a{i:03}"} for i in range(self.count)], "CompositeAlarms": []}

    def GetMetricData(self, p):
        return {"MetricDataResults": [{"Id": f"m{i}"} for i in range(self.count)]}


def protocol(count: int) -> AwsProtocol:
    lists = Lists(count)
    return AwsProtocol({"codepipeline": lists, "codebuild": lists, "codecommit": lists, "cloudwatch": lists})


def call(proto, target, body):
    return proto.handle(target, json.dumps(body).encode())


def walk(proto, target, result_key, token_name="nextToken", limit=None, limit_name="maxResults"):
    """Every page until no token: (pages, items)."""
    pages, items, body = 0, [], {}
    while True:
        if limit:
            body[limit_name] = limit
        status, doc = call(proto, target, body)
        assert status == 200, doc
        pages += 1
        items += doc[result_key]
        if token_name not in doc:
            return pages, items
        body = {token_name: doc[token_name]}


def test_pages_follow_the_requested_limit_and_cover_every_item_once():
    proto = protocol(7)
    pages, items = walk(proto, "CodePipeline_20150709.ListPipelines", "pipelines", limit=3)
    assert pages == 3
    assert [i["name"] for i in items] == [f"p{i:03}" for i in range(7)]


def test_without_a_limit_the_page_is_the_modelled_maximum_or_the_service_default():
    status, doc = call(protocol(1200), "CodePipeline_20150709.ListPipelines", {})
    assert len(doc["pipelines"]) == 1000 and "nextToken" in doc  # maxResults max is 1000
    status, doc = call(protocol(150), "CodeBuild_20161006.ListProjects", {})  # no limit key: 100
    assert len(doc["projects"]) == 100 and doc["nextToken"]
    pages, items = walk(protocol(150), "CodeBuild_20161006.ListProjects", "projects")
    assert (pages, len(items), len(set(items))) == (2, 150, 150)


def test_a_list_that_fits_has_no_token():
    status, doc = call(protocol(3), "CodePipeline_20150709.ListPipelines", {"maxResults": 3})
    assert status == 200 and len(doc["pipelines"]) == 3 and "nextToken" not in doc


def test_each_operation_uses_its_own_names():
    pages, items = walk(protocol(5), "GraniteServiceVersion20100801.DescribeAlarms", "MetricAlarms",
                        token_name="NextToken", limit=2, limit_name="MaxRecords")
    assert pages == 3 and [a["AlarmName"] for a in items] == [f"a{i:03}" for i in range(5)]


@pytest.mark.parametrize("target,token_name,code", [
    ("CodePipeline_20150709.ListPipelines", "nextToken", "InvalidNextTokenException"),
    ("CodeBuild_20161006.ListProjects", "nextToken", "InvalidInputException"),
    ("CodeCommit_20150413.ListRepositories", "nextToken", "InvalidContinuationTokenException"),
    ("GraniteServiceVersion20100801.DescribeAlarms", "NextToken", "InvalidNextToken"),
])
def test_a_token_not_issued_here_answers_the_services_exception(target, token_name, code):
    status, doc = call(protocol(3), target, {token_name: "not-a-token!"})
    assert (status, doc["__type"]) == (400, code)
    assert "not valid" in doc["message"]


def test_a_token_of_another_operation_is_refused():
    token = encode_token("ListPipelineExecutions", 2)
    status, doc = call(protocol(5), "CodePipeline_20150709.ListPipelines", {"nextToken": token})
    assert (status, doc["__type"]) == (400, "InvalidNextTokenException")
    assert "ListPipelines" in doc["message"]


def test_a_limit_above_the_modelled_maximum_is_a_validation_error():
    status, doc = call(protocol(5), "CodePipeline_20150709.ListPipelines", {"maxResults": 1001})
    assert (status, doc["__type"]) == (400, "ValidationException")
    assert "maxResults" in doc["message"] and "1000" in doc["message"]


def test_get_metric_data_is_answered_whole():
    status, doc = call(protocol(3), "GraniteServiceVersion20100801.GetMetricData",
                       {"MetricDataQueries": [], "StartTime": 0, "EndTime": 1, "MaxDatapoints": 1})
    assert status == 200 and len(doc["MetricDataResults"]) == 3 and "NextToken" not in doc


def test_tokens_round_trip_and_reject_negative_offsets():
    assert decode_token(encode_token("ListPipelines", 42), "ListPipelines") == 42
    with pytest.raises(InvalidToken):
        decode_token(encode_token("ListPipelines", -1), "ListPipelines")


def test_the_cli_walks_every_page(monkeypatch):
    from emulator.cli import main

    proto = protocol(7)
    calls = []

    def fake_call(service, operation, **params):
        calls.append(params.get("nextToken"))
        status, doc = call(proto, "CodePipeline_20150709.ListPipelines", {**params, "maxResults": 3})
        assert status == 200, doc
        return doc

    monkeypatch.setattr(main, "_call", fake_call)
    names = [p["name"] for p in main._all("codepipeline", "list_pipelines", "pipelines")]
    assert names == [f"p{i:03}" for i in range(7)]
    assert len(calls) == 3 and calls[0] is None and all(calls[1:])
