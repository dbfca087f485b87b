"""Stage conditions: their structure (InvalidStructure naming the stage), how a CloudWatchAlarm rule
decides (with WaitTime), and what each result does to an execution; RollbackStage's restrictions."""

from __future__ import annotations

import copy
import time

import pytest

from emulator.domain import stage_conditions
from emulator.domain.pipeline import InvalidStructure, validate_pipeline
from emulator.orchestration import Orchestrator
from emulator.services.cloudwatch.time_scale import TimeScale
from emulator.services.codepipeline.action_providers import ActionOutcome
from emulator.services.codepipeline.executions import Executions, RollbackRefused, RollbackTargetOutdated
from emulator.services.codepipeline.pipelines import Pipelines
from emulator.state.database import Database


def rule(name: str = "Alarm", **configuration) -> dict:
    return {"name": name, "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "CloudWatchAlarm",
                                         "version": "1"},
            "configuration": {"AlarmName": "deploy-health", **configuration}}


def condition(result: str, *rules: dict) -> dict:
    return {"conditions": [{"result": result, "rules": list(rules) or [rule()]}]}


BASE = {
    "name": "conditions", "roleArn": "arn:aws:iam::000000000000:role/cp", "pipelineType": "V2",
    "artifactStore": {"type": "S3", "location": "bucket"},
    "stages": [
        {"name": "Source", "actions": [{
            "name": "Src", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
            "configuration": {"S3Bucket": "b", "S3ObjectKey": "k"}, "outputArtifacts": [{"name": "Code"}]}]},
        {"name": "Build", "actions": [{
            "name": "Make", "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild",
                                             "version": "1"},
            "configuration": {"ProjectName": "p"}, "inputArtifacts": [{"name": "Code"}],
            "outputArtifacts": [{"name": "Built"}]}]},
        {"name": "Deploy", "actions": [{
            "name": "Ship", "actionTypeId": {"category": "Test", "owner": "AWS", "provider": "CodeBuild",
                                             "version": "1"},
            "configuration": {"ProjectName": "p"}, "inputArtifacts": [{"name": "Built"}]}]},
    ],
}


def declaration(**stage_changes: dict) -> dict:
    decl = copy.deepcopy(BASE)
    for stage in decl["stages"]:
        stage.update(stage_changes.get(stage["name"], {}))
    return decl


# ---------------------------------------------------------------- structure

def test_conditions_of_every_kind_are_valid_on_v2():
    decl = validate_pipeline(declaration(
        Build={"onSuccess": condition("ROLLBACK"), "onFailure": condition("ROLLBACK")},
        Deploy={"beforeEntry": condition("SKIP", rule("A"), rule("B", AlarmStates="ALARM,INSUFFICIENT_DATA",
                                                                      WaitTime="2"))}))
    assert decl["stages"][2]["beforeEntry"]["conditions"][0]["rules"][1]["configuration"]["WaitTime"] == "2"


@pytest.mark.parametrize("stage, changes, key, expected", [
    ("Deploy", {"beforeEntry": {}}, "stage Deploy: beforeEntry.conditions", "conditions is required"),
    ("Deploy", {"beforeEntry": {"conditions": [condition("FAIL")["conditions"][0]] * 2}},
     "stage Deploy: beforeEntry.conditions", "at most 1 condition"),
    ("Deploy", {"beforeEntry": condition("ROLLBACK")}, "stage Deploy: beforeEntry.conditions[0].result",
     "FAIL or SKIP"),
    ("Build", {"onSuccess": condition("SKIP")}, "stage Build: onSuccess.conditions[0].result", "ROLLBACK or FAIL"),
    ("Build", {"onFailure": condition("FAIL")}, "stage Build: onFailure.conditions[0].result", "ROLLBACK or RETRY"),
    ("Deploy", {"beforeEntry": {"conditions": [{"result": "FAIL", "rules": []}]}},
     "stage Deploy: beforeEntry.conditions[0].rules", "1-5 rules"),
    ("Deploy", {"beforeEntry": condition("FAIL", *[rule(f"R{i}") for i in range(6)])},
     "stage Deploy: beforeEntry.conditions[0].rules", "1-5 rules"),
    ("Deploy", {"beforeEntry": condition("FAIL", rule("Same"), rule("Same"))},
     "stage Deploy: beforeEntry.conditions[0].rules[1].name", "used twice"),
    ("Deploy", {"beforeEntry": condition("FAIL", {**rule(), "ruleTypeId": {"category": "Rule",
                                                                           "provider": "LambdaInvoke"}})},
     "stage Deploy: beforeEntry.conditions[0].rules[0] (Alarm).ruleTypeId.provider", "CloudWatchAlarm"),
    ("Deploy", {"beforeEntry": condition("FAIL", {**rule(), "configuration": {}})},
     "stage Deploy: beforeEntry.conditions[0].rules[0] (Alarm).configuration.AlarmName", "required"),
    ("Deploy", {"beforeEntry": condition("FAIL", rule(AlarmStates="ALARM,BROKEN"))},
     "stage Deploy: beforeEntry.conditions[0].rules[0] (Alarm).configuration.AlarmStates", "ALARM, OK"),
    ("Deploy", {"beforeEntry": condition("FAIL", rule(WaitTime="soon"))},
     "stage Deploy: beforeEntry.conditions[0].rules[0] (Alarm).configuration.WaitTime", "minutes"),
    ("Source", {"onSuccess": condition("ROLLBACK")}, "stage Source: onSuccess.conditions[0].result",
     "source stage"),
])
def test_bad_conditions_name_the_stage_and_key(stage, changes, key, expected):
    with pytest.raises(InvalidStructure) as info:
        validate_pipeline(declaration(**{stage: changes}))
    assert info.value.key == key and expected in info.value.expected
    assert f"stage {stage}" in str(info.value)


