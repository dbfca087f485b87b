"""Stage conditions (beforeEntry, onSuccess, onFailure): their structure and how one decides.

A condition is met when every one of its rules succeeds; its result (FAIL, SKIP, ROLLBACK, RETRY)
applies when it is not met. Rules see the outside world only through the functions passed in (an
alarm's state, a wait in emulated minutes), so the decision stays free of services and testable.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

# condition kind -> the results AWS allows for it (stage-conditions page; onFailure RETRY per CloudFormation)
RESULTS: dict[str, tuple[str, ...]] = {
    "beforeEntry": ("FAIL", "SKIP"),
    "onSuccess": ("ROLLBACK", "FAIL"),
    "onFailure": ("ROLLBACK", "RETRY"),
}
# rule provider -> required configuration keys
RULE_PROVIDERS: dict[str, set[str]] = {"CloudWatchAlarm": {"AlarmName"}}
ALARM_STATES = ("ALARM", "OK", "INSUFFICIENT_DATA")
_RULE_NAME = re.compile(r"^[A-Za-z0-9.@\-_]{1,100}$")

AlarmState = Callable[[str], "str | None"]  # alarm name -> its state, None if there is no such alarm
Wait = Callable[[float], bool]  # waits that many emulated seconds; False if the execution stopped meanwhile


def check(stage: dict, name: str, fail) -> None:
    """The condition lists of a stage: at most one condition, 1-5 rules of a known provider with
    their required configuration, and a result the condition's kind allows."""
    for kind, allowed in RESULTS.items():
        block = stage.get(kind)
        if block is None:
            continue
        where = f"stage {name}: {kind}"
        if not isinstance(block, dict):
            fail(where, "a mapping with conditions", stage, kind)
        conditions = block.get("conditions")
        if conditions is None:
            if kind != "onFailure":
                fail(f"{where}.conditions", "a list of one condition {result, rules} (conditions is required)",
                     stage, kind)
            continue
        if not isinstance(conditions, list) or len(conditions) != 1:
            fail(f"{where}.conditions", "a list of exactly one condition (at most 1 condition per list)", block,
                 "conditions")
        condition = conditions[0]
        if not isinstance(condition, dict):
            fail(f"{where}.conditions[0]", "a mapping {result, rules}", conditions, 0)
        if condition.get("result") not in allowed:
            fail(f"{where}.conditions[0].result", f"{' or '.join(allowed)} for a {kind} condition "
                 f"(got {condition.get('result')!r})", condition, "result")
        rules = condition.get("rules")
        if not isinstance(rules, list) or not 1 <= len(rules) <= 5:
            fail(f"{where}.conditions[0].rules", "a list of 1-5 rules", condition, "rules")
        seen: set[str] = set()
        for index, rule in enumerate(rules):
            _check_rule(rule, f"{where}.conditions[0].rules[{index}]", rules, index, seen, fail)


def _check_rule(rule: Any, at: str, rules: list, index: int, seen: set[str], fail) -> None:
    if not isinstance(rule, dict):
        fail(at, "a mapping {name, ruleTypeId, configuration}", rules, index)
    rule_name = rule.get("name")
    if not isinstance(rule_name, str) or not _RULE_NAME.match(rule_name):
        fail(f"{at}.name", "a rule name of 1-100 characters from [A-Za-z0-9.@-_]", rule, "name")
    if rule_name in seen:
        fail(f"{at}.name", f"a rule name unique in its condition ({rule_name!r} is used twice)", rule, "name")
    seen.add(rule_name)
    at = f"{at} ({rule_name})"
    type_id = rule.get("ruleTypeId")
    if not isinstance(type_id, dict):
        fail(f"{at}.ruleTypeId", "{category: Rule, owner: AWS, provider, version: 1}", rule, "ruleTypeId")
    if type_id.get("category") != "Rule":
        fail(f"{at}.ruleTypeId.category", "Rule", type_id, "category")
    provider = type_id.get("provider")
    if provider not in RULE_PROVIDERS:
        fail(f"{at}.ruleTypeId.provider", f"a supported rule provider ({', '.join(sorted(RULE_PROVIDERS))}; "
             f"got {provider!r})", type_id, "provider")
    if type_id.get("owner", "AWS") != "AWS" or str(type_id.get("version", "1")) != "1":
        fail(f"{at}.ruleTypeId", f"owner AWS and version 1 for {provider}", rule, "ruleTypeId")
    config = rule.get("configuration") or {}
    if not isinstance(config, dict):
        fail(f"{at}.configuration", "a mapping of strings", rule, "configuration")
    for key in sorted(RULE_PROVIDERS[provider] - set(config)):
        fail(f"{at}.configuration.{key}", f"{key} is required for rule provider {provider}", rule, "configuration")
    try:
        alarm_rule(rule)
    except ValueError as exc:
        key, _, expected = str(exc).partition(": ")
        fail(f"{at}.configuration.{key}", expected, config, key)


