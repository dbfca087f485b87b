"""Names and ARNs as Elastic Load Balancing spells them, and the checks AWS makes on names."""

from __future__ import annotations

import re
import secrets

_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")


def check_name(kind: str, name) -> str:
    """Target group and load balancer names: 1-32 letters, digits and hyphens, no hyphen at either end."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{kind} name {name!r}: expected 1 to 32 letters, digits or hyphens, not starting or "
                         f"ending with a hyphen")
    if kind == "load balancer" and name.lower().startswith("internal-"):
        raise ValueError(f"load balancer name {name!r}: must not start with \"internal-\"; choose another name")
    return name


def new_id() -> str:
    return secrets.token_hex(8)


def target_group_arn(region: str, account: str, name: str, id: str) -> str:
    return f"arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{name}/{id}"


def load_balancer_arn(region: str, account: str, name: str, id: str) -> str:
    return f"arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/{name}/{id}"


def listener_arn(load_balancer_arn: str) -> str:
    """arn:…:listener/app/NAME/LB-ID/LISTENER-ID, as ELBv2 names a load balancer's listener."""
    return load_balancer_arn.replace(":loadbalancer/", ":listener/", 1) + "/" + new_id()


def dimension(arn: str) -> str:
    """The CloudWatch dimension value: the ARN's resource part after "loadbalancer/" (app/NAME/ID),
    or from "targetgroup/" on (targetgroup/NAME/ID)."""
    resource = arn.split(":", 5)[5]
    return resource[len("loadbalancer/"):] if resource.startswith("loadbalancer/") else resource
