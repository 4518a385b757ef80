"""The hub's bookkeeping: engines, heartbeats, task records. No sockets, no clock."""

from __future__ import annotations

from typing import Any

import pytest

from taskyard.controller.hub_state import HubState, TaskRecord, TaskRecords
from taskyard.error import EngineError, error_from_content


def live_hub(n: int = 2, **options: Any) -> HubState:
    """A hub with ``n`` registered engines made live by their first heartbeat."""
    hub = HubState(**options)
    for index in range(n):
        hub.register(f"uuid-{index}")
    ping, _ = hub.tick()
    for index in range(n):
        engine = hub.heart_beat(f"uuid-{index}".encode(), ping)
        assert engine is not None and engine.engine_id == index
    return hub


def request(hub: HubState, msg_id: str, channel: str = "mux", engine: int | None = 0, date: float = 1.0) -> TaskRecord:
    engine_ident = None if engine is None else f"uuid-{engine}".encode()
    header = {"msg_id": msg_id, "msg_type": "apply_request", "date": date}
    return hub.request_seen(channel, b"client", engine_ident, header, {"targets": []})


def reply(
    hub: HubState,
    msg_id: str,
    engine: int | None = 0,
    status: str = "ok",
    buffers: list[Any] | None = None,
) -> TaskRecord | None:
    engine_ident = None if engine is None else f"uuid-{engine}".encode()
    return hub.reply_seen(
        engine_ident,
        {"msg_id": f"reply-{msg_id}", "msg_type": "apply_reply", "date": 5.0},
        {"msg_id": msg_id, "msg_type": "apply_request"},
        {"started": 2.0, "completed": 3.0},
        {"status": status},
        buffers or [],
    )


# -- registration and hearts -----------------------------------------------------


def test_registration_ids_in_order_never_reused() -> None:
    hub = HubState()
    assert [hub.register(f"u{n}").engine_id for n in range(3)] == [0, 1, 2]
    hub.unregister(1, "test")
    hub.unregister(2, "test")
    assert hub.register("u3").engine_id == 3
    # even the uuid of a gone engine gets a new id
    assert hub.register("u1").engine_id == 4
    assert sorted(hub.engines) == [0, 3, 4]


def test_duplicate_uuid_is_refused() -> None:
    hub = HubState()
    hub.register("same", {"host": "a"})
    with pytest.raises(ValueError, match="same"):
        hub.register("same")
    assert len(hub.engines) == 1 and hub.next_id == 1
    assert hub.engines[0].info == {"host": "a"}


def test_pending_until_first_heartbeat() -> None:
    hub = HubState()
    engine = hub.register("u0")
    assert not engine.is_live
    assert hub.live_engines() == {}
    ping, _ = hub.tick()
    assert hub.heart_beat(b"u0", ping) is engine
    assert engine.is_live
    assert hub.live_engines() == {0: "u0"}
    # later beats do not announce it again
    assert hub.heart_beat(b"u0", ping) is None
    ping, _ = hub.tick()
    assert hub.heart_beat(b"u0", ping) is None


def test_pending_engine_is_not_watched_before_its_heart_answers() -> None:
    hub = HubState(max_misses=1)
    hub.register("u0")
    for _ in range(5):
        _, dead = hub.tick()
        assert dead == []


def test_unknown_and_bad_hearts_are_counted() -> None:
    hub = live_hub(1)
    ping, _ = hub.tick()
    assert hub.heart_beat(b"stranger", ping) is None
    assert hub.heart_beat(b"uuid-0", b"garbage") is None
    assert hub.heart_beat(b"\xff\xfe", ping) is None
    assert hub.counters == {"unknown-heart": 2, "bad-heartbeat": 1}
    assert hub.live_engines() == {0: "uuid-0"}


def test_tick_reports_dead_engines_once() -> None:
    hub = live_hub(2, max_misses=2)
    deaths = []
    for _ in range(4):
        ping, dead = hub.tick()
        deaths.append([e.engine_id for e in dead])
        hub.heart_beat(b"uuid-1", ping)
    assert deaths == [[], [], [0], []]


def test_unregister_unknown_engine() -> None:
    hub = live_hub(1)
    assert hub.unregister(7, "nope") is None
    hub.unregister(0, "gone")
    assert hub.unregister(0, "again") is None
    assert hub.engines == {} and hub.by_uuid == {} and hub.hearts.hearts == {}


