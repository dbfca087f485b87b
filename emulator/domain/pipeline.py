"""Pipeline declarations in AWS's own structure, validated the way CodePipeline validates them.

The accepted document is what `aws codepipeline get-pipeline` prints (either the whole
`{"pipeline": ...}` or the inner declaration), as JSON or YAML.
"""

from __future__ import annotations

import re
from typing import Any

from emulator.domain import located_yaml, stage_conditions
from emulator.domain.errors import SpecError

_NAME = re.compile(r"^[A-Za-z0-9.@\-_]{1,100}$")
_ARTIFACT = re.compile(r"^[a-zA-Z0-9_\-]{1,100}$")
_VARIABLE = re.compile(r"^[A-Za-z0-9@\-_]+$")
CATEGORIES = {"Source", "Build", "Test", "Deploy", "Invoke", "Approval", "Compute"}

# provider -> (category set, required configuration keys, (min in, max in), (min out, max out))
PROVIDERS: dict[str, tuple[set[str], set[str], tuple[int, int], tuple[int, int]]] = {
    "CodeCommit": ({"Source"}, {"RepositoryName", "BranchName"}, (0, 0), (1, 1)),
    "CodeBuild": ({"Build", "Test"}, {"ProjectName"}, (1, 5), (0, 5)),
    "CodeDeploy": ({"Deploy"}, {"ApplicationName", "DeploymentGroupName"}, (1, 1), (0, 0)),
    "S3": ({"Source"}, {"S3Bucket", "S3ObjectKey"}, (0, 0), (1, 1)),
    "Manual": ({"Approval"}, set(), (0, 0), (0, 0)),
}


class InvalidStructure(SpecError):
    """CodePipeline's InvalidStructureException."""


def load_pipeline(text: str, file: str = "pipeline.json") -> dict:
    data = located_yaml.load(text, file)
    if isinstance(data, dict) and "pipeline" in data:
        data = data["pipeline"]
    return validate_pipeline(data, file)


