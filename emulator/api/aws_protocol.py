"""AWS's JSON wire protocols (json-1.1; json-1.0 for CloudWatch) for every service the control
plane answers, on one endpoint.

Targets, operations, input validation and output shapes all come from botocore's own service
models, so the `aws` CLI and SDKs see the same request checks and error names as on AWS. Each
service's behaviour lives in a provider (`emulator/api/providers/<service>.py`): one method per
operation, named as AWS names it; an operation a provider lacks answers "not implemented".
List operations return whole lists; `pagination.py` cuts the page and issues the token.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from botocore.model import OperationModel, ServiceModel, Shape
from botocore.session import get_session
from botocore.validate import ParamValidator
from fastapi import APIRouter, Request
from fastapi.responses import Response

from emulator.api.pagination import InvalidToken, Pagination
from emulator.domain.errors import Conflict, InvalidField, NotFound, SpecError
from emulator.domain.statuses import TransitionRefused

log = logging.getLogger(__name__)
CONTENT_TYPE = "application/x-amz-json-1.1"


class AwsError(Exception):
    """An error AWS would return: the exception name from the service model and a message."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class Service:
    model: ServiceModel
    provider: Any
    pagination: Pagination | None = None


def load_services(providers: dict[str, Any], key: str) -> dict[str, Service]:
    """botocore service name -> provider, as Services keyed by the model's `key` metadata (the JSON
    target prefix, or the query protocol's API version)."""
    session = get_session()
    services: dict[str, Service] = {}
    for name, provider in providers.items():
        model = session.get_service_model(name)
        operations = {op: model.operation_model(op) for op in model.operation_names}
        services[model.metadata[key]] = Service(model, provider, Pagination(session, name, operations))
    return services


class AwsProtocol:
    """Dispatches `X-Amz-Target: <prefix>.<Operation>` to the provider of that service."""

    def __init__(self, providers: dict[str, Any]):
        self.services = load_services(providers, "targetPrefix")
        self._validator = ParamValidator()

    def content_type(self, target: str | None) -> str:
        """The service's own JSON version (CloudWatch speaks 1.0), 1.1 when the target is unknown."""
        service = self.services.get((target or "").rsplit(".", 1)[0])
        version = service.model.metadata.get("jsonVersion", "1.1") if service else "1.1"
        return f"application/x-amz-json-{version}"

    def handle(self, target: str | None, body: bytes) -> tuple[int, dict]:
        """(HTTP status, JSON document) for one request; never raises."""
        try:
            return 200, self._dispatch(target, body)
        except AwsError as exc:
            return exc.status, {"__type": exc.code, "message": exc.message}
        except Exception as exc:  # a defect of ours: say so in AWS's shape instead of dropping the connection
            log.exception("AWS API request %s failed", target)
            return 500, {"__type": "InternalFailure", "message": f"pipelocal internal error: {exc}"}

    def _dispatch(self, target: str | None, body: bytes) -> dict:
        if not target or "." not in target:
            raise AwsError("UnknownOperationException",
                           "Missing or malformed X-Amz-Target header: expected <TargetPrefix>.<Operation>")
        prefix, operation = target.rsplit(".", 1)
        service = self.services.get(prefix)
        if service is None:
            raise AwsError("UnknownOperationException",
                           f"No service with target prefix {prefix!r} here; served: {', '.join(sorted(self.services))}")
        if operation not in service.model.operation_names:
            raise AwsError("UnknownOperationException",
                           f"{operation} is not an operation of {service.model.service_name}")
        op = service.model.operation_model(operation)
        params = self._parse(body, op)
        handler = getattr(service.provider, operation, None)
        if handler is None:
            raise AwsError("NotImplemented", f"{service.model.service_name} {operation} is not implemented by "
                                             "pipelocal; see docs/aws-api.md for the supported operations", 501)
        try:
            start = service.pagination.offset(op, params)
        except InvalidToken as exc:
            raise AwsError(Pagination.token_error(op) or _declared(service.provider, "INVALID", op,
                                                                   _validation_code(op)), str(exc)) from None
        try:
            result = handler(params) or {}
            result = service.pagination.cut(op, params, result, start)
        except (NotFound, Conflict, SpecError, TransitionRefused, ValueError, LookupError) as exc:
            raise translate(exc, service.provider, op) from None
        return serialize(result, op.output_shape)

    def _parse(self, body: bytes, op: OperationModel) -> dict:
        try:
            params = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AwsError("SerializationException", f"The request body is not valid JSON: {exc}") from None
        if not isinstance(params, dict):
            raise AwsError("SerializationException", "The request body must be a JSON object")
        if op.input_shape is not None:
            report = self._validator.validate(params, op.input_shape)
            if report.has_errors():
                raise AwsError(_validation_code(op), report.generate_report())
            params = _decode_blobs(params, op.input_shape)
        return params


