"""What CodeDeploy asks CloudWatch during a deployment: which of a group's alarms are in ALARM.

A deployment group's alarmConfiguration names up to 10 alarms; an alarm that cannot be read
stops the deployment too, unless ignorePollAlarmFailure is set (AWS's rule).
"""

from __future__ import annotations

from emulator.domain.alarm_evaluation import ALARM
from emulator.domain.statuses import METRIC_ALARM
from emulator.services.cloudwatch.time_scale import TimeScale
from emulator.state.database import Database


class DeploymentAlarmMonitor:
    def __init__(self, db: Database, scale: TimeScale, bake_seconds: float = 300.0):
        self.db = db
        self.scale = scale
        self.bake_seconds = bake_seconds  # emulated seconds a deployment keeps watching after its last instance

    def watched(self, group: dict) -> list[str]:
        config = group.get("alarmConfiguration") or {}
        if not config.get("enabled"):
            return []
        return [a["name"] for a in config.get("alarms") or [] if a.get("name")]

    def alarms_in_alarm(self, group: dict) -> list[str]:
        """Names of the group's alarms in ALARM, plus those that could not be read (unless ignored)."""
        config = group.get("alarmConfiguration") or {}
        found = []
        for name in self.watched(group):
            doc = self.db.get(METRIC_ALARM, name)
            if doc is None:
                if not config.get("ignorePollAlarmFailure"):
                    found.append(f"{name} (does not exist)")
            elif doc.get("StateValue") == ALARM:
                found.append(name)
        return found

    def bake_time(self, group: dict) -> float:
        """Real seconds to keep watching after the last instance, 0 for a group without alarms."""
        return self.scale.real(self.bake_seconds) if self.watched(group) else 0.0
