"""SSM Parameter Store and Secrets Manager stand-ins, so buildspecs resolve their references locally.

Values live in the state database (one record per parameter or secret, with its versions); no
encryption: SecureString is only a type name here. Method names follow the AWS actions, so an
AWS-protocol provider can call them directly.
"""

from __future__ import annotations

import json
import re
import time
import uuid

from emulator.domain.errors import Conflict, NotFound
from emulator.state.database import Database

PARAMETER_KIND = "ssm-parameter"
SECRET_KIND = "secretsmanager-secret"
PARAMETER_TYPES = ("String", "StringList", "SecureString")
CURRENT, PREVIOUS = "AWSCURRENT", "AWSPREVIOUS"
_PARAMETER_NAME = re.compile(r"^/?[A-Za-z0-9_.\-/]{1,2048}$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@\-]{1,512}$")


class ParameterStore:
    def __init__(self, db: Database):
        self.db = db

    # ------------------------------------------------------------ SSM

    def put_parameter(self, name: str, value: str, type: str = "String", overwrite: bool = False) -> dict:
        if not name or not _PARAMETER_NAME.match(name):
            raise ValueError(f"Parameter name {name!r}: expected letters, digits, and _ . - / (at most 2048)")
        if type not in PARAMETER_TYPES:
            raise ValueError(f"Parameter type {type!r}: expected one of {', '.join(PARAMETER_TYPES)}")
        if not isinstance(value, str) or value == "":
            raise ValueError(f"Parameter {name}: expected a non-empty string value")
        old = self.db.get(PARAMETER_KIND, name)
        if old and not overwrite:
            raise Conflict(f"ParameterAlreadyExists: {name} exists; pass overwrite to replace it")
        version = (old["Version"] + 1) if old else 1
        doc = {"Name": name, "Type": type, "Value": value, "Version": version, "LastModifiedDate": time.time(),
               "ARN": f"arn:aws:ssm:{self.db.region}:{self.db.account}:parameter/{name.lstrip('/')}",
               "DataType": "text"}
        self.db.put(PARAMETER_KIND, name, doc)
        return {"Version": version, "Tier": "Standard"}

    def get_parameter(self, name: str, with_decryption: bool = False) -> dict:
        doc = self.db.get(PARAMETER_KIND, name)
        if doc is None:
            raise NotFound("Parameter", name)
        result = {k: v for k, v in doc.items() if not k.startswith("_")}
        if doc["Type"] == "SecureString" and not with_decryption:
            result["Value"] = "(encrypted)"
        return result

    def list_parameters(self) -> list[dict]:
        return [{k: v for k, v in d.items() if k != "Value"} for d in self.db.list(PARAMETER_KIND)]

    def delete_parameter(self, name: str) -> None:
        self.get_parameter(name)
        self.db.delete(PARAMETER_KIND, name)

    # ------------------------------------------------------------ Secrets Manager

    def create_secret(self, name: str, secret_string: str) -> dict:
        if not name or not _SECRET_NAME.match(name):
            raise ValueError(f"Secret name {name!r}: expected letters, digits and /_+=.@- (at most 512)")
        if self.db.get(SECRET_KIND, name):
            raise Conflict(f"ResourceExistsException: the secret {name} already exists")
        arn = f"arn:aws:secretsmanager:{self.db.region}:{self.db.account}:secret:{name}-{uuid.uuid4().hex[:6]}"
        doc = {"Name": name, "ARN": arn, "CreatedDate": time.time(), "Versions": []}
        self._add_version(doc, secret_string)
        self.db.put(SECRET_KIND, name, doc)
        return {"ARN": arn, "Name": name, "VersionId": doc["Versions"][-1]["VersionId"]}

    def put_secret_value(self, secret_id: str, secret_string: str) -> dict:
        doc = self._secret(secret_id)
        self._add_version(doc, secret_string)
        self.db.put(SECRET_KIND, doc["Name"], doc)
        return {"ARN": doc["ARN"], "Name": doc["Name"], "VersionId": doc["Versions"][-1]["VersionId"]}

    def get_secret_value(self, secret_id: str, version_stage: str | None = None, version_id: str | None = None) -> dict:
        doc = self._secret(secret_id)
        if version_id:
            match = [v for v in doc["Versions"] if v["VersionId"] == version_id]
            where = f"version id {version_id}"
        else:
            stage = version_stage or CURRENT
            match = [v for v in doc["Versions"] if stage in v["VersionStages"]]
            where = f"version stage {stage}"
        if not match:
            raise NotFound("SecretVersion", f"{doc['Name']} ({where})")
        version = match[0]
        return {"ARN": doc["ARN"], "Name": doc["Name"], "VersionId": version["VersionId"],
                "SecretString": version["SecretString"], "VersionStages": list(version["VersionStages"]),
                "CreatedDate": version["CreatedDate"]}

    def list_secrets(self) -> list[dict]:
        return [{"Name": d["Name"], "ARN": d["ARN"], "CreatedDate": d["CreatedDate"]} for d in self.db.list(SECRET_KIND)]

    def delete_secret(self, secret_id: str) -> None:
        self.db.delete(SECRET_KIND, self._secret(secret_id)["Name"])

    def _secret(self, secret_id: str) -> dict:
        doc = self.db.get(SECRET_KIND, secret_id)
        if doc is None:  # an ARN, with or without its random suffix
            doc = next((d for d in self.db.list(SECRET_KIND)
                        if secret_id in (d["ARN"], d["ARN"].rsplit("-", 1)[0])), None)
        if doc is None:
            raise NotFound("Secret", secret_id)
        return doc

    @staticmethod
    def _add_version(doc: dict, secret_string: str) -> None:
        if not isinstance(secret_string, str):
            raise ValueError("SecretString: expected a string")
        for version in doc["Versions"]:
            if PREVIOUS in version["VersionStages"]:
                version["VersionStages"].remove(PREVIOUS)
            if CURRENT in version["VersionStages"]:
                version["VersionStages"] = [s for s in version["VersionStages"] if s != CURRENT] + [PREVIOUS]
        doc["Versions"] = [v for v in doc["Versions"] if v["VersionStages"]]
        doc["Versions"].append({"VersionId": str(uuid.uuid4()), "SecretString": secret_string,
                                "VersionStages": [CURRENT], "CreatedDate": time.time()})


def secret_field(secret_string: str, json_key: str | None, secret_id: str) -> str:
    """The whole secret, or one key of a JSON secret (CodeBuild's `secret-id:json-key` form)."""
    if not json_key:
        return secret_string
    try:
        data = json.loads(secret_string)
    except ValueError:
        raise ValueError(f"secret {secret_id}: json-key {json_key!r} given, but the secret is not JSON") from None
    if not isinstance(data, dict) or json_key not in data:
        raise ValueError(f"secret {secret_id}: no key {json_key!r} in the secret's JSON")
    value = data[json_key]
    return value if isinstance(value, str) else json.dumps(value)
