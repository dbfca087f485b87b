"""The CloudWatch provider behind the AWS endpoint: json-1.0 answers, CloudWatch's error codes,
and gzip-compressed request bodies (botocore compresses large PutMetricData calls)."""

import gzip
import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from emulator.api.aws_protocol import AwsProtocol, aws_router
from emulator.api.providers.cloudwatch import CloudWatchProvider
from emulator.orchestration import Orchestrator
from emulator.services.cloudwatch.alarms import Alarms
from emulator.services.cloudwatch.metric_store import MetricStore
from emulator.services.cloudwatch.time_scale import TimeScale
from emulator.state.database import Database

TARGET = "GraniteServiceVersion20100801."


@pytest.fixture
def client(tmp_path):
    db = Database(tmp_path / "s.sqlite3", "000000000000", "us-east-1")
    scale = TimeScale()
    metrics = MetricStore(db, scale)
    app = FastAPI()
    app.include_router(aws_router(AwsProtocol({"cloudwatch": CloudWatchProvider(metrics, Alarms(Orchestrator(db), metrics, scale))})))
    return TestClient(app)


def call(client, op, body, gz=False):
    data = json.dumps(body).encode()
    headers = {"X-Amz-Target": TARGET + op, "Content-Type": "application/x-amz-json-1.0"}
    if gz:
        data, headers["Content-Encoding"] = gzip.compress(data), "gzip"
    return client.post("/", content=data, headers=headers)


def test_gzip_body_and_json_10_answer(client):
    datums = [{"MetricName": "m", "Value": float(i)} for i in range(500)]
    response = call(client, "PutMetricData", {"Namespace": "App", "MetricData": datums}, gz=True)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-amz-json-1.0")
    listed = call(client, "ListMetrics", {"Namespace": "App"}).json()
    assert listed == {"Metrics": [{"Namespace": "App", "MetricName": "m", "Dimensions": []}]}


def test_broken_gzip_and_cloudwatch_error_codes(client):
    broken = client.post("/", content=b"\x1f\x8bnot gzip", headers={"X-Amz-Target": TARGET + "ListMetrics",
                                                                    "Content-Encoding": "gzip"})
    assert broken.status_code == 400 and broken.json()["__type"] == "SerializationException"
    refused = call(client, "PutMetricData", {"Namespace": "AWS/EC2", "MetricData": [{"MetricName": "m", "Value": 1}]})
    assert refused.json()["__type"] == "InvalidParameterValue"
    alarm = {"AlarmName": "a", "MetricName": "m", "Namespace": "App", "Statistic": "Sum", "Period": 60,
             "EvaluationPeriods": 2, "DatapointsToAlarm": 3, "Threshold": 1, "ComparisonOperator": "GreaterThanThreshold"}
    assert call(client, "PutMetricAlarm", alarm).json()["__type"] == "InvalidParameterCombination"
    missing = call(client, "DeleteAlarms", {"AlarmNames": ["nope"]})
    assert missing.status_code == 400 and missing.json()["__type"] == "ResourceNotFound"
