"""The client's book of pending requests, without sockets.

Theory of operation
-------------------
Every request the client sends is a :class:`MessageState` in a
:class:`RequestBookState` from the moment it is signed until it *ends*. Events
come in (a reply, a reply whose buffer changed, an engine that died, the
controller lost, the client closed) and outcomes go out: ``(state, value,
error)`` triples that the shell (the client's IO thread) records with
``state.finish`` and passes on to the AsyncResults watching them. The book
never touches sockets, threads or clocks, so each rule is tested directly
(``tests/unit/test_request_book.py``, with :meth:`validate` after every event).

The one rule that matters most: **every event that takes a state out of the
book returns an outcome for it**. A state is removed from the book only by the
method that returns its outcome, and :func:`reply_outcome` never raises, so a
reply that cannot be decoded (a class this process cannot import, a
``__reduce__`` that fails on load, a corrupt buffer) ends its request with a
:class:`~taskyard.error.ResultDecodeError` naming the cause instead of leaving
a ``get()`` to wait forever.

Threads: :meth:`add` runs on the callers' threads, everything else on the IO
thread (or, once that thread is gone, on the thread closing the client). The
shell holds its lock around :meth:`add` and around the events that end many
states at once (they iterate the book); :meth:`on_reply` is one ``dict.pop``
and needs no lock, which keeps the reply path, the client's bottleneck, at
one lock acquisition per task (in ``finish``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from taskyard.client.execute_reply import ExecuteReply
from taskyard.client.message_state import MessageState
from taskyard.error import (
    ClientClosed,
    ControllerLost,
    ProtocolError,
    RemoteError,
    ResultDecodeError,
    error_from_content,
    task_error,
)
from taskyard.protocol.catalog import CONTROL_REPLIES, method_of, result_kind
from taskyard.protocol.serialize import deserialize_object
from taskyard.protocol.session import Message

#: What ending a request means: the state, its value, its error (None on success).
Outcome = tuple[MessageState, Any, "BaseException | None"]



def reply_outcome(state: MessageState, channel: str, msg: Message) -> tuple[Any, BaseException | None]:
    """What the reply ``msg`` (received on ``channel``) means for its request: ``(value, error)``.

    Never raises: a reply that cannot be decoded gives a
    :class:`~taskyard.error.ResultDecodeError` naming the cause.
    """
    try:
        # hub queries (on the registration channel) and control requests: the value is the reply itself
        if channel == "registration" or msg.msg_type in CONTROL_REPLIES:
            return msg, None
        state.report(msg.metadata)
        content = msg.content
        if content.get("status") == "ok":
            if result_kind(msg.msg_type) == "execute_result":
                return ExecuteReply(state.msg_id, content, state.metadata), None
            return deserialize_object(msg.buffers), None
        info = {"engine_id": msg.metadata.get("engine_id"), "engine_uuid": msg.metadata.get("engine_uuid")}
        info["method"] = method_of(msg.msg_type)
        return None, remote_error_for(content, info)
    except BaseException as exc:  # noqa: BLE001 - user classes may raise anything on load
        return None, decode_error(state.msg_id, exc)


def stored_outcome(state: MessageState, result: dict[str, Any], buffers: list[Any]) -> tuple[Any, BaseException | None]:
    """What a result record served by the hub (``result_request``) means: ``(value, error)``.

    Never raises, like :func:`reply_outcome`.
    """
    msg_id = state.msg_id
    try:
        state.report(result.get("metadata") or {})
        content = result.get("content") or {}
        header = result.get("header") or {}
        if content.get("status") != "ok":
            info = {k: state.metadata.get(k) for k in ("engine_id", "engine_uuid")}
            return None, remote_error_for(content, info)
        if result_kind(str(header.get("msg_type"))) == "execute_result":
            return ExecuteReply(msg_id, content, state.metadata), None
        if result.get("buffers_corrupt"):
            return None, ResultDecodeError(f"the hub's copy of the result of {msg_id} failed verification")
        if result.get("buffers_too_large"):
            return None, ResultDecodeError(
                f"the hub did not keep the result of {msg_id}: it is larger than IPController.max_result_mb"
            )
        if result.get("buffers_evicted"):
            return None, ResultDecodeError(f"the hub no longer holds the result of {msg_id}")
        return deserialize_object(buffers), None
    except BaseException as exc:  # noqa: BLE001 - as in reply_outcome
        return None, decode_error(msg_id, exc)


def decode_error(msg_id: str, exc: BaseException) -> ResultDecodeError:
    """The error for a result that arrived but cannot be decoded here, caused by ``exc``."""
    # deserialize_object wraps what unpickling raised in a ProtocolError: name the original
    root = exc.__cause__ if isinstance(exc, ProtocolError) and exc.__cause__ is not None else exc
    hint = ""
    if isinstance(root, (ImportError, AttributeError)):
        hint = " (is the module that defines the result's class importable in this process?)"
    error = ResultDecodeError(
        f"the result of {msg_id} arrived but cannot be decoded: {type(root).__name__}: {root}{hint}"
    )
    error.__cause__ = root
    return error


def remote_error_for(content: dict[str, Any], engine_info: dict[str, Any]) -> BaseException:
    """The exception a failed reply stands for (typed for taskyard's own errors)."""
    error = error_from_content(content, engine_info)
    if isinstance(error, RemoteError) and not error.engine_info:
        error.engine_info = dict(engine_info)
    return error


class RequestBookState:
    """The requests a client has sent that have not ended yet, keyed by msg_id.

    Examples
    --------
    >>> book = RequestBookState()
    >>> book.add(MessageState("m-1", engine_id=0))
    >>> [(s.msg_id, type(e).__name__) for s, _, e in book.on_engine_lost(0, "killed")]
    [('m-1', 'EngineError')]
    >>> len(book)
    0
    """

    def __init__(self) -> None:
        self._pending: dict[str, MessageState] = {}
        #: Why the book takes no more requests (the client closed), or None while open.
        self.closed_because: str | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._pending

    def get(self, msg_id: str | None) -> MessageState | None:
        """The pending state of ``msg_id``, if it has one."""
        return self._pending.get(msg_id) if msg_id is not None else None

    def pending(self) -> list[MessageState]:
        """The pending states, oldest first."""
        return list(self._pending.values())

    # -- events -----------------------------------------------------------

    def add(self, state: MessageState) -> None:
        """A request was signed and is about to be sent; raises ClientClosed once closed."""
        if self.closed_because is not None:
            raise ClientClosed(f"cannot send {state.msg_id}: {self.closed_because}")
        self._pending[state.msg_id] = state

    def on_reply(self, channel: str, msg: Message) -> Outcome | None:
        """A verified reply; None if it answers nothing pending (a late or foreign reply)."""
        state = self._pending.pop(msg.parent_id, None) if msg.parent_id is not None else None
        if state is None:
            return None
        value, error = reply_outcome(state, channel, msg)
        return state, value, error

    def on_broken_reply(self, msg: Message, error: BaseException) -> Outcome | None:
        """A reply whose headers are authentic but whose content is unusable (e.g. a changed buffer)."""
        state = self._pending.pop(msg.parent_id, None) if msg.parent_id is not None else None
        if state is None:
            return None
        try:
            state.report(msg.metadata)
        except (TypeError, ValueError, AttributeError):
            pass  # the error below says what happened; odd metadata changes nothing
        return state, None, error

    def on_given_up(self, msg_id: str, error: BaseException) -> Outcome | None:
        """The caller stopped waiting for ``msg_id`` for good (a hub query timed out): it ends with ``error``."""
        state = self._pending.pop(msg_id, None)
        return None if state is None else (state, None, error)

    def on_engine_lost(self, engine_id: int, reason: str, task_ids: Iterable[str] = ()) -> list[Outcome]:
        """Engine ``engine_id`` died: its direct requests end, and the load-balanced
        ``task_ids`` the hub says were running there."""
        doomed = set(task_ids)
        ended = [s for s in self._pending.values() if s.engine_id == engine_id or s.msg_id in doomed]
        return self._end(ended, lambda m: task_error("EngineError", f"engine {engine_id} died before replying to {m} ({reason})"))

    def on_controller_lost(self, reason: str) -> list[Outcome]:
        """The controller is gone (``reason`` says how we know): everything pending ends.

        The book stays open: a controller may come back, and new requests are watched anew.
        """
        return self._end(self.pending(), lambda m: ControllerLost(f"no reply to {m}: {reason}"))

    def close(self, reason: str) -> list[Outcome]:
        """The client closed (``reason`` says how): everything pending ends, and no more requests are taken."""
        if self.closed_because is None:
            self.closed_because = reason
        return self._end(self.pending(), lambda m: ClientClosed(f"no reply to {m}: {reason}"))

    def _end(self, states: list[MessageState], error_for: Callable[[str], BaseException]) -> list[Outcome]:
        # pop, not del: on_reply pops without the shell's lock (see the theory of operation)
        ended = [state for state in states if self._pending.pop(state.msg_id, None) is not None]
        return [(state, None, error_for(state.msg_id)) for state in ended]

    # -- checks -----------------------------------------------------------

    def validate(self) -> None:
        """Check the book's invariants (for tests)."""
        for msg_id, state in self._pending.items():
            assert state.msg_id == msg_id, f"{state.msg_id} is filed under {msg_id}"
            assert not state.is_done, f"{msg_id} ended but is still pending"
        if self.closed_because is not None:
            assert not self._pending, "a closed book holds pending requests"
