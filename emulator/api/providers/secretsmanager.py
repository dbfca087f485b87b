"""Secrets Manager's API (secretsmanager), the part buildspec `secrets-manager` references need."""

from __future__ import annotations

from typing import Any


class SecretsManagerProvider:
    NOT_FOUND = {"Secret": "ResourceNotFoundException", "SecretVersion": "ResourceNotFoundException"}
    CONFLICT = "ResourceExistsException"
    INVALID = "InvalidParameterException"

    def __init__(self, params: Any):
        self.params = params

    def CreateSecret(self, p: dict) -> dict:
        if "SecretString" not in p:
            raise ValueError("SecretString is required here (SecretBinary is not supported)")
        return self.params.create_secret(p["Name"], p["SecretString"])

    def PutSecretValue(self, p: dict) -> dict:
        if "SecretString" not in p:
            raise ValueError("SecretString is required here (SecretBinary is not supported)")
        return self.params.put_secret_value(p["SecretId"], p["SecretString"])

    def GetSecretValue(self, p: dict) -> dict:
        return self.params.get_secret_value(p["SecretId"], p.get("VersionStage"), p.get("VersionId"))

    def ListSecrets(self, p: dict) -> dict:
        return {"SecretList": self.params.list_secrets()}

    def DeleteSecret(self, p: dict) -> dict:
        secret = self.params.get_secret_value(p["SecretId"])
        self.params.delete_secret(p["SecretId"])
        return {"ARN": secret["ARN"], "Name": secret["Name"]}
