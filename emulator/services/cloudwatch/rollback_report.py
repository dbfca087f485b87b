"""Why a deployment rolled back: one timeline from the deployment, its instances' lifecycle
events, the alarm changes and the datapoints that breached, the stop, the rollback deployment,
and what the fleet serves now."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from emulator.services.cloudwatch.alarms import Alarms


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%H:%M:%S.%f")[:-3] if t else "?"


def _served(url: str | None) -> dict:
    """Status and page title the app answers with now (loopback app URLs only)."""
    if not url or urllib.parse.urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
        return {"status": None, "title": None}
    try:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                status, body = response.status, response.read(65536).decode(errors="replace")
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read(65536).decode(errors="replace")
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return {"status": None, "title": None, "error": str(exc)}
    title = re.search(r"<title>(.*?)</title>", body, re.S | re.I)
    return {"status": status, "title": title.group(1).strip() if title else body.strip()[:80]}


def rollback_report(deployment_id: str, deployments: Any, apps: Any, fleet: Any, alarms: Alarms,
                    monitor: Any) -> dict:
    """`deployment_id` may be the stopped deployment or the rollback deployment it caused."""
    doc = deployments.get(deployment_id)
    info = doc.get("rollbackInfo") or {}
    if doc.get("creator") == "codeDeployRollback" and info.get("rollbackTriggeringDeploymentId"):
        doc = deployments.get(info["rollbackTriggeringDeploymentId"])
        info = doc.get("rollbackInfo") or {}
    rollback = deployments.get(info["rollbackDeploymentId"]) if info.get("rollbackDeploymentId") else None
    group = apps.get_group(doc["applicationName"], doc["deploymentGroupName"])
    events: list[dict] = []

    def add(t: float | None, source: str, text: str, **extra) -> None:
        if t:
            events.append({"time": t, "at": _when(t), "source": source, "text": text, **extra})

    def deployment_events(d: dict, label: str) -> None:
        add(d.get("createTime"), d["deploymentId"], f"{label} created ({d.get('description') or 'no description'})")
        add(d.get("startTime"), d["deploymentId"], f"{label} started")
        for target in deployments.targets(d["deploymentId"]):
            for e in target.get("lifecycleEvents", []):
                if e.get("status") in ("Succeeded", "Failed") and e.get("endTime"):
                    add(e["endTime"], target["instanceId"], f"{e['lifecycleEventName']} {e['status']}",
                        deploymentId=d["deploymentId"])
        end = d.get("completeTime") or d.get("endTime")
        if d.get("status") in ("Succeeded", "Failed", "Stopped"):
            message = (d.get("errorInformation") or {}).get("message")
            add(end, d["deploymentId"], f"{label} {d['status']}" + (f": {message}" if message else ""))

    deployment_events(doc, "Deployment")
    start = doc.get("createTime") or 0
    finish = (rollback or doc).get("completeTime") or (rollback or doc).get("endTime") or 1e18
    breached: list[dict] = []
    for name in monitor.watched(group):
        for item in alarms.history({"AlarmName": name, "ScanBy": "TimestampAscending", "MaxRecords": 1000}):
            if item["HistoryItemType"] != "StateUpdate" or not start - 600 <= item["Timestamp"] <= finish:
                continue
            data = json.loads(item["HistoryData"])
            add(item["Timestamp"], f"alarm {name}", f"{item['HistorySummary']}: {data['newState']['stateReason']}")
            if data["newState"]["stateValue"] == "ALARM":
                for point in data.get("breachingDatapoints", []):
                    breached.append({"alarm": name, "timestamp": point["timestamp"], "at": _when(point["timestamp"]),
                                     "value": point["value"]})
    if rollback:
        deployment_events(rollback, "Rollback deployment")
    events.sort(key=lambda e: e["time"])
    served = []
    for target in deployments.targets(doc["deploymentId"]):
        inst = fleet.get(target["instanceId"])
        served.append({"instanceId": inst["instanceId"], "name": inst.get("name"),
                       "revisionDeployment": (inst.get("revision") or {}).get("deploymentId"),
                       **_served(inst.get("appUrl"))})
    return {"deploymentId": doc["deploymentId"], "status": doc["status"],
            "errorInformation": doc.get("errorInformation"), "rollbackDeploymentId": info.get("rollbackDeploymentId"),
            "rollbackStatus": rollback["status"] if rollback else None, "alarms": monitor.watched(group),
            "breachingDatapoints": sorted(breached, key=lambda p: p["timestamp"]), "timeline": events,
            "servedNow": served, "timeScale": alarms.scale.factor}
