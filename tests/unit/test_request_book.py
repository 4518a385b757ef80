"""The client's sans-IO request book and controller watch, driven directly.

Every event goes through :class:`Book`, which calls ``validate()`` after it and
checks the one rule: each state an event takes out of the book comes back as
an outcome, and every outcome's state is out of the book.
"""

from __future__ import annotations

import pickle
import sys
import types
from typing import Any

import numpy as np
import pytest

from taskyard.client.controller_watch import ControllerWatchState
from taskyard.client.message_state import MessageState
from taskyard.client.request_book import Outcome, RequestBookState, reply_outcome, stored_outcome
from taskyard.error import (
    BufferChanged,
    ClientClosed,
    ControllerLost,
    EngineError,
    RemoteError,
    ResultDecodeError,
    TimeoutError,
)
from taskyard.protocol.serialize import serialize_object
from taskyard.protocol.session import Message, Session

SESSION = Session(b"key")


class Book:
    """A RequestBookState validated after every event."""

    def __init__(self) -> None:
        self.book = RequestBookState()
        self.book.validate()

    def add(self, msg_id: str, engine_id: int | None = None) -> MessageState:
        state = MessageState(msg_id, 1.0, engine_id)
        self.book.add(state)
        self.book.validate()
        return state

    def _ended(self, outcomes: list[Outcome]) -> list[Outcome]:
        self.book.validate()
        for state, _, _ in outcomes:
            assert state.msg_id not in self.book
        return outcomes

    def reply(self, channel: str, msg: Message) -> Outcome | None:
        outcome = self.book.on_reply(channel, msg)
        self._ended([outcome] if outcome is not None else [])
        return outcome

    def engine_lost(self, engine_id: int, task_ids: tuple[str, ...] = ()) -> list[Outcome]:
        return self._ended(self.book.on_engine_lost(engine_id, "killed", task_ids))

    def controller_lost(self) -> list[Outcome]:
        return self._ended(self.book.on_controller_lost("silent for 10 s"))

    def close(self) -> list[Outcome]:
        return self._ended(self.book.close("the client was closed"))


def reply_to(state: MessageState, value: Any = None, status: str = "ok", **kwargs: Any) -> Message:
    buffers = kwargs.pop("buffers", None)
    if buffers is None:
        buffers = serialize_object(value)
    content = {"status": status, **kwargs}
    metadata = {"engine_id": 2, "engine_uuid": "u-2", "started": 2.0, "completed": 3.0, "status": status}
    return SESSION.msg("apply_reply", content, parent={"msg_id": state.msg_id}, metadata=metadata, buffers=buffers)


# -- replies -------------------------------------------------------------------------------------


def test_a_reply_ends_its_request_with_the_value_and_the_metadata() -> None:
    book = Book()
    state = book.add("m-1")
    outcome = book.reply("task", reply_to(state, {"x": np.arange(3)}))
    assert outcome is not None
    got, value, error = outcome
    assert got is state and error is None and list(value["x"]) == [0, 1, 2]
    assert state.metadata.engine_id == 2 and state.metadata.status == "ok"
    assert len(book.book) == 0


def test_a_late_or_foreign_reply_is_nothing() -> None:
    book = Book()
    book.add("m-1")
    assert book.reply("task", reply_to(MessageState("m-other"), 1)) is None
    assert "m-1" in book.book


def test_an_error_reply_ends_with_the_typed_or_remote_error() -> None:
    book = Book()
    state = book.add("m-1")
    content = {"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": "tb", "origin": "user"}
    _, _, error = book.reply("task", reply_to(state, status="error", buffers=[], **content)) or (None, None, None)
    assert isinstance(error, RemoteError) and error.ename == "ZeroDivisionError" and error.engine_id == 2
    other = book.add("m-2")
    content = {"ename": "EngineError", "evalue": "gone", "origin": "scheduler"}
    _, _, error = book.reply("task", reply_to(other, status="error", buffers=[], **content)) or (None, None, None)
    assert isinstance(error, EngineError)