def test_conditions_need_v2_and_rollback_conditions_refuse_parallel_mode():
    with pytest.raises(InvalidStructure, match="V2 feature"):
        validate_pipeline({**declaration(Deploy={"beforeEntry": condition("FAIL")}), "pipelineType": "V1"})
    with pytest.raises(InvalidStructure, match="PARALLEL"):
        validate_pipeline({**declaration(Build={"onFailure": condition("ROLLBACK")}), "executionMode": "PARALLEL"})


# ---------------------------------------------------------------- how a rule decides

class Alarms:
    """Alarm states in order: each look-up takes the next one (the last one repeats)."""

    def __init__(self, *states: str | None):
        self.states = list(states)
        self.asked = 0

    def __call__(self, name: str) -> str | None:
        self.asked += 1
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


def test_an_alarm_outside_the_monitored_states_passes_at_once():
    waits = []
    outcome = stage_conditions.evaluate("beforeEntry", condition("FAIL", rule(WaitTime="5"))["conditions"][0],
                                        Alarms("OK"), lambda s: waits.append(s) or True)
    assert outcome.met and outcome.status == "Succeeded" and waits == []
    assert outcome.as_state()["conditionStates"][0]["ruleStates"][0]["latestExecution"]["status"] == "Succeeded"


def test_an_alarm_in_alarm_fails_the_rule_with_the_reason():
    outcome = stage_conditions.evaluate("beforeEntry", condition("FAIL")["conditions"][0], Alarms("ALARM"),
                                        lambda s: pytest.fail("no WaitTime, no wait"))
    assert not outcome.met and outcome.status == "Failed" and outcome.result == "FAIL"
    assert "'deploy-health' is in ALARM" in outcome.summary and "rule Alarm" in outcome.summary


def test_wait_time_waits_then_checks_again():
    waits: list[float] = []
    recovered = stage_conditions.evaluate("beforeEntry", condition("FAIL", rule(WaitTime="3"))["conditions"][0],
                                          Alarms("ALARM", "OK"), lambda s: waits.append(s) or True)
    assert recovered.met and waits == [180]
    still = stage_conditions.evaluate("beforeEntry", condition("FAIL", rule(WaitTime="1"))["conditions"][0],
                                      Alarms("ALARM", "ALARM"), lambda s: True)
    assert not still.met and "after waiting WaitTime 1 min" in still.summary


def test_monitored_states_missing_alarms_and_stops():
    states = condition("FAIL", rule(AlarmStates="OK,INSUFFICIENT_DATA"))["conditions"][0]
    assert not stage_conditions.evaluate("beforeEntry", states, Alarms("OK"), lambda s: True).met
    assert stage_conditions.evaluate("beforeEntry", states, Alarms("ALARM"), lambda s: True).met
    missing = stage_conditions.evaluate("beforeEntry", condition("FAIL")["conditions"][0], Alarms(None),
                                        lambda s: True)
    assert not missing.met and "does not exist" in missing.summary
    stopped = stage_conditions.evaluate("onSuccess", condition("FAIL", rule(WaitTime="1"), rule("Second"))[
        "conditions"][0], Alarms("ALARM"), lambda s: False)
    assert stopped.status == "Abandoned" and [r.name for r in stopped.rules] == ["Alarm"]


# ---------------------------------------------------------------- what results do to executions

class Source:
    def pin(self, configuration: dict, revision: str | None = None) -> dict:
        return {"CommitId": "etag-1", "CommitMessage": "s3://b/k"}

    def run(self, ctx) -> ActionOutcome:
        return ActionOutcome("Succeeded", output_artifacts={n: ("bucket", f"{ctx.execution_id}/{n}")
                                                            for n in ctx.output_artifacts})


