"""AsyncResult's ipyparallel long tail, on MessageStates filled by hand (no client, no sockets)."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

import pytest

from taskyard.client.asyncresult import AsyncMapResult, AsyncResult
from taskyard.client.message_state import MessageState, SendTracker
from taskyard.error import CompositeError, RemoteError, TimeoutError


def done(msg_id: str, value: Any = None, error: BaseException | None = None, **reported: Any) -> MessageState:
    state = MessageState(msg_id, submitted=100.0)
    state.report({"engine_id": int(msg_id[-1]), "started": 101.0, "completed": 103.0, "status": "ok", **reported})
    state.finish(value, error)
    return state


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def test_metadata_keys_are_attributes_and_items() -> None:
    one = AsyncResult(None, [done("m-1", 5, stdout="hi\n")], is_scalar=True)
    assert one.started == _utc(101.0) and one.status == "ok" and one.engine_uuid is None
    assert one["stdout"] == "hi\n" and one.outputs == [] and one.execute_result is None
    many = AsyncResult(None, [done("m-1", 1), done("m-2", 2)])
    assert many.engine_id == [1, 2] and many["completed"] == [_utc(103.0)] * 2
    assert many[0] == 1 and many[1:] == [2] and many.error == [None, None]
    with pytest.raises(AttributeError, match="no_such_key"):
        _ = many.no_such_key
    with pytest.raises(AttributeError):
        _ = many._private
    with pytest.raises(TypeError, match="str .metadata. or int/slice"):
        _ = many[1.5]


def test_indexing_results_before_they_are_ready_is_a_timeout_but_metadata_is_not() -> None:
    pending = MessageState("m-1", submitted=100.0)
    ar = AsyncResult(None, [pending, done("m-2", 2)])
    assert ar["submitted"] == [_utc(100.0), _utc(100.0)] and ar.started[0] is None
    with pytest.raises(TimeoutError):
        _ = ar[0]


def test_timedelta_picks_the_earliest_start_and_the_latest_end() -> None:
    ar = AsyncResult(None, [done("m-1", 1), done("m-2", 2, completed=110.0)])
    assert ar.timedelta(ar.started, ar.completed) == 9.0
    assert ar.timedelta(ar.started, ar.completed, end_key=min) == 2.0
    assert ar.timedelta(_utc(0.0), _utc(1.5)) == 1.5


def test_minus_one_waits_forever() -> None:
    state = MessageState("m-1")
    ar = AsyncResult(None, [state], is_scalar=True)
    got: list[Any] = []
    waiters = [
        threading.Thread(target=lambda: got.append(ar.wait(-1))),
        threading.Thread(target=lambda: got.append(ar.get(-1))),
    ]
    for waiter in waiters:
        waiter.start()
    assert not ar.done()
    for listener in state.finish(42):
        listener(state)
    for waiter in waiters:
        waiter.join(5)
    assert sorted(got, key=str) == [42, True]


def test_return_exceptions_puts_errors_in_place_of_results() -> None:
    boom = RemoteError("ValueError", "bad")
    ar = AsyncResult(None, [done("m-1", 1), done("m-2", error=boom)])
    with pytest.raises(CompositeError):
        ar.get()
    assert ar.get(return_exceptions=True) == [1, boom]
    scalar = AsyncResult(None, [done("m-1", error=boom)], is_scalar=True, return_exceptions=True)
    assert scalar.get() is boom
    with pytest.raises(RemoteError):
        scalar.get(return_exceptions=False)


@pytest.mark.parametrize("ordered", [True, False])
def test_map_with_return_exceptions_gives_one_error_per_item_of_a_failed_chunk(ordered: bool) -> None:
    boom = RemoteError("ValueError", "bad")
    states = [done("m-1", [1, 2]), done("m-2", error=boom), done("m-3", [5])]
    amr = AsyncMapResult(None, states, ordered=ordered, return_exceptions=True, chunk_sizes=[2, 2, 1])
    assert amr.get() == [1, 2, boom, boom, 5]
    assert sorted(map(str, amr)) == sorted(map(str, [1, 2, boom, boom, 5]))
    plain = AsyncMapResult(None, states, ordered=ordered)
    with pytest.raises(RemoteError):
        list(plain)
    assert plain.get(return_exceptions=True) == [1, 2, boom, 5]  # sizes unknown: one error per chunk


def test_display_outputs_groups_by_type_or_engine(capsys: pytest.CaptureFixture[str]) -> None:
    ar = AsyncResult(None, [done("m-1", stdout="a1\n", stderr="e1\n"), done("m-2", stdout="a2\n")])
    ar.display_outputs()
    out, err = capsys.readouterr()
    assert out == "[stdout:1]\na1\n[stdout:2]\na2\n" and err == "[stderr:1]\ne1\n"
    ar.display_outputs(groupby="engine")
    assert capsys.readouterr().out == "[stdout:1]\na1\n[stdout:2]\na2\n"
    ar.display_outputs(groupby="order", result_only=True)
    assert capsys.readouterr() == ("", "")
    with pytest.raises(ValueError, match="groupby"):
        ar.display_outputs(groupby="colour")


def test_a_single_result_is_displayed_unlabelled_as_in_ipyparallel(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # outside IPython (another test may have left an InteractiveShell instance behind)
    monkeypatch.setattr("taskyard.client.outputs._ipython", lambda: None)
    result = {"data": {"text/plain": "5"}, "metadata": {}, "execution_count": 1}
    one = AsyncResult(None, [done("m-3", stdout="5555\n", stderr="careful\n", execute_result=result)], is_scalar=True)
    one.display_outputs()
    assert capsys.readouterr() == ("5555\n", "careful\n")  # no IPython here: no rich result either
    quiet = AsyncResult(None, [done("m-3")], is_scalar=True)
    quiet.display_outputs()
    assert capsys.readouterr() == ("", "")
    one.display_outputs(result_only=True)
    assert capsys.readouterr() == ("", "")


def test_stream_output_prints_what_arrives_while_inside(capsys: pytest.CaptureFixture[str]) -> None:
    state = MessageState("m-1")
    state.metadata["engine_id"] = 0
    state.metadata["stdout"] = "first\n"
    ar = AsyncResult(None, [state], is_scalar=True)
    with ar.stream_output():
        state.metadata["stdout"] += "second\n"
    assert capsys.readouterr().out == "[stdout:0]\nfirst\nsecond\n"  # one engine: labelled once


def test_sent_and_wait_for_send_follow_the_tracker() -> None:
    state = MessageState("m-1")
    state.tracker = SendTracker()
    ar = AsyncResult(None, [state, MessageState("m-2")])
    assert not ar.sent
    with pytest.raises(TimeoutError, match="not sent"):
        ar.wait_for_send(0.05)
    state.tracker.handed_over([])
    ar.wait_for_send(-1)
    assert ar.sent
