"""Errors a user can fix: each names the file, line and key at fault and what was expected."""

from __future__ import annotations


class SpecError(ValueError):
    """A user-supplied document (buildspec, appspec, pipeline) is invalid."""

    def __init__(self, file: str, key: str, expected: str, line: int | None = None):
        self.file = file
        self.key = key
        self.expected = expected
        self.line = line
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {key}: {expected}")


class NotFound(LookupError):
    """A named resource does not exist."""

    def __init__(self, kind: str, name: str):
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} {name!r} does not exist")


class Conflict(ValueError):
    """The request contradicts existing state (a name already taken, a transition not allowed)."""


class InvalidField(ValueError):
    """Bad input in one named request field, so each API can answer with that field's own exception."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)
