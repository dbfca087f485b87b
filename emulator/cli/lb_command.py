"""`pipelocal lb ...` (target groups, load balancers, registrations, health, weights) and
`pipelocal load` (a steady request rate at a URL or a load balancer, with a report)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from emulator.cli.control_calls import call, control_client

console = Console(highlight=False, soft_wrap=True)  # ARNs and URLs stay on one line
lb_app = typer.Typer(help="Load balancers and target groups (the Elastic Load Balancing stand-in).",
                     no_args_is_help=True)
_COLOURS = {"healthy": "green", "unhealthy": "red", "initial": "yellow", "draining": "cyan", "unused": "white"}


def register(app: typer.Typer) -> None:
    app.add_typer(lb_app, name="lb")
    app.command(name="load")(load)




def _pairs(items: list[str], what: str) -> dict[str, int]:
    """TG=N arguments as a dict of weights."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value.strip().isdigit():
            console.print(f"[red]pipelocal:[/red] {what} {item!r}: expected TARGET_GROUP=WEIGHT, e.g. blue=90")
            raise typer.Exit(2)
        out[name] = int(value)
    return out


def _targets_table(title: str, targets: list[dict]) -> Table | str:
    if not targets:
        return f"{title}: no targets registered"
    table = Table(title=title)
    for col in ("Instance", "State", "Reason", "Description"):
        table.add_column(col, overflow="fold")
    for t in targets:
        table.add_row(t["instanceId"], f"[{_COLOURS.get(t['state'], 'white')}]{t['state']}[/]", t["reason"] or "",
                      t["description"] or "")
    return table


def _show(doc: dict) -> None:
    total = sum(doc["weights"].values()) or 1
    console.print(f"[bold]{doc['loadBalancerName']}[/bold] ({doc['type']}) {doc['url'] or 'not listening'}")
    console.print(f"  {doc['loadBalancerArn']}")
    console.print("  weights: " + ", ".join(f"{tg} {w} ({100 * w / total:.0f}%)" for tg, w in doc["weights"].items()))
    for group in doc.get("targetGroups") or []:
        console.print(_targets_table(f"{group['name']} (weight {group['weight']})", group["targets"]))


@lb_app.command("create-target-group")
def create_target_group(
        name: str,
        path: str = typer.Option("/", "--path", help="Health check path."),
        interval: int = typer.Option(30, "--interval", help="Seconds between checks (5-300), on the time scale."),
        timeout: int = typer.Option(5, "--timeout", help="Seconds a check may take (2-120), less than the interval."),
        healthy_threshold: int = typer.Option(5, "--healthy-threshold", help="Passes for unhealthy -> healthy."),
        unhealthy_threshold: int = typer.Option(2, "--unhealthy-threshold", help="Failures for -> unhealthy."),
        matcher: str = typer.Option("200", "--matcher", help="Healthy codes: 200, 200,202 or 200-299."),
        deregistration_delay: int = typer.Option(300, "--deregistration-delay",
                                                 help="Seconds a deregistered target drains (0-3600)."),
) -> None:
    """Create a target group with health check settings (AWS's defaults unless given)."""
    doc = call(control_client().post, "/elb/target-groups", {
        "name": name, "deregistrationDelaySeconds": deregistration_delay,
        "healthCheck": {"path": path, "intervalSeconds": interval, "timeoutSeconds": timeout,
                        "healthyThresholdCount": healthy_threshold, "unhealthyThresholdCount": unhealthy_threshold,
                        "matcher": matcher}})
    hc = doc["healthCheck"]
    console.print(f"{doc['targetGroupName']}: {doc['targetGroupArn']}\n  health check GET {hc['path']} every "
                  f"{hc['intervalSeconds']} s (timeout {hc['timeoutSeconds']} s, healthy after "
                  f"{hc['healthyThresholdCount']}, unhealthy after {hc['unhealthyThresholdCount']}, codes "
                  f"{hc['matcher']}); deregistration delay {doc['deregistrationDelaySeconds']} s")


@lb_app.command("create")
def create(name: str,
           target_group: list[str] = typer.Option(None, "--target-group", "-t", help="Forward to it (repeatable)."),
           weight: list[str] = typer.Option(None, "--weight", "-w", help="TARGET_GROUP=WEIGHT (repeatable, 0-999)."),
           port: int = typer.Option(None, "--port", help="Listener port on 127.0.0.1 (default: a free one)."),
           classic: bool = typer.Option(False, "--classic",
                                        help="A classic load balancer: one implicit target group of its name.")) -> None:
    """Create a load balancer whose listener forwards to target groups."""
    payload: dict = {"name": name, "classic": classic}
    if port is not None:
        payload["port"] = port
    if weight:
        payload["weights"] = _pairs(weight, "--weight")
    if target_group:
        payload["targetGroups"] = target_group
    _show(call(control_client().post, "/elb/load-balancers", payload))


