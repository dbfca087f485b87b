"""The json-1.1 protocol layer: targets, validation, error shapes and output shaping."""

from __future__ import annotations

import json

import pytest

from emulator.api.aws_protocol import AwsProtocol, serialize
from emulator.api.providers.codepipeline import CodePipelineProvider
from emulator.domain.errors import Conflict, NotFound
from emulator.domain.pipeline import InvalidStructure


class FakePipelines:
    def __init__(self, error: Exception | None = None):
        self.error = error
        self.created = []

    def create(self, decl):
        if self.error:
            raise self.error
        self.created.append(decl)
        return {"pipeline": {**decl, "version": 1, "internal": "x"}}

    def get(self, name):
        raise NotFound("Pipeline", name)


class FakeExecutions:
    def __init__(self):
        self.started = []

    def start(self, name, **kwargs):
        self.started.append(name)
        return "e-1"


@pytest.fixture
def protocol_for():
    def make(pipelines):
        return AwsProtocol({"codepipeline": CodePipelineProvider(pipelines, FakeExecutions())})
    return make


def call(protocol, operation, body, prefix="CodePipeline_20150709"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return protocol.handle(f"{prefix}.{operation}" if operation else None, raw)


PIPELINE = {"name": "p", "roleArn": "arn:aws:iam::000000000000:role/r",
            "artifactStore": {"type": "S3", "location": "bucket"}, "stages": []}


def test_dispatches_and_keeps_only_modelled_members(protocol_for):
    pipelines = FakePipelines()
    status, doc = call(protocol_for(pipelines), "CreatePipeline", {"pipeline": PIPELINE})
    assert status == 200
    assert pipelines.created[0]["name"] == "p"
    assert doc["pipeline"]["version"] == 1
    assert "internal" not in doc["pipeline"]


def test_a_created_pipeline_starts_its_first_execution():
    executions = FakeExecutions()
    protocol = AwsProtocol({"codepipeline": CodePipelineProvider(FakePipelines(), executions)})
    assert call(protocol, "CreatePipeline", {"pipeline": PIPELINE})[0] == 200
    assert executions.started == ["p"]


@pytest.mark.parametrize("error, code", [
    (NotFound("Pipeline", "p"), "PipelineNotFoundException"),
    (Conflict("taken"), "PipelineNameInUseException"),
    (InvalidStructure("pipeline", "stages", "two stages"), "InvalidStructureException"),
])
def test_domain_errors_carry_the_services_names(protocol_for, error, code):
    status, doc = call(protocol_for(FakePipelines(error)), "CreatePipeline", {"pipeline": PIPELINE})
    assert (status, doc["__type"]) == (400, code)
    assert doc["message"] == str(error)


def test_missing_required_member_is_a_validation_exception(protocol_for):
    status, doc = call(protocol_for(FakePipelines()), "GetPipeline", {})
    assert (status, doc["__type"]) == (400, "ValidationException")
    assert "name" in doc["message"]


def test_wrong_type_is_a_validation_exception(protocol_for):
    status, doc = call(protocol_for(FakePipelines()), "GetPipeline", {"name": 5})
    assert (status, doc["__type"]) == (400, "ValidationException")
    assert "name" in doc["message"] and "str" in doc["message"]


def test_bad_json_is_a_serialization_exception(protocol_for):
    status, doc = call(protocol_for(FakePipelines()), "GetPipeline", b"{nope")
    assert (status, doc["__type"]) == (400, "SerializationException")


@pytest.mark.parametrize("target", [None, "Nope.GetPipeline", "CodePipeline_20150709.NoSuchOperation", "garbage"])
def test_unknown_targets_are_named(protocol_for, target):
    status, doc = protocol_for(FakePipelines()).handle(target, b"{}")
    assert (status, doc["__type"]) == (400, "UnknownOperationException")


def test_modelled_but_unimplemented_operation_says_so(protocol_for):
    status, doc = call(protocol_for(FakePipelines()), "ListWebhooks", {})
    assert (status, doc["__type"]) == (501, "NotImplemented")
    assert "ListWebhooks" in doc["message"]


def test_a_defect_is_an_internal_failure_not_a_crash():
    class Broken:
        def ListPipelines(self, p):
            raise RuntimeError("boom")

    status, doc = AwsProtocol({"codepipeline": Broken()}).handle("CodePipeline_20150709.ListPipelines", b"{}")
    assert (status, doc["__type"]) == (500, "InternalFailure")
    assert "boom" in doc["message"]


def test_timestamps_become_epoch_seconds():
    from botocore.session import get_session

    shape = get_session().get_service_model("codecommit").operation_model("GetRepository").output_shape
    out = serialize({"repositoryMetadata": {"creationDate": "2024-01-02T03:04:05+00:00", "repositoryName": "r"}},
                    shape)
    assert out["repositoryMetadata"]["creationDate"] == 1704164645.0


def test_every_mapped_exception_is_one_the_service_models():
    """A name botocore cannot map to a modelled error would reach SDK users as a generic ClientError."""
    from botocore.session import get_session

    from emulator.api.providers.codebuild import CodeBuildProvider
    from emulator.api.providers.codecommit import CodeCommitProvider
    from emulator.api.providers.codedeploy import CodeDeployProvider

    generic = {"ValidationException", "ResourceNotFoundException", "InvalidOperationException", "ConflictException"}
    for service, provider in [("codepipeline", CodePipelineProvider), ("codebuild", CodeBuildProvider),
                              ("codecommit", CodeCommitProvider), ("codedeploy", CodeDeployProvider)]:
        model = get_session().get_service_model(service)
        modelled = {s for s in model.shape_names if model.shape_for(s).metadata.get("exception")}
        names = set(provider.NOT_FOUND.values())
        for attr in ("CONFLICT", "INVALID", "STATE"):
            value = getattr(provider, attr, None)
            names |= set(value.values()) if isinstance(value, dict) else {value} if value else set()
        assert names - modelled - generic == set(), service


def test_http_layer_answers_json_1_1_and_query_requests():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from emulator.api.aws_protocol import aws_router

    app = FastAPI()
    app.include_router(aws_router(AwsProtocol({"codepipeline": CodePipelineProvider(FakePipelines(),
                                                                                     FakeExecutions())})))
    client = TestClient(app)
    answer = client.post("/", content=b'{"name": "p"}', headers={"X-Amz-Target": "CodePipeline_20150709.GetPipeline"})
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/x-amz-json-1.1"
    assert answer.json()["__type"] == "PipelineNotFoundException"
    query = client.post("/", content=b"Action=PutMetricData&Version=2010-08-01",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert query.status_code == 501 and "<Code>NotImplemented</Code>" in query.text and "PutMetricData" in query.text