def test_unregistered_engine_is_forgotten_by_the_heart_monitor() -> None:
    hub = live_hub(2, max_misses=1)
    hub.unregister(0, "shutdown")
    for _ in range(3):
        ping, dead = hub.tick()
        assert dead == []
        hub.heart_beat(b"uuid-1", ping)
    assert hub.engine_by_ident(b"uuid-0") is None
    assert hub.engine_by_ident(b"uuid-1") is hub.engines[1]


# -- unregister fails direct requests, leaves tasks to the scheduler -------------


def test_unregister_fails_outstanding_direct_requests_only() -> None:
    hub = live_hub(2)
    request(hub, "direct-1", "mux", engine=0)
    request(hub, "direct-2", "mux", engine=0)
    request(hub, "done", "mux", engine=0)
    reply(hub, "done", engine=0)
    request(hub, "task-1", "task", engine=None)
    hub.assigned("task-1", b"uuid-0", True)
    request(hub, "other-engine", "mux", engine=1)

    engine, failed = hub.unregister(0, "stopped answering heartbeats")  # type: ignore[misc]
    assert engine.engine_id == 0
    assert sorted(r.msg_id for r in failed) == ["direct-1", "direct-2"]
    for record in failed:
        assert record.status == "error" and record.is_done
        assert record.completed is not None
        content = record.result_content
        assert content is not None and content["ename"] == "EngineError"
        assert "engine 0" in content["evalue"] and "stopped answering heartbeats" in content["evalue"]
        assert content["engine_info"] == {"engine_id": 0, "engine_uuid": "uuid-0"}
        error = error_from_content(content)
        assert isinstance(error, EngineError)
    task = hub.records.get("task-1")
    assert task is not None and task.status == "pending" and task.result_content is None
    assert hub.records.get("done").status == "ok"  # type: ignore[union-attr]
    assert hub.records.get("other-engine").status == "pending"  # type: ignore[union-attr]
    assert engine.outstanding == set() and engine.tasks == set()
    assert 0 not in hub.queue_status()


# -- request / assign / reply bookkeeping ------------------------------------------


def test_direct_request_and_reply() -> None:
    hub = live_hub(2)
    record = request(hub, "m1", "mux", engine=1, date=1.5)
    assert record.engine_id == 1 and record.status == "pending" and record.submitted == 1.5
    assert record.client_ident == b"client" and record.channel == "mux"
    assert hub.queue_status() == {
        0: {"queue": 0, "completed": 0, "tasks": 0},
        1: {"queue": 1, "completed": 0, "tasks": 0},
        "unassigned": 0,
    }
    done = reply(hub, "m1", engine=1, buffers=[b"result"])
    assert done is record
    assert record.status == "ok" and record.is_done
    assert (record.started, record.completed) == (2.0, 3.0)
    assert record.result_buffers == [b"result"]
    assert record.result_header is not None and record.result_header["msg_id"] == "reply-m1"
    assert hub.queue_status()[1] == {"queue": 0, "completed": 1, "tasks": 0}


def test_task_unassigned_then_assigned_then_done() -> None:
    hub = live_hub(2)
    request(hub, "t1", "task", engine=None)
    request(hub, "t2", "task", engine=None)
    assert hub.unassigned == {"t1", "t2"}
    assert hub.queue_status()["unassigned"] == 2
    hub.assigned("t1", b"uuid-1", True)
    assert hub.unassigned == {"t2"}
    assert hub.records.get("t1").engine_id == 1  # type: ignore[union-attr]
    assert hub.queue_status() == {
        0: {"queue": 0, "completed": 0, "tasks": 0},
        1: {"queue": 0, "completed": 0, "tasks": 1},
        "unassigned": 1,
    }
    reply(hub, "t1", engine=1, status="error")
    assert hub.records.get("t1").status == "error"  # type: ignore[union-attr]
    assert hub.queue_status()[1] == {"queue": 0, "completed": 1, "tasks": 0}


