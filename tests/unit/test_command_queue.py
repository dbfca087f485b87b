"""Host commands waiting for agents: long polls, idempotent reports, waiting for results."""

from __future__ import annotations

import threading
import time

from emulator import contracts
from emulator.services.codedeploy.command_queue import CommandQueue


def command(cid: str, event: str = "BeforeInstall") -> contracts.HostCommand:
    return contracts.HostCommand(command_id=cid, deployment_id="d-1", deployment_group_id="g", lifecycle_event=event)


def result(cid: str, status: str = "Succeeded", message: str = "") -> contracts.CommandResult:
    return contracts.CommandResult(command_id=cid, status=status, message=message)


def test_poll_returns_a_queued_command_immediately():
    q = CommandQueue()
    q.put("i-1", command("c1"))
    started = time.monotonic()
    got = q.poll("i-1", wait=5.0)
    assert got is not None and got.command_id == "c1"
    assert time.monotonic() - started < 0.5


def test_commands_come_out_in_order_and_per_instance():
    q = CommandQueue()
    q.put("i-1", command("a"))
    q.put("i-2", command("x"))
    q.put("i-1", command("b"))
    assert q.poll("i-1", 0).command_id == "a"
    assert q.poll("i-1", 0).command_id == "b"
    assert q.poll("i-1", 0) is None
    assert q.poll("i-2", 0).command_id == "x"


def test_poll_times_out_with_none():
    q = CommandQueue()
    q.put("i-other", command("c1"))
    started = time.monotonic()
    assert q.poll("i-1", wait=0.3) is None
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 2.0


def test_poll_wakes_when_a_command_is_put_from_another_thread():
    q = CommandQueue()
    got: list = []

    def agent():
        got.append(q.poll("i-1", wait=10.0))

    thread = threading.Thread(target=agent)
    started = time.monotonic()
    thread.start()
    time.sleep(0.2)
    q.put("i-1", command("late"))
    thread.join(5.0)
    assert not thread.is_alive()
    assert got and got[0].command_id == "late"
    assert time.monotonic() - started < 3.0


def test_poll_records_last_seen():
    q = CommandQueue()
    before = time.time()
    q.poll("i-1", 0)
    assert q.last_seen["i-1"] >= before


def test_report_is_idempotent():
    q = CommandQueue()
    first = result("c1", "Failed", "script failed")
    assert q.report("i-1", first) is True
    assert q.report("i-1", result("c1", "Succeeded", "retry")) is False
    stored = q.wait_result("c1", 0.1)
    assert stored.status == "Failed"
    assert stored.message == "script failed"


def test_wait_result_returns_an_existing_result():
    q = CommandQueue()
    q.report("i-1", result("c1"))
    assert q.wait_result("c1", 0).status == "Succeeded"


def test_wait_result_times_out_with_none():
    q = CommandQueue()
    q.report("i-1", result("other"))
    started = time.monotonic()
    assert q.wait_result("c1", 0.3) is None
    assert 0.25 <= time.monotonic() - started < 2.0


def test_wait_result_wakes_on_report_from_another_thread():
    q = CommandQueue()
    timer = threading.Timer(0.2, lambda: q.report("i-1", result("c1", "Failed")))
    started = time.monotonic()
    timer.start()
    got = q.wait_result("c1", 10.0)
    assert got is not None and got.status == "Failed"
    assert time.monotonic() - started < 1.5


def test_cancel_drops_pending_commands_of_that_instance_only():
    q = CommandQueue()
    q.put("i-1", command("a"))
    q.put("i-2", command("b"))
    q.cancel("i-1")
    assert q.poll("i-1", 0) is None
    assert q.poll("i-2", 0).command_id == "b"


def test_heartbeat_is_recorded():
    q = CommandQueue()
    assert q.last_heartbeat("c1") is None
    before = time.time()
    q.heartbeat("i-1", "c1")
    assert q.last_heartbeat("c1") >= before
    assert q.last_seen["i-1"] >= before
