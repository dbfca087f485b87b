"""The "EC2 instances": containers of the agent image, each with a name, tags and an address."""

from __future__ import annotations

import secrets
import time
from typing import Callable

from emulator import contracts
from emulator.domain.errors import NotFound
from emulator.runtime.container_payload import code_tar
from emulator.runtime.container_runtime import LABEL_OWNER, LABEL_ROLE, ContainerRuntime, ContainerSpec
from emulator.state.database import Database

KIND = "instance"
AGENT_IMAGE = "pipelocal/agent:1"
APP_PORT = 80
EXTERNAL_SILENCE = 60.0  # an external instance not heard from for this long is not alive


class Fleet:
    def __init__(self, db: Database, runtime: ContainerRuntime, control_url_for_containers: str,
                 container_env: dict[str, str], last_seen: Callable[[str], float | None] = lambda _: None):
        self.db = db
        self.runtime = runtime
        self.control_url = control_url_for_containers
        self.container_env = container_env
        self.last_seen = last_seen  # when an instance last polled; how external instances prove alive
        # Called with the instance id when an instance is terminated or found gone (load balancers forget it).
        self.on_terminate: list[Callable[[str], object]] = []

    def launch(self, count: int, tags: dict[str, str] | None = None, name_prefix: str = "web") -> list[dict]:
        launched = []
        for _ in range(count):
            number = self.db.next_number("instance")
            instance_id = "i-" + secrets.token_hex(9)[:17]
            name = f"{name_prefix}-{number}"
            all_tags = {"Name": name, **(tags or {})}
            token = secrets.token_hex(16)
            spec = ContainerSpec(
                image=AGENT_IMAGE,
                name=f"pipelocal-{instance_id}",
                hostname=name,
                command=["python3", "-m", "agents"],
                env={
                    "PYTHONPATH": "/opt/pipelocal",
                    contracts.ENV_CONTROL_URL: self.control_url,
                    contracts.ENV_INSTANCE_NAME: instance_id,
                    contracts.ENV_TOKEN: token,
                    **self.container_env,
                },
                labels={LABEL_ROLE: "instance", LABEL_OWNER: instance_id},
                publish={APP_PORT: None},
                files={"/": code_tar("agents")},
            )
            doc = {
                "instanceId": instance_id,
                "name": name,
                "tags": all_tags,
                "containerName": spec.name,
                "state": "pending",
                "launchTime": time.time(),
                "_token": token,
                "lastSuccessful": {},  # deployment group id -> deployment id
                "revision": None,
            }
            self.db.put(KIND, instance_id, doc)
            info = self.runtime.start(spec)
            doc = self.db.update(KIND, instance_id, state="running", privateIpAddress=info.address,
                                 appUrl=f"http://127.0.0.1:{info.ports.get(APP_PORT)}/",
                                 hostPort=info.ports.get(APP_PORT))
            launched.append(_public(doc))
        return launched

    def register_external(self, name: str, tags: dict[str, str], address: str, token: str,
                          app_url: str = "") -> dict | None:
        """An agent pipelocal did not launch (a docker-compose service) registers itself with the
        registration token, as an on-premises instance does; registering again refreshes its tags,
        address and URL. None if `name` belongs to a launched instance."""
        doc = self.db.get(KIND, name)
        if doc is not None and not doc.get("external"):
            return None
        fields = dict(name=name, tags={"Name": name, **tags}, state="running", privateIpAddress=address or None,
                      appUrl=app_url or None, _token=token, external=True, lastSeen=time.time())
        if doc is None:
            self.db.put(KIND, name, {"instanceId": name, "containerName": None, "launchTime": time.time(),
                                     "lastSuccessful": {}, "revision": None, **fields})
            doc = self.db.get(KIND, name)
        else:
            doc = self.db.update(KIND, name, **fields)
        return _public(doc)

    def adopt(self) -> None:
        """After a restart, refresh addresses and states from the containers that still run."""
        for doc in self.db.list(KIND):
            if doc.get("state") == "terminated" or doc.get("external"):
                continue  # external instances stay as registered; they re-register when they restart
            info = self.runtime.inspect(doc["containerName"])
            if info is None or info.status != "running":
                self.db.update(KIND, doc["instanceId"], state="stopped" if info else "terminated")
                if info is None:
                    self._terminated(doc["instanceId"])
            else:
                self.db.update(KIND, doc["instanceId"], state="running", privateIpAddress=info.address,
                               appUrl=f"http://127.0.0.1:{info.ports.get(APP_PORT)}/",
                               hostPort=info.ports.get(APP_PORT))

    def terminate(self, instance_id: str) -> dict:
        doc = self._get(instance_id)
        if not doc.get("external"):  # an external instance is deregistered; its container is not ours
            self.runtime.remove(doc["containerName"])
        doc = self.db.update(KIND, doc["instanceId"], state="terminated")
        self._terminated(doc["instanceId"])
        return _public(doc)

    def _terminated(self, instance_id: str) -> None:
        for callback in self.on_terminate:
            callback(instance_id)

    def get(self, instance_id: str) -> dict:
        return _public(self._get(instance_id))

    def list(self, include_terminated: bool = False) -> list[dict]:
        return [_public(d) for d in self.db.list(KIND) if include_terminated or d.get("state") != "terminated"]

    def running(self) -> list[dict]:
        return [d for d in self.list() if d.get("state") == "running"]

    def matching(self, tag_filters: list[dict], tag_set: list[list[dict]] | None = None) -> list[dict]:
        """EC2 tag filters: KEY_ONLY, VALUE_ONLY or KEY_AND_VALUE; any filter may match. With a tag
        set (ec2TagSet), an instance must match at least one filter of every group in the set."""
        found = []
        for doc in self.running():
            tags = doc.get("tags", {})
            if tag_filters and not any(_filter_matches(f, tags) for f in tag_filters):
                continue
            if tag_set and not all(any(_filter_matches(f, tags) for f in group) for group in tag_set):
                continue
            if tag_filters or tag_set:
                found.append(doc)
        return found

    def named(self, names: list[str]) -> list[dict]:
        """Instances by id or Name, as on-premises instances are addressed; unknown names are refused."""
        found = []
        for name in names:
            doc = _public(self._get(name))
            if doc.get("state") != "running":
                raise ValueError(f"Instance {name} is {doc.get('state')}, not running")
            if doc["instanceId"] not in [d["instanceId"] for d in found]:
                found.append(doc)
        return found

    def check_token(self, instance_id: str, token: str | None) -> bool:
        doc = self.db.get(KIND, instance_id)
        return bool(doc and token and secrets.compare_digest(doc.get("_token", ""), token))

    def record_success(self, instance_id: str, group_id: str, deployment_id: str, revision: dict) -> None:
        doc = self._get(instance_id)
        last = dict(doc.get("lastSuccessful") or {})
        last[group_id] = deployment_id
        self.db.update(KIND, instance_id, lastSuccessful=last, revision=revision)

    def alive(self, instance_id: str) -> bool:
        doc = self._get(instance_id)
        if doc.get("external"):
            seen = max(self.last_seen(doc["instanceId"]) or 0, doc.get("lastSeen") or 0)
            return doc.get("state") == "running" and time.time() - seen < EXTERNAL_SILENCE
        info = self.runtime.inspect(doc["containerName"])
        return bool(info and info.status == "running")

    def _get(self, instance_id: str) -> dict:
        doc = self.db.get(KIND, instance_id)
        if doc is None:
            by_name = [d for d in self.db.list(KIND) if d.get("name") == instance_id]
            if not by_name:
                raise NotFound("Instance", instance_id)
            doc = by_name[-1]
        return doc


def _filter_matches(f: dict, tags: dict[str, str]) -> bool:
    kind = f.get("Type", "KEY_AND_VALUE")
    key, value = f.get("Key"), f.get("Value")
    return (kind == "KEY_ONLY" and key in tags) or (kind == "VALUE_ONLY" and value in tags.values()) or \
        (kind == "KEY_AND_VALUE" and tags.get(key) == value)


def _public(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if not k.startswith("_")}
