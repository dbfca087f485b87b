"""The S3 source poller: an upload starts the pipeline once; PollForSourceChanges=false never does."""

from __future__ import annotations

from emulator.services.codepipeline.s3_source_poller import S3SourcePoller, polls


def pipeline(name: str, poll: str | None = None) -> dict:
    config = {"S3Bucket": "src", "S3ObjectKey": f"{name}.zip"}
    if poll is not None:
        config["PollForSourceChanges"] = poll
    return {"pipeline": {"name": name, "stages": [
        {"name": "Source", "actions": [{"name": "Fetch", "configuration": config,
                                        "actionTypeId": {"category": "Source", "provider": "S3"}}]},
        {"name": "Build", "actions": []}]}}


class Pipelines:
    def __init__(self, *docs):
        self.docs = list(docs)

    def list(self):
        return self.docs


class Executions:
    def __init__(self, pinned=None):
        self.started = []
        self.pinned = pinned or {}  # pipeline -> ETag its latest execution pinned

    def start(self, name, trigger=None, source_commits=None):
        self.started.append((name, trigger["triggerType"], source_commits))
        return f"e{len(self.started)}"

    def list(self, name):
        return [{"pipelineExecutionId": name}] if name in self.pinned else []

    def sources(self, execution_id):
        return {"Fetch": {"ETag": self.pinned[execution_id], "VersionId": "null"}}


class Store:
    def __init__(self):
        self.etags = {}

    def head(self, bucket, key):
        return {"ETag": f'"{self.etags[key]}"', "VersionId": None} if key in self.etags else None


def test_an_upload_starts_the_pipeline_once():
    store, executions = Store(), Executions()
    poller = S3SourcePoller(Pipelines(pipeline("p")), executions, store)
    store.etags["p.zip"] = "aaa"
    assert poller.poll_once() == []  # first sight with no execution: recorded, not started
    store.etags["p.zip"] = "bbb"
    assert poller.poll_once() == ["e1"]
    assert executions.started == [("p", "PollForSourceChanges", {"Fetch": "bbb"})]
    assert poller.poll_once() == []


def test_an_object_that_appears_starts_the_pipeline():
    store, executions = Store(), Executions()
    poller = S3SourcePoller(Pipelines(pipeline("p")), executions, store)
    poller.poll_once()
    store.etags["p.zip"] = "new"
    assert poller.poll_once() == ["e1"]


def test_an_upload_while_stopped_is_found_against_the_last_execution():
    store = Store()
    store.etags["p.zip"] = "uploaded-while-down"
    executions = Executions(pinned={"p": "built-before"})
    assert S3SourcePoller(Pipelines(pipeline("p")), executions, store).poll_once() == ["e1"]
    executions = Executions(pinned={"p": "uploaded-while-down"})
    assert S3SourcePoller(Pipelines(pipeline("p")), executions, store).poll_once() == []


def test_poll_for_source_changes_false_starts_nothing():
    store, executions = Store(), Executions()
    poller = S3SourcePoller(Pipelines(pipeline("p", "false")), executions, store)
    store.etags["p.zip"] = "a"
    poller.poll_once()
    store.etags["p.zip"] = "b"
    assert poller.poll_once() == [] and executions.started == []


def test_which_actions_poll():
    assert polls(pipeline("p")["pipeline"]["stages"][0]["actions"][0])
    assert polls(pipeline("p", "True")["pipeline"]["stages"][0]["actions"][0])
    assert not polls(pipeline("p", "false")["pipeline"]["stages"][0]["actions"][0])
    assert not polls({"actionTypeId": {"category": "Source", "provider": "CodeCommit"}, "configuration": {}})
