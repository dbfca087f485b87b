"""Starts a pipeline when the object of its S3 source action changes: CodePipeline's periodic check
of S3 sources whose `PollForSourceChanges` is true (AWS's default for S3 sources created outside
the console).

With `PollForSourceChanges` false, AWS expects an EventBridge rule to start the pipeline; pipelocal
has no EventBridge, so such a source starts only on StartPipelineExecution and CreatePipeline.
"""

from __future__ import annotations

import logging
import threading

from emulator.domain.errors import NotFound

log = logging.getLogger(__name__)
ABSENT = ""  # the revision of an object that does not exist (yet)


def polls(action: dict) -> bool:
    """An S3 source action that asks for polling: PollForSourceChanges absent or "true"."""
    if action["actionTypeId"]["provider"] != "S3" or action["actionTypeId"]["category"] != "Source":
        return False
    return str((action.get("configuration") or {}).get("PollForSourceChanges", "true")).lower() != "false"


def revision_of(head: dict | None) -> str:
    """What identifies an upload: the version id in a versioned bucket, else the ETag."""
    if head is None:
        return ABSENT
    version = head.get("VersionId")
    return version if version and version != "null" else head.get("ETag", "").strip('"')


class S3SourcePoller:
    """Each `interval` seconds, reads the version (or ETag) of every polled S3 source object and starts
    the pipeline when it differs from the last one seen. A source first seen is compared with the
    revision its latest execution pinned, so an upload while the control plane was down still starts
    the pipeline; a source with no execution yet is only recorded."""

    def __init__(self, pipelines, executions, store, interval: float = 2.0):
        self.pipelines = pipelines
        self.executions = executions
        self.store = store
        self.interval = interval
        self._seen: dict[tuple[str, str], str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None and self.interval > 0:
            self._thread = threading.Thread(target=self._loop, name="s3-source-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except Exception:  # a store hiccup must not end polling for good
                log.exception("polling S3 sources failed; trying again in %s s", self.interval)

    def poll_once(self) -> list[str]:
        """One round: the execution ids started."""
        started, current = [], set()
        for doc in self.pipelines.list():
            pipeline = doc["pipeline"]
            for action in pipeline["stages"][0]["actions"]:
                if not polls(action):
                    continue
                key = (pipeline["name"], action["name"])
                current.add(key)
                config = action["configuration"]
                revision = revision_of(self.store.head(config["S3Bucket"], config["S3ObjectKey"]))
                if key not in self._seen:
                    self._seen[key] = self._last_pinned(pipeline["name"], action["name"], revision)
                if revision == self._seen[key]:
                    continue
                self._seen[key] = revision
                if revision == ABSENT:
                    continue  # deleted: nothing to build
                started.append(self.executions.start(
                    pipeline["name"], trigger={"triggerType": "PollForSourceChanges",
                                               "triggerDetail": f"s3://{config['S3Bucket']}/{config['S3ObjectKey']} "
                                                                f"({revision[:12]})"},
                    source_commits={action["name"]: revision}))
        for key in set(self._seen) - current:  # pipelines deleted or changed
            del self._seen[key]
        return started

    def _last_pinned(self, pipeline_name: str, action_name: str, now: str) -> str:
        """The revision the newest execution pinned for this action, or `now` if none did."""
        try:
            for execution in self.executions.list(pipeline_name):
                pinned = self.executions.sources(execution["pipelineExecutionId"]).get(action_name) or {}
                if "error" in pinned:
                    return ABSENT
                if pinned:
                    return revision_of({"VersionId": pinned.get("VersionId"), "ETag": pinned.get("ETag", "")})
        except NotFound:
            pass
        return now