def test_a_rerouted_task_leaves_the_engine_that_refused_it() -> None:
    # Engine 0 raises UnmetDependency; the scheduler sends the task to engine 1 instead.
    hub = live_hub(2)
    request(hub, "t1", "task", engine=None)
    hub.assigned("t1", b"uuid-0", True)
    hub.assigned("t1", b"uuid-1", True)
    assert hub.queue_status() == {
        0: {"queue": 0, "completed": 0, "tasks": 0},
        1: {"queue": 0, "completed": 0, "tasks": 1},
        "unassigned": 0,
    }
    reply(hub, "t1", engine=1)
    assert hub.queue_status() == {
        0: {"queue": 0, "completed": 0, "tasks": 0},
        1: {"queue": 0, "completed": 1, "tasks": 0},
        "unassigned": 0,
    }


def test_scheduler_failing_an_unassigned_task_clears_it() -> None:
    hub = live_hub(1)
    request(hub, "t1", "task", engine=None)
    record = reply(hub, "t1", engine=None, status="error")
    assert record is not None and record.status == "error"
    assert hub.unassigned == set()
    assert hub.queue_status() == {0: {"queue": 0, "completed": 0, "tasks": 0}, "unassigned": 0}


def test_queue_status_filter_and_mixed_queue() -> None:
    hub = live_hub(3)
    request(hub, "d1", "mux", engine=2)
    request(hub, "d2", "mux", engine=2)
    request(hub, "t1", "task", engine=None)
    hub.assigned("t1", b"uuid-2", True)
    assert hub.queue_status([2]) == {2: {"queue": 2, "completed": 0, "tasks": 1}, "unassigned": 0}
    assert set(hub.queue_status([0, 1])) == {0, 1, "unassigned"}


def test_assigned_for_unknown_request_or_engine_is_counted() -> None:
    hub = live_hub(1)
    hub.assigned("nothing", b"uuid-0", True)
    request(hub, "t1", "task", engine=None)
    hub.assigned("t1", b"no-such-engine", True)
    assert hub.counters == {"assigned-unknown": 2}
    assert hub.unassigned == {"t1"}


def test_reply_for_unknown_request_creates_a_record() -> None:
    hub = live_hub(1)
    record = reply(hub, "lost", engine=0, buffers=[b"abc"])
    assert record is not None and hub.records.get("lost") is record
    assert record.status == "ok" and record.engine_id == 0 and record.result_buffers == [b"abc"]
    assert record.msg_id == "lost" and record.result_header is not None
    assert hub.records.nbytes == 3


def test_reply_without_parent_is_counted_and_dropped() -> None:
    hub = live_hub(1)
    assert hub.reply_seen(b"uuid-0", {"msg_id": "r"}, {}, {}, {}, []) is None
    assert hub.counters == {"reply-without-parent": 1}
    assert len(hub.records) == 0


def test_repeated_request_does_not_make_a_second_record() -> None:
    hub = live_hub(1)
    first = request(hub, "m1", "mux", engine=0)
    assert request(hub, "m1", "mux", engine=0) is first
    assert len(hub.records) == 1
    assert hub.queue_status()[0]["queue"] == 1


def test_repeated_task_request_after_assignment_is_not_unassigned_again() -> None:
    hub = live_hub(1)
    request(hub, "t1", "task", engine=None)
    hub.assigned("t1", b"uuid-0", True)
    request(hub, "t1", "task", engine=None)  # e.g. a replayed copy on the monitor feed
    assert hub.unassigned == set()
    assert hub.queue_status()["unassigned"] == 0


def test_second_reply_does_not_double_count_bytes() -> None:
    hub = live_hub(1)
    request(hub, "m1", "mux", engine=0)
    reply(hub, "m1", buffers=[b"x" * 100])
    reply(hub, "m1", buffers=[b"y" * 40])
    assert hub.records.nbytes == 40
    assert hub.queue_status()[0]["completed"] == 1
    hub.records.drop("m1")
    assert hub.records.nbytes == 0


# -- bounded records ---------------------------------------------------------------


def make(records: TaskRecords, msg_id: str, done: bool, buffers: list[Any] | None = None) -> TaskRecord:
    record = records.add(TaskRecord(msg_id=msg_id, channel="mux", client_ident=b"c"))
    if done:
        record.status = "ok"
        record.result_buffers = list(buffers or [])
        records.finished(record)
    return record


