"""A request's state in the client: metadata built when first read, whatever the order."""

from __future__ import annotations

from datetime import datetime, timezone

from taskyard.client.asyncresult import MessageState

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