def validate_pipeline(decl: Any, file: str = "pipeline") -> dict:
    def fail(key: str, expected: str, container: Any = None, at: Any = None) -> None:
        line = located_yaml.line_of(container, at) if container is not None else None
        raise InvalidStructure(file, key, expected, line)

    if not isinstance(decl, dict):
        fail("pipeline", "a mapping with name, roleArn, artifactStore and stages")
    name = decl.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        fail("pipeline.name", "a name of 1-100 characters from [A-Za-z0-9.@-_]", decl, "name")
    stages = decl.get("stages")
    if not isinstance(stages, list) or len(stages) < 2:
        fail("pipeline.stages", "a list of at least two stages", decl, "stages")
    known = {"name", "roleArn", "artifactStore", "artifactStores", "stages", "version", "pipelineType",
             "executionMode", "variables", "triggers"}
    for key in decl:
        if key not in known:
            fail(f"pipeline.{key}", f"one of {', '.join(sorted(known))}", decl, key)
    mode = decl.get("executionMode", "SUPERSEDED")
    if mode not in ("SUPERSEDED", "QUEUED", "PARALLEL"):
        fail("pipeline.executionMode", "SUPERSEDED, QUEUED or PARALLEL", decl, "executionMode")
    kind = decl.get("pipelineType", "V1")
    if kind not in ("V1", "V2"):
        fail("pipeline.pipelineType", "V1 or V2", decl, "pipelineType")
    if kind != "V2":
        if mode != "SUPERSEDED":
            fail("pipeline.executionMode", f"SUPERSEDED: {mode} requires pipelineType V2", decl, "executionMode")
        for v2_only in ("variables", "triggers"):
            if decl.get(v2_only):
                fail(f"pipeline.{v2_only}", f"pipelineType V2: {v2_only} are a V2 feature", decl, v2_only)
    if ("artifactStore" in decl) == ("artifactStores" in decl):
        fail("pipeline.artifactStore", "exactly one of artifactStore and artifactStores", decl,
             "artifactStore" if "artifactStore" in decl else None)
    _check_variables(decl.get("variables"), fail, decl)
    _check_triggers(decl.get("triggers"), stages, fail, decl)

    stage_names: set[str] = set()
    outputs: set[str] = set()
    namespaces: set[str] = set()
    for s_index, stage in enumerate(stages):
        where = f"stages[{s_index}]"
        if not isinstance(stage, dict):
            fail(where, "a mapping with name and actions", stages, s_index)
        s_name = stage.get("name")
        if not isinstance(s_name, str) or not _NAME.match(s_name):
            fail(f"{where}.name", "a stage name of 1-100 characters from [A-Za-z0-9.@-_]", stage, "name")
        if s_name in stage_names:
            fail(f"{where}.name", f"a unique stage name ({s_name!r} is used twice)", stage, "name")
        stage_names.add(s_name)
        _check_conditions(stage, s_name, s_index, decl, fail)
        actions = stage.get("actions")
        if not isinstance(actions, list) or not actions:
            fail(f"stage {s_name}: actions", "a list of at least one action", stage, "actions")
        action_names: set[str] = set()
        stage_outputs: dict[int, set[str]] = {}
        # What each runOrder of this stage produces, whatever the order the actions are listed in.
        declared: dict[int, set[str]] = {}
        for a in actions:
            if isinstance(a, dict) and isinstance(a.get("runOrder", 1), int):
                declared.setdefault(a.get("runOrder", 1), set()).update(
                    o.get("name") for o in a.get("outputArtifacts") or [] if isinstance(o, dict))
        for a_index, action in enumerate(actions):
            at = f"stage {s_name}: action[{a_index}]"
            if not isinstance(action, dict):
                fail(at, "a mapping", actions, a_index)
            a_name = action.get("name")
            if not isinstance(a_name, str) or not _NAME.match(a_name):
                fail(f"{at}.name", "an action name of 1-100 characters", action, "name")
            at = f"stage {s_name}, action {a_name}"
            if a_name in action_names:
                fail(f"{at}: name", "a name unique within its stage", action, "name")
            action_names.add(a_name)
            type_id = action.get("actionTypeId")
            if not isinstance(type_id, dict):
                fail(f"{at}: actionTypeId", "{category, owner, provider, version}", action, "actionTypeId")
            category, provider = type_id.get("category"), type_id.get("provider")
            if category not in CATEGORIES:
                fail(f"{at}: actionTypeId.category", f"one of {', '.join(sorted(CATEGORIES))}", type_id, "category")
            is_source = category == "Source"
            if s_index == 0 and not is_source:
                fail(f"{at}: actionTypeId.category", "Source: the first stage may contain only source actions",
                     type_id, "category")
            if s_index > 0 and is_source:
                fail(f"{at}: actionTypeId.category", "a non-Source category: source actions belong in the first stage",
                     type_id, "category")
            if provider not in PROVIDERS:
                fail(f"{at}: actionTypeId.provider", f"a supported provider ({', '.join(sorted(PROVIDERS))})",
                     type_id, "provider")
            categories, required, (in_min, in_max), (out_min, out_max) = PROVIDERS[provider]
            if category not in categories:
                fail(f"{at}: actionTypeId.category", f"{' or '.join(sorted(categories))} for provider {provider}",
                     type_id, "category")
            config = action.get("configuration") or {}
            if not isinstance(config, dict):
                fail(f"{at}: configuration", "a mapping of strings", action, "configuration")
            for key in sorted(required - set(config)):
                fail(f"{at}: configuration.{key}", f"{key} is required for {provider}", action, "configuration")
            if "timeoutInMinutes" in action:
                minutes = action["timeoutInMinutes"]
                if provider != "Manual":
                    fail(f"{at}: timeoutInMinutes", "no timeoutInMinutes: it applies to manual approval actions only",
                         action, "timeoutInMinutes")
                if not isinstance(minutes, int) or isinstance(minutes, bool) or not 5 <= minutes <= 86400:
                    fail(f"{at}: timeoutInMinutes", "an integer from 5 to 86400", action, "timeoutInMinutes")
            namespace = action.get("namespace")
            if namespace is not None:
                if not isinstance(namespace, str) or not _VARIABLE.match(namespace) or len(namespace) > 100:
                    fail(f"{at}: namespace", "a name of 1-100 characters from [A-Za-z0-9@-_]", action, "namespace")
                if namespace in namespaces or namespace in ("codepipeline", "variables"):
                    fail(f"{at}: namespace", f"a namespace unique in the pipeline ({namespace!r} is taken)", action,
                         "namespace")
                namespaces.add(namespace)
            run_order = action.get("runOrder", 1)
            if not isinstance(run_order, int) or isinstance(run_order, bool) or not 1 <= run_order <= 999:
                fail(f"{at}: runOrder", "an integer from 1 to 999", action, "runOrder")
            inputs = [a.get("name") if isinstance(a, dict) else None for a in action.get("inputArtifacts") or []]
            outs = [a.get("name") if isinstance(a, dict) else None for a in action.get("outputArtifacts") or []]
            if not in_min <= len(inputs) <= in_max:
                fail(f"{at}: inputArtifacts", f"{in_min}-{in_max} input artifacts for {provider}", action,
                     "inputArtifacts")
            if not out_min <= len(outs) <= out_max:
                fail(f"{at}: outputArtifacts", f"{out_min}-{out_max} output artifacts for {provider}", action,
                     "outputArtifacts")
            earlier_same_stage = set().union(*(v for k, v in declared.items() if k < run_order))
            for art in inputs:
                if art not in outputs and art not in earlier_same_stage:
                    fail(f"{at}: inputArtifacts", f"the output artifact of an earlier action ({art!r} is not one)",
                         action, "inputArtifacts")
            for art in outs:
                if not isinstance(art, str) or not _ARTIFACT.match(art):
                    fail(f"{at}: outputArtifacts", "artifact names from [a-zA-Z0-9_-], at most 100", action,
                         "outputArtifacts")
                if art in outputs or any(art in v for v in stage_outputs.values()):
                    fail(f"{at}: outputArtifacts", f"a name unique in the pipeline ({art!r} is used twice)",
                         action, "outputArtifacts")
                stage_outputs.setdefault(run_order, set()).add(art)
        for names in stage_outputs.values():
            outputs |= names
    return located_yaml.plain(decl)


