"""Containers started ahead for handed-over local builds: used once, only for the same settings."""

from __future__ import annotations

from emulator.runtime.container_runtime import LABEL_OWNER, ContainerSpec
from emulator.services.codebuild.warm_containers import WARM_OWNER, WarmContainers


class _Engine:
    def __init__(self, feed_fails: bool = False):
        self.calls: list[tuple] = []
        self.feed_fails = feed_fails

    def start(self, spec):
        self.calls.append(("start", spec.name))

    def start_waiting(self, spec):
        assert spec.labels[LABEL_OWNER] == WARM_OWNER
        self.calls.append(("start_waiting", spec.name))

    def feed(self, waiting, name, data):
        if self.feed_fails:
            raise RuntimeError("no such container")
        self.calls.append(("feed", waiting, name, data))

    def remove(self, name):
        self.calls.append(("remove", name))

    def stop(self, name, timeout=5):
        self.calls.append(("stop", name))


def _spec(name: str, image: str = "pipelocal/build:1", cpus: float = 1.0) -> ContainerSpec:
    return ContainerSpec(image=image, name=name, command=["sh"], labels={"pipelocal.role": "local-build",
                                                                          LABEL_OWNER: name},
                         cpus=cpus, stdin=lambda: f"input of {name}".encode())


def test_the_second_build_gets_the_container_made_after_the_first():
    engine = _Engine()
    warm = WarmContainers(engine)
    warm.start(_spec("b1"))
    assert engine.calls == [("start", "b1")]
    warm.refill()
    waiting = engine.calls[-1][1]
    assert engine.calls[-1][0] == "start_waiting" and waiting.startswith("pipelocal-warm-build-")
    warm.start(_spec("b2"))
    assert engine.calls[-1] == ("feed", waiting, "b2", b"input of b2")


def test_other_settings_never_take_a_waiting_container():
    engine = _Engine()
    warm = WarmContainers(engine)
    warm.start(_spec("b1"))
    warm.refill()
    warm.start(_spec("b2", cpus=2.0))
    assert engine.calls[-1] == ("start", "b2")


def test_a_container_gone_meanwhile_is_replaced_by_a_fresh_start():
    engine = _Engine(feed_fails=True)
    warm = WarmContainers(engine)
    warm.start(_spec("b1"))
    warm.refill()
    waiting = engine.calls[-1][1]
    warm.start(_spec("b2"))  # the engine's feed removed it
    assert engine.calls[-1] == ("start", "b2") and not [c for c in engine.calls if c[0] == "feed"]
    assert waiting not in [c[1] for c in engine.calls if c[0] == "remove"]


def test_at_most_keep_settings_wait_and_close_removes_them():
    engine = _Engine()
    warm = WarmContainers(engine)
    for n, image in enumerate(["a", "b", "c"]):
        warm.start(_spec(f"b{n}", image=image))
    warm.refill()
    made = [c[1] for c in engine.calls if c[0] == "start_waiting"]
    assert len(made) == 3 and ("remove", made[0]) in engine.calls  # the oldest went
    warm.close()
    assert {("remove", made[1]), ("remove", made[2])} <= set(engine.calls)
    warm.start(_spec("late", image="c"))
    warm.refill()
    assert engine.calls[-1] == ("start", "late")  # closed: nothing made any more