def test_hub_queries_and_control_replies_give_the_message_itself() -> None:
    book = Book()
    state = book.add("q-1")
    msg = SESSION.msg("queue_reply", {"status": "ok"}, parent={"msg_id": "q-1"})
    assert book.reply("registration", msg) == (state, msg, None)


# -- replies that cannot be decoded: each ends its request, naming the cause --------------------


def _fail_on_load() -> None:
    raise RuntimeError("this result refuses to load")


class RefusesToLoad:
    def __reduce__(self) -> tuple[Any, ...]:
        return (_fail_on_load, ())


def _ghost_instance_frames() -> list[Any]:
    """The pickle of an instance of a class whose module this process no longer has."""
    module = types.ModuleType("taskyard_ghost_module")
    exec("class Ghost:\n    pass\n", module.__dict__)  # noqa: S102 - a class in a module we then remove
    module.Ghost.__module__ = "taskyard_ghost_module"
    sys.modules["taskyard_ghost_module"] = module
    try:
        return [pickle.dumps(module.Ghost(), protocol=5)]
    finally:
        del sys.modules["taskyard_ghost_module"]


@pytest.mark.parametrize(
    ("buffers", "cause"),
    [
        (_ghost_instance_frames(), "ModuleNotFoundError: No module named 'taskyard_ghost_module'"),
        (serialize_object(RefusesToLoad()), "RuntimeError: this result refuses to load"),
        ([b"\x80\x05 not a pickle at all"], "UnpicklingError"),
        ([], "no frames to deserialize"),
    ],
    ids=["class-not-importable", "reduce-fails-on-load", "corrupt-buffer", "no-buffers"],
)
def test_an_undecodable_reply_ends_its_request_with_a_decode_error(buffers: list[Any], cause: str) -> None:
    book = Book()
    state = book.add("m-1")
    outcome = book.reply("task", reply_to(state, buffers=buffers))
    assert outcome is not None
    _, value, error = outcome
    assert value is None and isinstance(error, ResultDecodeError)
    assert "m-1" in str(error) and cause in str(error)
    assert len(book.book) == 0


def test_reply_outcome_never_raises_even_on_absurd_metadata() -> None:
    state = MessageState("m-1")
    msg = reply_to(state, 1)
    msg.metadata = {"started": object()}  # type: ignore[dict-item]
    value, error = reply_outcome(state, "task", msg)
    assert (value, error) == (1, None) or isinstance(error, ResultDecodeError)


def test_a_reply_with_a_changed_buffer_ends_with_that_error() -> None:
    book = Book()
    state = book.add("m-1")
    outcome = book.book.on_broken_reply(reply_to(state, 1), BufferChanged("changed"))
    book.book.validate()
    assert outcome is not None and isinstance(outcome[2], BufferChanged)
    assert book.book.on_broken_reply(reply_to(state, 1), BufferChanged("again")) is None


def test_stored_results_from_the_hub_end_their_state_whatever_they_hold() -> None:
    state = MessageState("m-1")
    ok = {"content": {"status": "ok"}, "header": {"msg_type": "apply_reply"}, "metadata": {"engine_id": 1}}
    assert stored_outcome(state, ok, serialize_object([1, 2])) == ([1, 2], None)
    assert state.metadata.engine_id == 1
    _, error = stored_outcome(MessageState("m-2"), ok, serialize_object(RefusesToLoad()))
    assert isinstance(error, ResultDecodeError) and "refuses to load" in str(error)
    for flag in ("buffers_corrupt", "buffers_too_large", "buffers_evicted"):
        _, error = stored_outcome(MessageState("m-3"), {**ok, flag: True}, [])
        assert isinstance(error, ResultDecodeError) and "m-3" in str(error)
    _, error = stored_outcome(MessageState("m-4"), {"content": "not a dict"}, [])
    assert isinstance(error, ResultDecodeError)


# -- events that end many requests ---------------------------------------------------------------


