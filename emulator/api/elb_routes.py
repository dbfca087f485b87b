"""The load balancer stand-in's management routes for the CLI and console: target groups,
load balancers, registrations, target health and weights."""

from __future__ import annotations

from fastapi import APIRouter, Body

from emulator.control_plane import ControlPlane


def _only(payload: dict, allowed: set[str], what: str) -> dict:
    unknown = set(payload) - allowed
    if unknown:
        raise ValueError(f"{what}: unknown field(s) {', '.join(sorted(unknown))}; expected any of "
                         f"{', '.join(sorted(allowed))}")
    return payload


def _instance_ids(payload: dict) -> list[str]:
    ids = payload.get("instanceIds")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise ValueError("instanceIds: expected a list of instance ids or Name tags")
    return ids


def elb_router(cp: ControlPlane) -> APIRouter:
    r = APIRouter(prefix="/api/elb")
    lb = cp.load_balancing

    def described(name: str) -> dict:
        doc = lb.get_load_balancer(name)
        doc["targetGroups"] = [{"name": tg, "weight": weight, "targets": lb.targets(tg)}
                               for tg, weight in doc["weights"].items()]
        return doc

    @r.post("/target-groups")
    def create_target_group(payload: dict = Body(...)):
        _only(payload, {"name", "healthCheck", "deregistrationDelaySeconds"}, "target group")
        return lb.create_target_group(payload.get("name"), payload.get("healthCheck"),
                                      payload.get("deregistrationDelaySeconds"))

    @r.get("/target-groups")
    def list_target_groups():
        return {"targetGroups": lb.list_target_groups()}

    @r.get("/target-groups/{name}")
    def get_target_group(name: str):
        return {**lb.get_target_group(name), "targets": lb.targets(name)}

    @r.delete("/target-groups/{name}")
    def delete_target_group(name: str):
        lb.delete_target_group(name)
        return {"deleted": name}

    @r.get("/target-groups/{name}/health")
    def target_health(name: str):
        return {"targetGroupName": name, "targets": lb.targets(name)}

    @r.post("/target-groups/{name}/register")
    def register(name: str, payload: dict = Body(...)):
        _only(payload, {"instanceIds"}, "register")
        lb.get_target_group(name)
        instances = cp.fleet.named(_instance_ids(payload))
        for instance in instances:
            lb.register(name, instance)
        return {"targetGroupName": name, "registered": [i["instanceId"] for i in instances],
                "targets": lb.targets(name)}

    @r.post("/target-groups/{name}/deregister")
    def deregister(name: str, payload: dict = Body(...)):
        _only(payload, {"instanceIds"}, "deregister")
        ids = []
        for given in _instance_ids(payload):
            try:
                ids.append(cp.fleet.get(given)["instanceId"])
            except LookupError:
                ids.append(given)  # a terminated instance may still be registered by its id
        for instance_id in ids:
            lb.deregister(name, instance_id)
        return {"targetGroupName": name, "deregistered": ids, "targets": lb.targets(name)}

    @r.post("/load-balancers")
    def create_load_balancer(payload: dict = Body(...)):
        _only(payload, {"name", "targetGroups", "weights", "port", "classic"}, "load balancer")
        doc = lb.create_load_balancer(payload.get("name"), target_groups=payload.get("targetGroups"),
                                      weights=payload.get("weights"), port=payload.get("port"),
                                      classic=bool(payload.get("classic")))
        return described(doc["loadBalancerName"])

    @r.get("/load-balancers")
    def list_load_balancers():
        return {"loadBalancers": lb.list_load_balancers()}

    @r.get("/load-balancers/{name}")
    def get_load_balancer(name: str):
        return described(name)

    @r.delete("/load-balancers/{name}")
    def delete_load_balancer(name: str):
        lb.delete_load_balancer(name)
        return {"deleted": name}

    @r.post("/load-balancers/{name}/weights")
    def set_weights(name: str, payload: dict = Body(...)):
        _only(payload, {"weights"}, "weights")
        lb.set_weights(name, payload.get("weights"))
        return described(name)

    return r