def _check_conditions(stage: dict, name: str, index: int, decl: dict, fail) -> None:
    """Stage-level onFailure (ROLLBACK, RETRY), onSuccess and beforeEntry: V2 only."""
    for key in ("onFailure", "onSuccess", "beforeEntry"):
        if key in stage and decl.get("pipelineType", "V1") != "V2":
            fail(f"stage {name}: {key}", f"pipelineType V2: {key} is a V2 feature", stage, key)
    stage_conditions.check(stage, name, fail)
    for key in ("onSuccess", "onFailure"):
        for condition in (stage.get(key) or {}).get("conditions") or []:
            _check_rollback(condition["result"], f"stage {name}: {key}.conditions[0].result", index, decl, stage, key,
                            fail)
    on_failure = stage.get("onFailure")
    if on_failure is None:
        return
    result = on_failure.get("result")
    if result is None and on_failure.get("conditions"):
        return
    if result not in ("ROLLBACK", "RETRY", "FAIL"):
        fail(f"stage {name}: onFailure.result", "ROLLBACK, RETRY or FAIL (or conditions)", stage, "onFailure")
    _check_rollback(result, f"stage {name}: onFailure.result", index, decl, stage, "onFailure", fail)
    mode = (on_failure.get("retryConfiguration") or {}).get("retryMode", "FAILED_ACTIONS")
    if mode not in ("FAILED_ACTIONS", "ALL_ACTIONS"):
        fail(f"stage {name}: onFailure.retryConfiguration.retryMode", "FAILED_ACTIONS or ALL_ACTIONS", stage,
             "onFailure")