class Build:
    def __init__(self):
        self.ran: list[tuple[str, str, dict]] = []
        self.fail: set[str] = set()

    def run(self, ctx) -> ActionOutcome:
        self.ran.append((ctx.execution_id, ctx.action_name, dict(ctx.input_artifacts)))
        if ctx.action_name in self.fail:
            return ActionOutcome("Failed", error="make: *** [all] Error 1")
        return ActionOutcome("Succeeded", output_artifacts={n: ("bucket", f"{ctx.execution_id}/{n}")
                                                            for n in ctx.output_artifacts})


@pytest.fixture
def world(tmp_path):
    db = Database(tmp_path / "state.db", "000000000000", "us-east-1")
    build = Build()
    executions = Executions(Orchestrator(db), Pipelines(db), {"S3": Source(), "CodeBuild": build}, "bucket")
    alarms = {"deploy-health": "OK"}
    executions.alarm_state = lambda name: alarms[name]
    executions.time_scale = TimeScale(3600)  # a minute of WaitTime takes 1/60 s
    yield executions, build, alarms
    for execution in executions.db.list("pipeline-execution"):  # rollbacks may still be running
        executions.wait(execution["pipelineExecutionId"], timeout=10)
    db.close()


def run(executions: Executions, decl: dict) -> tuple[dict, dict[str, str]]:
    try:
        executions.pipelines.get(decl["name"])
        executions.pipelines.update(decl)
    except LookupError:
        executions.pipelines.create(decl)
    done = executions.wait(executions.start(decl["name"]), timeout=10)
    return done, {s["stageName"]: s["status"] for s in executions.stages(done["pipelineExecutionId"])}