def test_records_bounded_by_count_evict_oldest_finished() -> None:
    records = TaskRecords(max_records=3)
    make(records, "a", done=True)
    make(records, "b", done=False)
    make(records, "c", done=True)
    make(records, "d", done=True)
    assert [r.msg_id for r in records.values()] == ["b", "c", "d"]
    make(records, "e", done=False)
    assert [r.msg_id for r in records.values()] == ["b", "d", "e"]
    assert records.evicted == 2
    assert "a" not in records and "b" in records


def test_pending_records_are_never_evicted() -> None:
    records = TaskRecords(max_records=2)
    for name in "abcd":
        make(records, name, done=False)
    assert len(records) == 4 and records.evicted == 0
    assert [r.msg_id for r in records.pending()] == ["a", "b", "c", "d"]


def test_count_bound_comes_back_once_pending_records_finish() -> None:
    records = TaskRecords(max_records=2)
    pending = [make(records, name, done=False) for name in "abcd"]
    for record in pending:
        record.status = "ok"
        records.finished(record)
    make(records, "e", done=False)
    assert len(records) <= 2
    assert "e" in records


def test_records_bounded_by_bytes() -> None:
    records = TaskRecords(max_bytes=100)
    a = make(records, "a", done=True, buffers=[b"a" * 40])
    b = make(records, "b", done=True, buffers=[memoryview(b"b" * 40)])
    assert records.nbytes == 80 and not a.buffers_evicted
    c = make(records, "c", done=True, buffers=[bytearray(30)])
    assert a.buffers_evicted and a.result_buffers == []
    assert not b.buffers_evicted and b.result_buffers
    assert not c.buffers_evicted
    assert records.nbytes == 70
    assert "a" in records and a.status == "ok", "the record stays, only its buffers go"


def test_single_result_larger_than_the_byte_bound() -> None:
    records = TaskRecords(max_bytes=10)
    big = make(records, "big", done=True, buffers=[b"z" * 11])
    assert big.buffers_evicted and records.nbytes == 0


def test_a_result_above_the_per_record_limit_is_kept_without_its_buffers() -> None:
    records = TaskRecords(max_bytes=1000, max_result_bytes=50)
    small = make(records, "small", done=True, buffers=[b"s" * 50])
    big = make(records, "big", done=True, buffers=[b"b" * 30, bytearray(21)])
    assert big.buffers_too_large and big.result_buffers == [] and big.status == "ok"
    assert not big.buffers_evicted, "it was never kept, so it was not evicted either"
    assert not small.buffers_too_large and small.result_buffers
    assert records.nbytes == 50, "the big one takes nothing from the budget, and pushes nothing out"


def test_dropping_a_record_releases_its_bytes() -> None:
    records = TaskRecords(max_bytes=100)
    make(records, "a", done=True, buffers=[b"a" * 60])
    records.drop("a")
    records.drop("never-there")
    assert records.nbytes == 0
    b = make(records, "b", done=True, buffers=[b"b" * 60])
    assert not b.buffers_evicted


def test_count_eviction_releases_bytes() -> None:
    records = TaskRecords(max_records=1, max_bytes=100)
    make(records, "a", done=True, buffers=[b"a" * 60])
    make(records, "b", done=True, buffers=[b"b" * 60])
    assert "a" not in records
    assert records.nbytes == 60
    assert not records.get("b").buffers_evicted  # type: ignore[union-attr]


def test_add_existing_returns_the_first() -> None:
    records = TaskRecords()
    first = make(records, "a", done=False)
    again = records.add(TaskRecord(msg_id="a", channel="task", client_ident=b"x"))
    assert again is first and again.channel == "mux"


def test_a_registration_whose_heart_never_beats_expires() -> None:
    from taskyard.controller.hub_state import PENDING_BEATS_FACTOR, HubState

    state = HubState(max_misses=2)
    silent = state.register("silent")
    live = state.register("live")
    state.tick()
    assert state.heart_beat(b"live", str(state.hearts.beat).encode()) is live
    dead: list[object] = []
    for _ in range(PENDING_BEATS_FACTOR * 2 + 1):
        _, failed = state.tick()
        for engine in failed:
            dead.append(engine)
            state.unregister(engine.engine_id, "never beat")  # as the hub shell does
        state.heart_beat(b"live", str(state.hearts.beat).encode())
    assert dead == [silent]
    assert state.pending == {}
    assert live.engine_id in state.engines


