"""SSM Parameter Store's API (AmazonSSM), the part buildspec `parameter-store` references need."""

from __future__ import annotations

from typing import Any


class SsmProvider:
    NOT_FOUND = {"Parameter": "ParameterNotFound"}
    CONFLICT = "ParameterAlreadyExists"
    INVALID = {"PutParameter": "ValidationException", "*": "ValidationException"}

    def __init__(self, params: Any):
        self.params = params

    def PutParameter(self, p: dict) -> dict:
        return self.params.put_parameter(p["Name"], p["Value"], p.get("Type", "String"), bool(p.get("Overwrite")))

    def GetParameter(self, p: dict) -> dict:
        return {"Parameter": self.params.get_parameter(p["Name"], bool(p.get("WithDecryption")))}

    def GetParameters(self, p: dict) -> dict:
        found, invalid = [], []
        for name in p["Names"]:
            try:
                found.append(self.params.get_parameter(name, bool(p.get("WithDecryption"))))
            except LookupError:
                invalid.append(name)
        return {"Parameters": found, "InvalidParameters": invalid}

    def DescribeParameters(self, p: dict) -> dict:
        return {"Parameters": self.params.list_parameters()}

    def DeleteParameter(self, p: dict) -> dict:
        self.params.delete_parameter(p["Name"])
        return {}