def _check_rollback(result: str, key: str, index: int, decl: dict, stage: dict, at: str, fail) -> None:
    if result == "ROLLBACK" and index == 0:
        fail(key, "not ROLLBACK: a source stage cannot be rolled back", stage, at)
    if result == "ROLLBACK" and decl.get("executionMode") == "PARALLEL":
        fail(key, "not ROLLBACK: stage rollback is not available in PARALLEL mode", stage, at)


def _check_variables(variables: Any, fail, decl: dict) -> None:
    if variables is None:
        return
    if not isinstance(variables, list) or len(variables) > 50:
        fail("pipeline.variables", "a list of at most 50 {name, defaultValue, description}", decl, "variables")
    seen: set[str] = set()
    for index, variable in enumerate(variables):
        name = variable.get("name") if isinstance(variable, dict) else None
        if not isinstance(name, str) or not _VARIABLE.match(name) or len(name) > 128:
            fail(f"pipeline.variables[{index}].name", "a name of 1-128 characters from [A-Za-z0-9@-_]",
                 variables, index)
        if name in seen:
            fail(f"pipeline.variables[{index}].name", f"a unique name ({name!r} is declared twice)", variables, index)
        seen.add(name)
        default = variable.get("defaultValue")
        if default is not None and (not isinstance(default, str) or not 1 <= len(default) <= 1000):
            fail(f"pipeline.variables[{index}].defaultValue", "a string of 1-1000 characters", variable,
                 "defaultValue")


def _check_triggers(triggers: Any, stages: list, fail, decl: dict) -> None:
    """V2 triggers: git push filters on branches, tags and file paths of a first-stage source action."""
    if triggers is None:
        return
    if not isinstance(triggers, list) or len(triggers) > 50:
        fail("pipeline.triggers", "a list of at most 50 triggers", decl, "triggers")
    sources = {a.get("name") for a in (stages[0].get("actions") or []) if isinstance(a, dict)} \
        if isinstance(stages[0], dict) else set()
    for index, trigger in enumerate(triggers):
        where = f"pipeline.triggers[{index}]"
        if not isinstance(trigger, dict) or trigger.get("providerType") != "CodeStarSourceConnection":
            fail(f"{where}.providerType", "CodeStarSourceConnection (the only trigger provider type)", triggers, index)
        git = trigger.get("gitConfiguration")
        if not isinstance(git, dict) or git.get("sourceActionName") not in sources:
            fail(f"{where}.gitConfiguration.sourceActionName",
                 f"the name of a source action of the first stage ({', '.join(sorted(sources))})", trigger,
                 "gitConfiguration")
        for event in ("push", "pullRequest"):
            entries = git.get(event)
            if entries is None:
                continue
            if not isinstance(entries, list) or not 1 <= len(entries) <= 3:
                fail(f"{where}.gitConfiguration.{event}", "a list of 1-3 filters", git, event)
            for e_index, entry in enumerate(entries):
                for kind in ("branches", "tags", "filePaths"):
                    spec = entry.get(kind) if isinstance(entry, dict) else None
                    if spec is None:
                        continue
                    for side in ("includes", "excludes"):
                        patterns = spec.get(side) if isinstance(spec, dict) else None
                        if patterns is not None and (not isinstance(patterns, list) or not 1 <= len(patterns) <= 8
                                                     or not all(isinstance(p, str) for p in patterns)):
                            fail(f"{where}.gitConfiguration.{event}[{e_index}].{kind}.{side}",
                                 "a list of 1-8 glob patterns", entry, kind)



def stage_groups(stage: dict) -> list[list[dict]]:
    """Actions of a stage grouped by runOrder: each group runs in parallel, groups in order."""
    groups: dict[int, list[dict]] = {}
    for action in stage["actions"]:
        groups.setdefault(action.get("runOrder", 1), []).append(action)
    return [groups[k] for k in sorted(groups)]