def translate(exc: Exception, provider: Any, op: OperationModel) -> AwsError:
    """A domain error as the exception this service names for it.

    Providers declare `NOT_FOUND` (resource kind -> exception), `CONFLICT`, `INVALID` (bad input)
    and `STATE` (a request the resource's state refuses); the last three are one name, or a map
    from operation name to name with "*" as the default. `INVALID_FIELDS` maps the field an
    `InvalidField` names to its own exception (loadBalancerInfo -> InvalidLoadBalancerInfoException).
    """
    if isinstance(exc, NotFound):
        code = getattr(provider, "NOT_FOUND", {}).get(exc.kind, "ResourceNotFoundException")
        return AwsError(code, str(exc))
    if isinstance(exc, Conflict):
        return AwsError(_declared(provider, "CONFLICT", op, "ConflictException"), str(exc))
    if isinstance(exc, TransitionRefused):
        return AwsError(_declared(provider, "STATE", op, "InvalidStateException"), str(exc))
    if isinstance(exc, LookupError):
        return AwsError("ResourceNotFoundException", str(exc))
    if isinstance(exc, InvalidField) and exc.field in getattr(provider, "INVALID_FIELDS", {}):
        return AwsError(provider.INVALID_FIELDS[exc.field], str(exc))
    return AwsError(_declared(provider, "INVALID", op, _validation_code(op)), str(exc))


def _declared(provider: Any, attribute: str, op: OperationModel, default: str) -> str:
    value = getattr(provider, attribute, None)
    if isinstance(value, dict):
        return value.get(op.name) or value.get("*") or default
    return value or default


def _validation_code(op: OperationModel) -> str:
    """The name the service itself uses for malformed input."""
    names = {e.name for e in op.error_shapes}
    for name in ("ValidationException", "InvalidInputException", "InvalidParameterException"):
        if name in names:
            return name
    return "ValidationException"


def serialize(value: Any, shape: Shape | None) -> Any:
    """Keeps the members the output shape declares, with timestamps as epoch seconds."""
    if shape is None:
        return {}
    kind = shape.type_name
    if value is None:
        return None
    if kind == "structure":
        if not isinstance(value, dict):
            return value
        out = {}
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                out[name] = serialize(value[name], member)
        return out
    if kind == "list":
        return [serialize(v, shape.member) for v in value]
    if kind == "map":
        return {k: serialize(v, shape.value) for k, v in value.items()}
    if kind == "timestamp":
        return _epoch(value)
    if kind == "blob":
        return base64.b64encode(value if isinstance(value, bytes) else str(value).encode()).decode()
    if kind in ("integer", "long"):
        return int(value)
    if kind in ("float", "double"):
        return float(value)
    if kind == "boolean":
        return bool(value)
    if kind == "string":
        return value if isinstance(value, str) else str(value)
    return value


def _epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return dt.datetime.fromisoformat(str(value)).timestamp()


def _decode_blobs(value: Any, shape: Shape) -> Any:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: _decode_blobs(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_decode_blobs(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _decode_blobs(v, shape.value) for k, v in value.items()}
    if kind == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise AwsError("SerializationException", "A blob member is not valid base64") from None
    return value


def aws_router(protocol: AwsProtocol, query: Any = None) -> APIRouter:
    """`query`: the query-protocol layer (query_protocol.QueryProtocol) for form-encoded requests."""
    router = APIRouter(include_in_schema=False)

    @router.post("/")
    async def aws_json(request: Request) -> Response:
        body = await request.body()
        target = request.headers.get("x-amz-target")
        # botocore gzips large request bodies (PutMetricData's requestcompression trait)
        if request.headers.get("content-encoding", "").lower() == "gzip":
            try:
                body = _gunzip(body)
            except (OSError, EOFError, ValueError, zlib.error) as exc:
                return Response(json.dumps({"__type": "SerializationException",
                                            "message": f"The gzip request body cannot be read: {exc}"}),
                                status_code=400, media_type=protocol.content_type(target))
        if target is None and b"Action=" in body:
            version = (parse_qs(body.decode(errors="replace")).get("Version") or [""])[0]
            if query is None or not query.serves(version):
                return _query_not_implemented(body)
            status, xml = await asyncio.to_thread(query.handle, body)
            return Response(xml, status_code=status, media_type="text/xml")
        status, doc = await asyncio.to_thread(protocol.handle, target, body)
        return Response(json.dumps(doc), status_code=status, media_type=protocol.content_type(target))

    return router


MAX_INFLATED_BYTES = 16 * 1024 * 1024


def _gunzip(body: bytes) -> bytes:
    """A gzip request body, refusing one that inflates beyond what any operation accepts."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    data = inflater.decompress(body, MAX_INFLATED_BYTES + 1)
    if len(data) > MAX_INFLATED_BYTES or inflater.unconsumed_tail:
        raise ValueError(f"The request body inflates beyond {MAX_INFLATED_BYTES} bytes")
    if not inflater.eof:
        raise ValueError("The gzip request body is truncated")
    return data


def _query_not_implemented(body: bytes) -> Response:
    """The query protocol (form-encoded `Action=...`): answered in its XML error shape."""
    action = (parse_qs(body.decode(errors="replace")).get("Action") or ["?"])[0]
    xml = ("<ErrorResponse><Error><Type>Sender</Type><Code>NotImplemented</Code>"
           f"<Message>{action} (query protocol) is not implemented by pipelocal</Message></Error>"
           "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>")
    return Response(xml, status_code=501, media_type="text/xml")