@lb_app.command("list")
def list_all() -> None:
    """Load balancers with their URLs and weights, and target groups with their health."""
    client = control_client()
    balancers = call(client.get, "/elb/load-balancers")["loadBalancers"]
    groups = call(client.get, "/elb/target-groups")["targetGroups"]
    table = Table(title="Load balancers")
    for col in ("Name", "Type", "URL", "Weights"):
        table.add_column(col, overflow="fold")
    for b in balancers:
        table.add_row(b["loadBalancerName"], b["type"], b["url"] or "-",
                      ", ".join(f"{tg}={w}" for tg, w in b["weights"].items()))
    console.print(table)
    table = Table(title="Target groups")
    for col in ("Name", "Targets", "Healthy", "Health check", "Used by"):
        table.add_column(col, overflow="fold")
    for g in groups:
        hc = g["healthCheck"]
        table.add_row(g["targetGroupName"], str(g["targetCount"]), str(g["healthyCount"]),
                      f"GET {hc['path']} every {hc['intervalSeconds']} s", ", ".join(g["loadBalancerNames"]) or "-")
    console.print(table)


@lb_app.command("describe")
def describe(name: str) -> None:
    """One load balancer: URL, ARN, weights and each target group's targets."""
    _show(call(control_client().get, f"/elb/load-balancers/{name}"))


@lb_app.command("register")
def register_targets(target_group: str, instances: list[str] = typer.Argument(..., help="Instance ids or names.")) -> None:
    """Register instances in a target group (health checks start)."""
    doc = call(control_client().post, f"/elb/target-groups/{target_group}/register", {"instanceIds": instances})
    console.print(_targets_table(target_group, doc["targets"]))


@lb_app.command("deregister")
def deregister_targets(target_group: str,
                       instances: list[str] = typer.Argument(..., help="Instance ids or names.")) -> None:
    """Deregister instances: they drain for the deregistration delay, then leave the group."""
    doc = call(control_client().post, f"/elb/target-groups/{target_group}/deregister", {"instanceIds": instances})
    console.print(_targets_table(target_group, doc["targets"]))


@lb_app.command("health")
def health(target_group: str) -> None:
    """Each target's state with AWS's reason code and description (DescribeTargetHealth)."""
    doc = call(control_client().get, f"/elb/target-groups/{target_group}/health")
    console.print(_targets_table(target_group, doc["targets"]))


@lb_app.command("set-weights")
def set_weights(name: str, weights: list[str] = typer.Argument(..., help="TARGET_GROUP=WEIGHT ... (0-999).")) -> None:
    """Replace the listener's weights between target groups, e.g. `blue=90 green=10`."""
    _show(call(control_client().post, f"/elb/load-balancers/{name}/weights", {"weights": _pairs(weights, "weight")}))


@lb_app.command("delete")
def delete(name: str) -> None:
    """Delete a load balancer (its listener stops)."""
    call(control_client().delete, f"/elb/load-balancers/{name}")
    console.print(f"deleted load balancer {name}")


@lb_app.command("delete-target-group")
def delete_target_group(name: str) -> None:
    """Delete a target group no load balancer forwards to."""
    call(control_client().delete, f"/elb/target-groups/{name}")
    console.print(f"deleted target group {name}")


def load(target: str = typer.Argument(..., help="A URL, or the name of a load balancer."),
         rate: float = typer.Option(100.0, "--rate", help="Requests per second, kept steady (open loop)."),
         duration: float = typer.Option(30.0, "--duration", help="Seconds; 0 runs until Ctrl-C or SIGTERM."),
         timeout: float = typer.Option(5.0, "--timeout", help="Seconds per request."),
         json_path: Path = typer.Option(None, "--json", help="Also write the report as JSON to this file.")) -> None:
    """Send a steady request rate and report sent, answered, failed, p50/p99 latency and which
    target group and version answered."""
    from emulator.services.elb.load_generator import render, run

    url = target if "://" in target else call(control_client().get, f"/elb/load-balancers/{target}")["url"]
    try:
        report = run(url, rate, duration, timeout, json_path)
    except ValueError as exc:
        console.print(f"[red]pipelocal:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(render(report), markup=False)
