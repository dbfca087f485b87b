"""`pipelocal alarms` (list, history, set-state, time scale) and `pipelocal why-rollback`."""

from __future__ import annotations

import datetime as dt

import typer
from rich.console import Console
from rich.table import Table

from emulator.cli.control_calls import call, control_client

console = Console(highlight=False)
alarms_app = typer.Typer(help="CloudWatch metric alarms, their history, and the time scale.", invoke_without_command=True)
_COLOURS = {"OK": "green", "ALARM": "red", "INSUFFICIENT_DATA": "yellow"}


def register(app: typer.Typer) -> None:
    app.add_typer(alarms_app, name="alarms")
    app.command(name="why-rollback")(why_rollback)




def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%H:%M:%S") if t else "-"


@alarms_app.callback()
def alarms(ctx: typer.Context) -> None:
    """List the alarms with their state (a subcommand does more)."""
    if ctx.invoked_subcommand:
        return
    doc = call(control_client().get, "/cloudwatch/alarms")
    table = Table(title=f"Alarms (time scale {doc['timeScale']:g}x)")
    for col in ("Alarm", "State", "Metric", "Condition", "Period", "Since", "Reason"):
        table.add_column(col, overflow="fold")
    for a in doc["alarms"]:
        state = a["StateValue"]
        stat = a.get("Statistic") or a.get("ExtendedStatistic")
        dims = ",".join(f"{d['Name']}={d['Value']}" for d in a.get("Dimensions") or [])
        table.add_row(a["AlarmName"], f"[{_COLOURS.get(state, 'white')}]{state}[/]",
                      f"{a['Namespace']} {a['MetricName']} {dims}",
                      f"{stat} {a['ComparisonOperator']} {a['Threshold']:g}, {a['DatapointsToAlarm']} of "
                      f"{a['EvaluationPeriods']}, missing: {a['TreatMissingData']}",
                      a["periodShown"], _when(a.get("StateTransitionedTimestamp")), a.get("StateReason", ""))
    console.print(table)


@alarms_app.command("history")
def history(name: str = typer.Argument(..., help="Alarm name.")) -> None:
    """Every change of one alarm, newest first, with its reason."""
    doc = call(control_client().get, f"/cloudwatch/alarms/{name}/history")
    table = Table(title=f"History of {name}")
    for col in ("Time", "Type", "Summary", "Reason"):
        table.add_column(col, overflow="fold")
    for item in doc["items"]:
        reason = (item["HistoryData"].get("newState") or {}).get("stateReason", "")
        table.add_row(_when(item["Timestamp"]), item["HistoryItemType"], item["HistorySummary"], reason)
    console.print(table)


@alarms_app.command("set-state")
def set_state(name: str, state: str = typer.Argument(..., help="OK, ALARM or INSUFFICIENT_DATA"),
              reason: str = typer.Option("set by the user", "--reason")) -> None:
    """SetAlarmState: holds until the alarm's next evaluation."""
    doc = call(control_client().post, f"/cloudwatch/alarms/{name}/state", {"state": state, "reason": reason})
    console.print(f"{name}: {doc['StateValue']}")


@alarms_app.command("time-scale")
def time_scale(factor: float = typer.Argument(None, help="60 = one minute passes in one second."),
               traffic_rate: float = typer.Option(None, "--traffic-rate", help="Requests/s per instance.")) -> None:
    """Show or change the time scale (and the fleet traffic rate) of the running control plane."""
    client = control_client()
    changes = {k: v for k, v in (("timeScale", factor), ("trafficRate", traffic_rate)) if v is not None}
    doc = call(client.post, "/cloudwatch/settings", changes) if changes else call(client.get, "/cloudwatch/settings")
    console.print(f"time scale {doc['timeScale']['factor']:g}x ({doc['timeScale']['description']}); "
                  f"traffic {doc['trafficRate']:g} requests/s per instance; deployment bake time {doc['deployBake']}")


def why_rollback(deployment_id: str = typer.Argument(..., help="The stopped deployment or its rollback.")) -> None:
    """Why a deployment rolled back: the timeline, the breaching datapoints and what is served now."""
    doc = call(control_client().get, f"/cloudwatch/why-rollback/{deployment_id}")
    error = (doc.get("errorInformation") or {}).get("message", "")
    console.print(f"[bold]{doc['deploymentId']}[/bold] {doc['status']}: {error}")
    if doc.get("rollbackDeploymentId"):
        console.print(f"rolled back by {doc['rollbackDeploymentId']} ({doc['rollbackStatus']}); "
                      f"alarms watched: {', '.join(doc['alarms']) or 'none'}; time scale {doc['timeScale']:g}x")
    else:
        console.print("[yellow]no rollback deployment was started for this deployment[/yellow]")
    table = Table(title="Timeline")
    for col in ("Time (UTC)", "Source", "Event"):
        table.add_column(col, overflow="fold")
    for e in doc["timeline"]:
        table.add_row(e["at"], e["source"], e["text"])
    console.print(table)
    if doc["breachingDatapoints"]:
        console.print("Breaching datapoints: " + ", ".join(
            f"{p['alarm']} {p['value']:g} at {p['at']}" for p in doc["breachingDatapoints"]))
    for s in doc["servedNow"]:
        console.print(f"served now by {s['name'] or s['instanceId']}: HTTP {s.get('status')} "
                      f"{s.get('title') or s.get('error') or ''} (revision of {s.get('revisionDeployment')})")
