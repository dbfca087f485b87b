"""Pages of list results, as every AWS list operation hands them out: `maxResults`/`nextToken` and
each operation's own names for them.

The names come from botocore's paginator models (`input_token`, `output_token`, `limit_key`,
`result_key`), so one rule serves every provider: a provider returns the whole list, and the
protocol layer cuts the page and issues the token. Tokens are opaque to clients; inside they
name the operation and the offset of the next item.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from botocore.exceptions import DataNotFoundError, UnknownServiceError
from botocore.model import OperationModel

# Without a limit in the request, a page holds the limit's modelled maximum, else this many.
DEFAULT_PAGE_SIZE = 100
# Operations whose AWS default page is larger than DEFAULT_PAGE_SIZE.
DEFAULT_PAGE_SIZES = {"ListMetrics": 500, "ListRepositories": 1000, "ListBranches": 1000}
# Operations whose paginator pages something other than the result lists (GetMetricData pages
# datapoints within each result): answered whole.
NOT_PAGED = {"GetMetricData"}
# The exception each service names for a token it did not issue, first found in the operation's errors.
TOKEN_ERRORS = ("InvalidNextTokenException", "InvalidNextToken", "InvalidContinuationTokenException")


class InvalidToken(ValueError):
    """A pagination token this endpoint did not issue for this operation."""


@dataclass(frozen=True)
class PageRule:
    input_token: str
    output_token: str
    result_keys: tuple[str, ...]
    limit_key: str | None
    limit_max: int | None

    def page_size(self, op: OperationModel, params: dict) -> int:
        if self.limit_key and params.get(self.limit_key) is not None:
            size = int(params[self.limit_key])
            if self.limit_max is not None and size > self.limit_max:
                raise ValueError(f"{self.limit_key}: {size} is above the maximum of {self.limit_max}")
            return size
        return DEFAULT_PAGE_SIZES.get(op.name) or self.limit_max or DEFAULT_PAGE_SIZE


class Pagination:
    """The page rules of one service, read from botocore's paginator model."""

    def __init__(self, session, service_name: str, operations: dict[str, OperationModel]):
        try:
            config = session.get_paginator_model(service_name)._paginator_config
        except (DataNotFoundError, UnknownServiceError):
            config = {}
        self.rules: dict[str, PageRule] = {}
        for name, entry in config.items():
            tokens = (entry.get("input_token"), entry.get("output_token"))
            if name in NOT_PAGED or name not in operations or not all(isinstance(t, str) for t in tokens):
                continue  # multi-token paginators (none among the served list operations) are answered whole
            result = entry["result_key"]
            limit = entry.get("limit_key")
            members = operations[name].input_shape.members if operations[name].input_shape else {}
            limit_max = members[limit].metadata.get("max") if limit in members else None
            self.rules[name] = PageRule(tokens[0], tokens[1], tuple(result if isinstance(result, list) else [result]),
                                        limit, limit_max)

    def offset(self, op: OperationModel, params: dict) -> int:
        """Where the requested page starts; InvalidToken for a token this operation did not issue."""
        rule = self.rules.get(op.name)
        if rule is None or not params.get(rule.input_token):
            return 0
        return decode_token(params[rule.input_token], op.name)

    def cut(self, op: OperationModel, params: dict, result: dict, start: int) -> dict:
        """The page of `result` that starts at `start`, with the token of the next page if any."""
        rule = self.rules.get(op.name)
        if rule is None or not isinstance(result, dict) or result.get(rule.output_token):
            return result  # not paged, or the provider paged it itself
        size = rule.page_size(op, params)
        page = dict(result)
        more = False
        for key in rule.result_keys:
            items = result.get(key)
            if isinstance(items, list):
                page[key] = items[start:start + size]
                more = more or len(items) > start + size
        page.pop(rule.output_token, None)
        if more:
            page[rule.output_token] = encode_token(op.name, start + size)
        return page

    @staticmethod
    def token_error(op: OperationModel) -> str | None:
        names = {e.name for e in op.error_shapes}
        return next((n for n in TOKEN_ERRORS if n in names), None)


def encode_token(operation: str, offset: int) -> str:
    raw = json.dumps({"op": operation, "offset": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, operation: str) -> int:
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidToken(f"The pagination token {token[:40]!r} is not valid: it was not issued by this "
                           f"endpoint") from None
    if not isinstance(doc, dict) or doc.get("op") != operation or not isinstance(doc.get("offset"), int) \
            or doc["offset"] < 0:
        raise InvalidToken(f"The pagination token {token[:40]!r} is not valid for {operation}: pass the "
                           f"token the previous {operation} call returned")
    return doc["offset"]
