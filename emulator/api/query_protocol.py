"""AWS's query protocol (a form-encoded `Action=...&Version=...` body, XML answers) for the services
that speak only it — Elastic Load Balancing v2 — on the same endpoint as the JSON protocols.

As in aws_protocol.py, everything about the wire comes from botocore's service models: how nested
parameters are flattened into form keys (`Targets.member.1.Id`), which members an answer has, the
result wrapper and XML namespace, and the wire code of each error (`TargetGroupNotFound` for
TargetGroupNotFoundException). Providers, pagination and the translation of domain errors are the
JSON layer's own, so a provider cannot tell which protocol called it.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import uuid
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from botocore.model import OperationModel, Shape
from botocore.validate import ParamValidator

from emulator.api.aws_protocol import AwsError, Service, load_services, translate
from emulator.api.pagination import InvalidToken
from emulator.domain.errors import Conflict, NotFound, SpecError
from emulator.domain.statuses import TransitionRefused

log = logging.getLogger(__name__)
_MISSING = object()


class QueryProtocol:
    """Dispatches `Action` to the provider of the service whose API `Version` the request names."""

    def __init__(self, providers: dict[str, Any]):
        self.services = load_services(providers, "apiVersion")
        self._validator = ParamValidator()

    def serves(self, version: str | None) -> bool:
        return version in self.services

    def handle(self, body: bytes) -> tuple[int, str]:
        """(HTTP status, XML document) for one request; never raises."""
        form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
        service = self.services.get(form.get("Version", ""))
        namespace = service.model.metadata.get("xmlNamespace", "") if service else ""
        try:
            return 200, self._dispatch(service, form)
        except AwsError as exc:
            code, status = _wire_code(service, exc)
            return status, _error_xml(code, exc.message, namespace)
        except Exception as exc:  # a defect of ours: say so in AWS's shape instead of dropping the connection
            log.exception("AWS query request %s failed", form.get("Action"))
            return 500, _error_xml("InternalFailure", f"pipelocal internal error: {exc}", namespace, "Receiver")

    def _dispatch(self, service: Service | None, form: dict[str, str]) -> str:
        action = form.pop("Action", "")
        version = form.pop("Version", "")
        if service is None:
            raise AwsError("InvalidAction", f"No query-protocol service with API version {version!r} here; served: "
                                            f"{', '.join(sorted(self.services))}")
        if action not in service.model.operation_names:
            raise AwsError("InvalidAction", f"{action} is not an operation of {service.model.service_name}")
        op = service.model.operation_model(action)
        params = _read(op.input_shape, "", form) if op.input_shape is not None else {}
        params = {} if params is _MISSING else params
        if op.input_shape is not None:
            report = self._validator.validate(params, op.input_shape)
            if report.has_errors():
                raise AwsError("ValidationError", report.generate_report())
        handler = getattr(service.provider, action, None)
        if handler is None:
            raise AwsError("NotImplemented", f"{service.model.service_name} {action} is not implemented by pipelocal; "
                                             "see docs/aws-api.md for the supported operations", 501)
        try:
            start = service.pagination.offset(op, params)
        except InvalidToken as exc:
            raise AwsError("ValidationError", str(exc)) from None
        try:
            result = handler(params) or {}
            result = service.pagination.cut(op, params, result, start)
        except (NotFound, Conflict, SpecError, TransitionRefused, ValueError, LookupError) as exc:
            raise translate(exc, service.provider, op) from None
        return _response_xml(op, result, service.model.metadata.get("xmlNamespace", ""))


# ---------------------------------------------------------------- the form into parameters


def _read(shape: Shape, prefix: str, form: dict[str, str]) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            value = _read(member, f"{prefix}.{key}" if prefix else key, form)
            if value is not _MISSING:
                out[name] = value
        return out if out or not prefix else _MISSING
    if kind == "list":
        if form.get(prefix) == "":
            return []  # botocore sends an empty list as the bare key
        step = f"{prefix}." if shape.serialization.get("flattened") else \
            f"{prefix}.{shape.member.serialization.get('name', 'member')}."
        items = []
        while True:
            value = _read(shape.member, f"{step}{len(items) + 1}", form)
            if value is _MISSING:
                return items if items else _MISSING
            items.append(value)
    if kind == "map":
        step = f"{prefix}." if shape.serialization.get("flattened") else f"{prefix}.entry."
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        out, index = {}, 1
        while f"{step}{index}.{key_name}" in form:
            value = _read(shape.value, f"{step}{index}.{value_name}", form)
            out[form[f"{step}{index}.{key_name}"]] = None if value is _MISSING else value
            index += 1
        return out if out else _MISSING
    if prefix not in form:
        return _MISSING
    return _scalar(shape, prefix, form[prefix])


def _scalar(shape: Shape, key: str, text: str) -> Any:
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind in ("float", "double"):
            return float(text)
        if kind == "boolean":
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
        if kind == "timestamp":
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if kind == "blob":
            return base64.b64decode(text, validate=True)
    except ValueError:
        raise AwsError("ValidationError", f"{key}: {text!r} is not a valid {kind}") from None
    return text


# ---------------------------------------------------------------- answers as XML


def _response_xml(op: OperationModel, result: dict, namespace: str) -> str:
    body = ""
    if op.output_shape is not None:
        inner = "".join(_members(op.output_shape, result))
        wrapper = op.output_shape.serialization.get("resultWrapper") or f"{op.name}Result"
        body = f"<{wrapper}>{inner}</{wrapper}>"
    return (f'<{op.name}Response xmlns="{namespace}">{body}<ResponseMetadata><RequestId>{uuid.uuid4()}'
            f"</RequestId></ResponseMetadata></{op.name}Response>")


def _members(shape: Shape, value: dict) -> list[str]:
    parts = []
    for name, member in shape.members.items():
        if isinstance(value, dict) and value.get(name) is not None:
            parts.append(_element(member.serialization.get("name", name), member, value[name]))
    return parts


def _element(tag: str, shape: Shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "structure":
        return f"<{tag}>{''.join(_members(shape, value))}</{tag}>"
    if kind == "list":
        item_tag = shape.member.serialization.get("name", "member")
        if shape.serialization.get("flattened"):
            return "".join(_element(tag, shape.member, v) for v in value)
        return f"<{tag}>{''.join(_element(item_tag, shape.member, v) for v in value)}</{tag}>"
    if kind == "map":
        key_tag = shape.key.serialization.get("name", "key")
        value_tag = shape.value.serialization.get("name", "value")
        entries = "".join(f"<entry>{_element(key_tag, shape.key, k)}{_element(value_tag, shape.value, v)}</entry>"
                          for k, v in value.items())
        return f"<{tag}>{entries}</{tag}>"
    return f"<{tag}>{escape(_text(shape, value))}</{tag}>"


def _text(shape: Shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
        return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if kind == "blob":
        return base64.b64encode(value if isinstance(value, bytes) else str(value).encode()).decode()
    if kind in ("integer", "long"):
        return str(int(value))
    return str(value)


def _wire_code(service: Service | None, exc: AwsError) -> tuple[str, int]:
    """An exception's name on the query wire (its modelled error code) and HTTP status."""
    if service is not None and exc.code in service.model.shape_names:
        error = service.model.shape_for(exc.code).metadata.get("error") or {}
        return error.get("code", exc.code), error.get("httpStatusCode", exc.status)
    return exc.code, exc.status


def _error_xml(code: str, message: str, namespace: str, kind: str = "Sender") -> str:
    return (f'<ErrorResponse xmlns="{namespace}"><Error><Type>{kind}</Type><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