@dataclass(frozen=True)
class AlarmRule:
    name: str
    alarm: str
    states: tuple[str, ...]  # the alarm states that make the rule fail
    wait_minutes: int


def alarm_rule(rule: dict) -> AlarmRule:
    """A CloudWatchAlarm rule's configuration; ValueError('Key: expected') if a value is malformed."""
    config = rule.get("configuration") or {}
    alarm = config.get("AlarmName")
    if not isinstance(alarm, str) or not 1 <= len(alarm) <= 255:
        raise ValueError("AlarmName: the name of a CloudWatch alarm (1-255 characters)")
    raw = config.get("AlarmStates", "ALARM")
    states = tuple(s.strip() for s in raw.split(",") if s.strip()) if isinstance(raw, str) else ()
    if not states or any(s not in ALARM_STATES for s in states):
        raise ValueError(f"AlarmStates: a comma-separated list of {', '.join(ALARM_STATES)} (got {raw!r})")
    wait = config.get("WaitTime", "0")
    if isinstance(wait, bool) or not str(wait).strip().isdigit():
        raise ValueError(f"WaitTime: a whole number of minutes (got {wait!r})")
    return AlarmRule(rule.get("name", ""), alarm, states, int(str(wait).strip()))


@dataclass
class RuleOutcome:
    name: str
    status: str  # RuleExecutionStatus: Succeeded | Failed | Abandoned
    summary: str
    started: float
    ended: float
    rule_execution_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def as_state(self) -> dict:
        return {"ruleName": self.name, "latestExecution": {
            "ruleExecutionId": self.rule_execution_id, "status": self.status, "summary": self.summary,
            "lastStatusChange": self.ended}}


@dataclass
class ConditionOutcome:
    kind: str
    result: str  # what applies when the condition is not met
    status: str  # ConditionExecutionStatus: Succeeded | Failed | Abandoned
    rules: list[RuleOutcome]
    ended: float = field(default_factory=time.time)

    @property
    def met(self) -> bool:
        return self.status == "Succeeded"

    @property
    def summary(self) -> str:
        unmet = [f"rule {r.name}: {r.summary}" for r in self.rules if r.status != "Succeeded"]
        return "; ".join(unmet) if unmet else "all rules succeeded"

    def as_state(self) -> dict:
        """GetPipelineState's StageConditionState."""
        execution = {"status": self.status, "summary": self.summary}
        return {"latestExecution": execution, "conditionStates": [{
            "latestExecution": {**execution, "lastStatusChange": self.ended},
            "ruleStates": [r.as_state() for r in self.rules]}]}


def evaluate(kind: str, condition: dict, alarm_state: AlarmState, wait: Wait) -> ConditionOutcome:
    """Runs the condition's rules in order; a stop during a rule's wait abandons the rest."""
    outcomes: list[RuleOutcome] = []
    for rule in condition["rules"]:
        outcome = _cloudwatch_alarm(alarm_rule(rule), alarm_state, wait)
        outcomes.append(outcome)
        if outcome.status == "Abandoned":
            return ConditionOutcome(kind, condition["result"], "Abandoned", outcomes)
    met = all(o.status == "Succeeded" for o in outcomes)
    return ConditionOutcome(kind, condition["result"], "Succeeded" if met else "Failed", outcomes)


def _cloudwatch_alarm(rule: AlarmRule, alarm_state: AlarmState, wait: Wait) -> RuleOutcome:
    """Fails while the alarm is in one of the monitored states. If it is at the first check and
    WaitTime is set, the rule waits that long for the state to change and checks once more."""
    started = time.time()
    monitored = ", ".join(rule.states)
    state = alarm_state(rule.alarm)
    if state is None:
        return RuleOutcome(rule.name, "Failed", f"CloudWatch alarm {rule.alarm!r} does not exist", started,
                           time.time())
    waited = ""
    if state in rule.states and rule.wait_minutes:
        if not wait(rule.wait_minutes * 60):
            return RuleOutcome(rule.name, "Abandoned", f"the execution stopped while waiting for alarm "
                               f"{rule.alarm!r} to leave {state}", started, time.time())
        waited = f" after waiting WaitTime {rule.wait_minutes} min"
        state = alarm_state(rule.alarm)
        if state is None:
            return RuleOutcome(rule.name, "Failed", f"CloudWatch alarm {rule.alarm!r} was deleted{waited}",
                               started, time.time())
    if state in rule.states:
        return RuleOutcome(rule.name, "Failed", f"CloudWatch alarm {rule.alarm!r} is in {state}{waited} "
                           f"(monitored states: {monitored})", started, time.time())
    return RuleOutcome(rule.name, "Succeeded", f"CloudWatch alarm {rule.alarm!r} is in {state}{waited} "
                       f"(monitored states: {monitored})", started, time.time())
