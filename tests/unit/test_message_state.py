"""A request's state in the client: metadata built when first read, whatever the order."""

from __future__ import annotations

import concurrent.futures
import gc
import threading
import time
from datetime import datetime, timezone

import pytest

from taskyard.client.asyncresult import AsyncResult, MessageState
from taskyard.error import TimeoutError

REPORT = {"engine_id": 3, "started": 1_700_000_000.0, "completed": 1_700_000_001.5, "status": "ok", "stdout": "hi\n"}


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def test_metadata_read_after_the_reply_has_everything() -> None:
    state = MessageState("m-1", submitted=1_699_999_999.0)
    state.report(REPORT)
    state.finish("value")
    md = state.metadata
    assert md.msg_id == "m-1" and md.engine_id == 3 and md.status == "ok" and md.stdout == "hi\n"
    assert md.submitted == _utc(1_699_999_999.0)
    assert md.started == _utc(1_700_000_000.0) and md.completed == _utc(1_700_000_001.5)
    assert isinstance(md.received, datetime) and md.received.tzinfo is not None
    assert state.metadata is md  # built once


def test_metadata_read_before_the_reply_is_updated_in_place() -> None:
    state = MessageState("m-2")
    md = state.metadata
    assert md.engine_id is None and md.received is None and md.submitted is None
    state.report(REPORT)
    state.finish("value")
    assert md.engine_id == 3 and md.completed == _utc(1_700_000_001.5) and isinstance(md.received, datetime)


def test_a_second_report_goes_on_top_and_keeps_earlier_output() -> None:
    state = MessageState("m-3")
    state.report(REPORT)
    state.report({"status": "error", "stdout": "", "engine_id": 4})
    md = state.metadata
    assert md.status == "error" and md.engine_id == 4
    assert md.stdout == "hi\n"  # an empty stream in the later report does not erase the earlier one


def _resolve_later(state: MessageState, value: object, delay: float) -> threading.Thread:
    def finish() -> None:
        time.sleep(delay)
        for listener in state.finish(value):
            listener(state)

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


def test_a_result_wakes_whoever_waits_for_it() -> None:
    states = [MessageState(f"m-{i}") for i in range(3)]
    results = [AsyncResult(None, [s], "f", is_scalar=True) for s in states]
    threads = [_resolve_later(s, i, 0.05 * (3 - i)) for i, s in enumerate(states)]
    try:
        assert results[0].get(timeout=5) == 0  # a blocked get() is woken
        order = [r.result() for r in concurrent.futures.as_completed(results, timeout=5)]
        assert sorted(order) == [0, 1, 2]
        done, pending = concurrent.futures.wait(results, timeout=5)
        assert len(done) == 3 and not pending
    finally:
        for thread in threads:
            thread.join(5)
    late = MessageState("m-late")
    with pytest.raises(TimeoutError):
        AsyncResult(None, [late], "f", is_scalar=True).get(timeout=0.05)


def test_a_pending_result_keeps_few_objects_for_the_garbage_collector() -> None:
    # Each task in flight keeps its AsyncResult and what hangs off it alive: the
    # collector walks them all, so a burst of 10,000 tasks pays for every one.
    gc.collect()
    before = len(gc.get_objects())
    kept = [AsyncResult(None, [MessageState(f"m-{i}")], "f", is_scalar=True) for i in range(1000)]
    per_result = (len(gc.get_objects()) - before) / len(kept)
    assert per_result <= 11, per_result  # threading.Condition alone would add five bound methods