def test_an_engine_death_ends_its_direct_requests_and_the_tasks_it_ran() -> None:
    book = Book()
    book.add("d-0", engine_id=0)
    book.add("d-1", engine_id=1)
    book.add("t-1")
    book.add("t-2")
    ended = book.engine_lost(0, task_ids=("t-1", "unknown"))
    assert sorted(s.msg_id for s, _, _ in ended) == ["d-0", "t-1"]
    assert all(isinstance(e, EngineError) and "engine 0" in str(e) for _, _, e in ended)
    assert sorted(s.msg_id for s in book.book.pending()) == ["d-1", "t-2"]


def test_a_lost_controller_ends_everything_but_the_book_stays_open() -> None:
    book = Book()
    book.add("a")
    book.add("b", engine_id=3)
    ended = book.controller_lost()
    assert [s.msg_id for s, _, _ in ended] == ["a", "b"]
    assert all(isinstance(e, ControllerLost) and "silent" in str(e) for _, _, e in ended)
    book.add("c")  # a controller may come back
    assert len(book.book) == 1


def test_closing_ends_everything_and_refuses_new_requests() -> None:
    book = Book()
    book.add("a")
    ended = book.close()
    assert len(ended) == 1 and isinstance(ended[0][2], ClientClosed)
    with pytest.raises(ClientClosed, match="the client was closed"):
        book.add("b")
    assert book.close() == []


def test_giving_up_on_a_request_ends_it_once() -> None:
    book = Book()
    state = book.add("q")
    error = TimeoutError("no answer")
    assert book.book.on_given_up("q", error) == (state, None, error)
    assert book.book.on_given_up("q", error) is None
    book.book.validate()


def test_a_random_story_never_loses_a_request() -> None:
    """Whatever happens in whatever order, every request added ends exactly once."""
    import random

    rng = random.Random(5)
    book = Book()
    added: dict[str, MessageState] = {}
    ended: list[str] = []
    for step in range(2000):
        choice = rng.random()
        if choice < 0.5 and book.book.closed_because is None:
            msg_id = f"m-{step}"
            added[msg_id] = book.add(msg_id, engine_id=rng.choice([None, 0, 1]))
        elif choice < 0.85 and added:
            target = added[rng.choice(list(added))]
            outcome = book.reply("task", reply_to(target, step))
            ended += [outcome[0].msg_id] if outcome else []
        elif choice < 0.95:
            ended += [s.msg_id for s, _, _ in book.engine_lost(rng.choice([0, 1]))]
        elif choice < 0.99:
            ended += [s.msg_id for s, _, _ in book.controller_lost()]
        else:
            ended += [s.msg_id for s, _, _ in book.close()]
        for msg_id in ended[-3:]:
            added[msg_id].finish()  # as the shell does
    ended += [s.msg_id for s, _, _ in book.close()]
    assert sorted(ended) == sorted(added)


# -- the controller watch ------------------------------------------------------------------------


def test_the_watch_probes_a_silent_controller_then_gives_it_up() -> None:
    watch = ControllerWatchState(probe_period=2.0, timeout=10.0)
    verdicts = {now: watch.tick(float(now), has_pending=True) for now in range(11)}
    assert [now for now, v in verdicts.items() if v == "probe"] == [2, 4, 6, 8]
    assert verdicts[10] == "lost"
    assert watch.tick(11.0, has_pending=True) is None  # watching afresh


def test_a_controller_that_answers_probes_is_never_lost() -> None:
    watch = ControllerWatchState(probe_period=2.0, timeout=5.0)
    for now in range(1000):  # a task running for 1000 s on a healthy controller
        if watch.tick(float(now), has_pending=True) == "probe":
            watch.heard(now + 0.01)  # the hub's ping_reply
        assert watch.tick(float(now), has_pending=True) != "lost"


def test_silence_while_nothing_is_pending_counts_for_nothing() -> None:
    watch = ControllerWatchState(probe_period=2.0, timeout=5.0)
    assert watch.tick(100.0, has_pending=False) is None
    assert watch.tick(101.0, has_pending=True) is None
    assert watch.tick(102.0, has_pending=True) == "probe"
