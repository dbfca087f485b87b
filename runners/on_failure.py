"""The grammar of a phase's `on-failure` value.

It lives with the runner because the runner must act on it inside a container that has only
the standard library; the buildspec parser imports it so both sides read the value the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ABORT = "ABORT"
CONTINUE = "CONTINUE"
RETRY = "RETRY"

DEFAULT_RETRY_COUNT = 3
MAX_RETRY_COUNT = 100
EXPECTED = "ABORT, CONTINUE, RETRY, RETRY-<count 0..100>, RETRY-<regex> or RETRY-<count>-<regex>"


@dataclass(frozen=True)
class OnFailure:
    action: str  # ABORT | CONTINUE | RETRY
    retry_count: int = 0
    retry_pattern: str | None = None

    def retries_on(self, message: str) -> bool:
        return self.action == RETRY and re.search(self.retry_pattern or ".*", message) is not None


def parse_on_failure(value: str) -> OnFailure:
    """Reads one on-failure value; raises ValueError naming the accepted forms."""
    if value in (ABORT, CONTINUE):
        return OnFailure(value)
    if value == RETRY:
        return OnFailure(RETRY, DEFAULT_RETRY_COUNT, ".*")
    if not value.startswith(RETRY + "-") or value == RETRY + "-":
        raise ValueError(EXPECTED)
    rest = value[len(RETRY) + 1 :]
    count_text, _, pattern = rest.partition("-")
    if count_text.isdigit():
        count = int(count_text)
        if count > MAX_RETRY_COUNT:
            raise ValueError(f"a retry count of at most {MAX_RETRY_COUNT} ({EXPECTED})")
        if not pattern:
            # RETRY-<count>, or RETRY-<count>- which is an empty regex that matches everything
            pattern = ".*"
    else:
        count, pattern = DEFAULT_RETRY_COUNT, rest
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"a valid regular expression after RETRY- ({exc})") from None
    return OnFailure(RETRY, count, pattern)
