"""The one way a lifecycle event step reports failure: an AWS LifecycleErrorCode plus the words
CodeDeploy would show for it."""

from __future__ import annotations

SUCCESS = "Success"
SCRIPT_MISSING = "ScriptMissing"
SCRIPT_NOT_EXECUTABLE = "ScriptNotExecutable"
SCRIPT_TIMED_OUT = "ScriptTimedOut"
SCRIPT_FAILED = "ScriptFailed"
UNKNOWN_ERROR = "UnknownError"

SUCCEEDED = "Succeeded"
FAILED = "Failed"


class LifecycleFailure(Exception):
    def __init__(self, error_code: str, message: str, log: str = ""):
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.log = log