def test_a_start_notice_after_the_reply_leaves_nothing_outstanding() -> None:
    from taskyard.controller.hub_state import HubState

    state = HubState(fails_tasks=True)
    engine = state.register("e0")
    state.tick()
    state.heart_beat(b"e0", str(state.hearts.beat).encode())
    header = {"msg_id": "t1", "msg_type": "apply_request", "date": 1.0}
    state.request_seen("task", b"client", None, header, {})
    state.reply_seen(b"e0", {"msg_id": "r1"}, header, {"status": "ok"}, {"status": "ok"}, [])
    state.assigned("t1", b"e0", True)  # the pure queue's engine reports the start late
    assert state.queue_status()[engine.engine_id] == {"queue": 0, "completed": 1, "tasks": 0}
    assert state.records.get("t1").engine_id == engine.engine_id  # type: ignore[union-attr]


def test_eviction_skips_pending_records_without_scanning_them() -> None:
    from taskyard.controller.hub_state import TaskRecord, TaskRecords

    records = TaskRecords(max_records=3)
    pending = [records.add(TaskRecord(f"p{i}", "task", b"c")) for i in range(2)]
    done = records.add(TaskRecord("d0", "task", b"c"))
    done.status = "ok"
    records.finished(done)
    newer = records.add(TaskRecord("d1", "task", b"c"))  # over the bound: the finished one goes
    assert "d0" not in records and all(p.msg_id in records for p in pending) and newer.msg_id in records
    # Records leave in the order they finished, not the order they came.
    for record in (pending[1], pending[0]):
        record.status = "ok"
        records.finished(record)
    records.add(TaskRecord("d2", "task", b"c"))
    assert "p1" not in records and "p0" in records


# -- stored result buffers are hashed before they are served ---------------------------


def test_stored_buffers_are_checked_once_when_first_served() -> None:
    from taskyard.protocol.session import DIGEST_THRESHOLD, Session

    sender, hub_session = Session(b"k"), Session(b"k")
    big = bytes(DIGEST_THRESHOLD)
    hub = live_hub(1)
    checks: list[int] = []

    def verify(buffers: list[Any], digests: list[bytes | None]) -> bool:
        checks.append(len(buffers))
        return hub_session.verify_buffers(buffers, digests)

    for msg_id, payload in (("good", big), ("forged", b"\x01" + big[1:])):
        request(hub, msg_id)
        signed = sender.deserialize(sender.serialize(sender.msg("apply_reply", buffers=[big])))
        record = hub.reply_seen(
            b"uuid-0",
            {"msg_id": f"reply-{msg_id}", "msg_type": "apply_reply"},
            {"msg_id": msg_id},
            {},
            {"status": "ok"},
            [payload],
            signed.digests,
            buffers_verified=False,
        )
        assert record is not None and not record.buffers_verified
    assert hub.records.nbytes == 2 * len(big)
    good, forged = hub.records.get("good"), hub.records.get("forged")
    assert good is not None and forged is not None
    assert hub.check_stored_buffers(good, verify) and hub.check_stored_buffers(good, verify)
    assert good.result_buffers == [big] and checks == [1]  # hashed once
    assert not hub.check_stored_buffers(forged, verify) and not hub.check_stored_buffers(forged, verify)
    assert forged.buffers_corrupt and forged.result_buffers == [] and checks == [1, 1]
    assert hub.records.nbytes == len(big)
    assert hub.counters["corrupt-result-buffers"] == 1


def test_purge_drops_named_and_engine_records_but_never_pending_ones() -> None:
    from taskyard.controller.hub_state import TaskRecord, TaskRecords

    records = TaskRecords()
    for msg_id, engine_id, done in [("a", 0, True), ("b", 1, True), ("c", 1, True), ("d", 1, False), ("e", 2, True)]:
        record = records.add(TaskRecord(msg_id=msg_id, channel="task", client_ident=b"c", engine_id=engine_id))
        if done:
            records.finished(record)
    assert sorted(records.purge(["a"], engine_ids=[1])) == ["a", "b", "c"]
    assert "d" in records and "e" in records
    assert records.purge("all") == ["e"]
    assert len(records) == 1
