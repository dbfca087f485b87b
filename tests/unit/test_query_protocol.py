"""The query protocol layer against botocore's own query serializer and parser: what an SDK sends
is read back as the same parameters, and what the layer answers parses as the SDK expects."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from botocore.session import get_session

from emulator.api.query_protocol import QueryProtocol
from emulator.domain.errors import NotFound

MODEL = get_session().get_service_model("elbv2")


class FakeProvider:
    NOT_FOUND = {"TargetGroup": "TargetGroupNotFoundException"}

    def __init__(self):
        self.calls = []

    def RegisterTargets(self, p):
        self.calls.append(p)
        return {}

    def CreateListener(self, p):
        self.calls.append(p)
        return {"Listeners": [{"ListenerArn": "arn:l", "Port": p["Port"], "DefaultActions": p["DefaultActions"]}]}

    def DescribeTargetGroups(self, p):
        self.calls.append(p)
        if p.get("Names") == ["missing"]:
            raise NotFound("TargetGroup", "missing")
        return {"TargetGroups": [{"TargetGroupName": f"tg-{i}", "HealthCheckEnabled": True, "Port": 80,
                                  "LoadBalancerArns": []} for i in range(3)]}

    def DescribeLoadBalancers(self, p):
        return {"LoadBalancers": [{"LoadBalancerName": "lb", "CreatedTime": dt.datetime(2026, 11, 26, 10, 0, 0,
                                                                                         tzinfo=dt.timezone.utc)}]}


def call(protocol: QueryProtocol, operation: str, params: dict) -> tuple[int, dict]:
    op = MODEL.operation_model(operation)
    request = create_serializer("query").serialize_to_request(params, op)
    status, xml = protocol.handle(urlencode(request["body"]).encode())
    parsed = create_parser("query").parse({"body": xml.encode(), "headers": {}, "status_code": status},
                                          op.output_shape)
    return status, parsed


def test_nested_lists_and_structures_round_trip():
    provider = FakeProvider()
    protocol = QueryProtocol({"elbv2": provider})
    status, _ = call(protocol, "RegisterTargets", {"TargetGroupArn": "arn:tg", "Targets": [
        {"Id": "i-1", "Port": 80}, {"Id": "i-2"}]})
    assert status == 200
    assert provider.calls[-1] == {"TargetGroupArn": "arn:tg", "Targets": [{"Id": "i-1", "Port": 80}, {"Id": "i-2"}]}
    forward = {"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": "arn:blue", "Weight": 90}, {"TargetGroupArn": "arn:green", "Weight": 10}]}}
    status, parsed = call(protocol, "CreateListener", {"LoadBalancerArn": "arn:lb", "Port": 8080,
                                                       "Protocol": "HTTP", "DefaultActions": [forward]})
    assert provider.calls[-1]["DefaultActions"] == [forward] and provider.calls[-1]["Port"] == 8080
    assert parsed["Listeners"][0]["DefaultActions"] == [forward]


def test_answers_parse_with_types_and_pages():
    protocol = QueryProtocol({"elbv2": FakeProvider()})
    status, parsed = call(protocol, "DescribeTargetGroups", {"PageSize": 2})
    assert status == 200
    assert [g["TargetGroupName"] for g in parsed["TargetGroups"]] == ["tg-0", "tg-1"]
    assert parsed["TargetGroups"][0]["HealthCheckEnabled"] is True and parsed["TargetGroups"][0]["Port"] == 80
    status, rest = call(protocol, "DescribeTargetGroups", {"PageSize": 2, "Marker": parsed["NextMarker"]})
    assert [g["TargetGroupName"] for g in rest["TargetGroups"]] == ["tg-2"] and "NextMarker" not in rest
    _, lbs = call(protocol, "DescribeLoadBalancers", {})
    assert lbs["LoadBalancers"][0]["CreatedTime"] == dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.timezone.utc)


def test_errors_carry_the_modelled_wire_code():
    protocol = QueryProtocol({"elbv2": FakeProvider()})
    status, parsed = call(protocol, "DescribeTargetGroups", {"Names": ["missing"]})
    assert status == 400 and parsed["Error"]["Code"] == "TargetGroupNotFound"
    assert "missing" in parsed["Error"]["Message"]
    status, parsed = call(protocol, "DeleteListener", {"ListenerArn": "arn:l"})
    assert status == 501 and parsed["Error"]["Code"] == "NotImplemented"
    status, xml = protocol.handle(b"Action=Nope&Version=2015-12-01")
    assert status == 400 and "<Code>InvalidAction</Code>" in xml
    status, xml = protocol.handle(b"Action=DescribeTargetGroups&Version=2015-12-01&PageSize=many")
    assert status == 400 and "PageSize" in xml and "ValidationError" in xml