def rollback_of(executions: Executions, target: str) -> dict:
    """The rollback targeting `target`: it starts just after the failed execution ends."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for execution in executions.list("conditions"):
            if (execution.get("rollbackMetadata") or {}).get("rollbackTargetPipelineExecutionId") == target:
                return execution
        time.sleep(0.02)
    raise AssertionError(f"no rollback to {target}")


def test_entry_fail_stops_the_execution_at_the_stage_with_the_rules_reason(world):
    executions, build, alarms = world
    alarms["deploy-health"] = "ALARM"
    done, stages = run(executions, declaration(Deploy={"beforeEntry": condition("FAIL")}))
    assert done["status"] == "Failed" and stages == {"Source": "Succeeded", "Build": "Succeeded", "Deploy": "Failed"}
    assert "entry condition failed" in done["statusSummary"] and "'deploy-health' is in ALARM" in done["statusSummary"]
    assert [name for _, name, _ in build.ran] == ["Make"]
    deploy = executions.state("conditions")["stageStates"][2]
    assert deploy["beforeEntryConditionState"]["latestExecution"]["status"] == "Failed"
    assert deploy["latestExecution"]["status"] == "Failed"


def test_entry_skip_marks_the_stage_skipped_and_goes_on(world):
    executions, build, alarms = world
    alarms["deploy-health"] = "ALARM"
    decl = declaration(Deploy={"beforeEntry": condition("SKIP")})
    decl["stages"].append({"name": "After", "actions": [{
        "name": "Check", "actionTypeId": {"category": "Test", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "configuration": {"ProjectName": "p"}, "inputArtifacts": [{"name": "Code"}]}]})
    done, stages = run(executions, decl)
    assert done["status"] == "Succeeded"
    assert stages == {"Source": "Succeeded", "Build": "Succeeded", "Deploy": "Skipped", "After": "Succeeded"}
    assert [name for _, name, _ in build.ran] == ["Make", "Check"]
    alarms["deploy-health"] = "OK"
    done, stages = run(executions, decl)
    assert stages["Deploy"] == "Succeeded"


def test_an_action_needing_a_skipped_stages_artifact_says_so(world):
    executions, build, alarms = world
    alarms["deploy-health"] = "ALARM"
    done, stages = run(executions, declaration(Build={"beforeEntry": condition("SKIP")}))
    assert done["status"] == "Failed" and stages["Build"] == "Skipped" and stages["Deploy"] == "Failed"
    ship = next(a for a in executions.actions(done["pipelineExecutionId"]) if a["actionName"] == "Ship")
    assert "'Built' was not produced in this execution" in ship["errorMessage"]


def test_entry_wait_time_lets_a_recovering_alarm_through(world):
    executions, build, alarms = world
    looks = iter(["ALARM", "OK"])
    executions.alarm_state = lambda name: next(looks, "OK")
    done, stages = run(executions, declaration(Deploy={"beforeEntry": condition("FAIL", rule(WaitTime="1"))}))
    assert done["status"] == "Succeeded" and stages["Deploy"] == "Succeeded"


def test_on_success_fail_and_rollback(world):
    executions, build, alarms = world
    good, _ = run(executions, declaration(Build={"onSuccess": condition("ROLLBACK")}))
    assert good["status"] == "Succeeded"
    alarms["deploy-health"] = "ALARM"
    bad = executions.wait(executions.start("conditions"), timeout=10)
    assert bad["status"] == "Failed" and "onSuccess condition failed" in bad["statusSummary"]
    rollback = rollback_of(executions, good["pipelineExecutionId"])
    assert rollback["trigger"]["triggerType"] == "AutomatedRollback"
    rolled = executions.wait(rollback["pipelineExecutionId"], timeout=10)
    assert rolled["status"] == "Succeeded"  # a rollback checks no conditions

    failed, stages = run(executions, declaration(Build={"onSuccess": condition("FAIL")}))
    assert failed["status"] == "Failed" and stages == {"Source": "Succeeded", "Build": "Failed"}
    assert not any(e.get("executionType") == "ROLLBACK" and e["pipelineExecutionId"] != rollback[
        "pipelineExecutionId"] for e in executions.list("conditions"))


def test_on_failure_condition_rolls_back_only_when_it_fails(world):
    executions, build, alarms = world
    good, _ = run(executions, declaration(Build={"onFailure": condition("ROLLBACK")}))
    build.fail.add("Make")
    met = executions.wait(executions.start("conditions"), timeout=10)
    assert met["status"] == "Failed" and "no ROLLBACK applies" in met["statusSummary"]
    assert not [e for e in executions.list("conditions") if e.get("executionType") == "ROLLBACK"]
    alarms["deploy-health"] = "ALARM"
    failed = executions.wait(executions.start("conditions"), timeout=10)
    assert "onFailure condition failed" in failed["statusSummary"]
    assert rollback_of(executions, good["pipelineExecutionId"])["trigger"]["triggerType"] == "AutomatedRollback"


def test_rollback_stage_uses_the_targets_inputs_and_refuses_what_aws_refuses(world):
    executions, build, alarms = world
    first, _ = run(executions, declaration())
    second = executions.wait(executions.start("conditions"), timeout=10)
    rollback_id = executions.rollback_stage("conditions", "Deploy", first["pipelineExecutionId"])
    rolled = executions.wait(rollback_id, timeout=10)
    assert rolled["status"] == "Succeeded" and rolled["executionType"] == "ROLLBACK"
    assert rolled["trigger"]["triggerType"] == "ManualRollback"
    ship = [inputs for execution, name, inputs in build.ran if execution == rollback_id]
    assert ship == [{"Built": ("bucket", f"{first['pipelineExecutionId']}/Built")}]  # the target's artifact
    assert second["pipelineExecutionId"] != first["pipelineExecutionId"]

    with pytest.raises(RollbackRefused, match="source stage"):
        executions.rollback_stage("conditions", "Source", first["pipelineExecutionId"])
    with pytest.raises(RollbackRefused, match="itself a rollback"):
        executions.rollback_stage("conditions", "Deploy", rollback_id)
    with pytest.raises(LookupError):
        executions.rollback_stage("conditions", "Nope", first["pipelineExecutionId"])
    alarms["deploy-health"] = "ALARM"
    skipped, stages = run(executions, declaration(Deploy={"beforeEntry": condition("SKIP")}))
    with pytest.raises(RollbackTargetOutdated, match="version 1"):
        executions.rollback_stage("conditions", "Deploy", first["pipelineExecutionId"])
    with pytest.raises(RollbackRefused, match="Skipped"):
        executions.rollback_stage("conditions", "Deploy", skipped["pipelineExecutionId"])
    parallel = {**declaration(Deploy={"beforeEntry": condition("SKIP")}), "executionMode": "PARALLEL"}
    executions.pipelines.update(parallel)
    with pytest.raises(RollbackRefused, match="PARALLEL"):
        executions.rollback_stage("conditions", "Deploy", skipped["pipelineExecutionId"])


def test_a_stop_ends_an_entry_rules_wait(world):
    executions, build, alarms = world
    executions.time_scale = TimeScale(1)  # WaitTime 1 would hold the execution for a real minute
    looked = []
    executions.alarm_state = lambda name: looked.append(name) or "ALARM"
    executions.pipelines.create(declaration(Deploy={"beforeEntry": condition("FAIL", rule(WaitTime="1"))}))
    execution_id = executions.start("conditions")
    deadline = time.monotonic() + 10
    while not looked and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    executions.stop(execution_id)
    assert executions.wait(execution_id, timeout=10)["status"] == "Stopped"
    assert time.monotonic() - started < 5 and looked == ["deploy-health"]  # no second look after the stop
