"""The catalog of taskyard's message types: one place that says what each is.

Theory of operation
-------------------
Every request names its type in its header (``msg_type``). Which channel a
type travels on, what type its reply has, what the value of a successful
reply is, which flags its metadata may carry: these facts used to be written
again wherever a message was built or read (the reply type alone in seven
places, by two different rules). They live here, as :data:`CATALOG`, and
every process asks it:

- :func:`reply_type` gives the type of the answer to any request, also to
  one of a type nobody knows (``error_reply``), so that an unknown request is
  still answered and no scheduler slot or caller waits for it forever;
- :func:`error_content` builds the content of every error reply, whoever
  sends it (engine, scheduler, hub), so that the client reads them all with
  one function (:func:`taskyard.error.error_from_content`);
- :data:`TASK_FLAGS` are the metadata keys a load-balanced request may carry
  (``after``, ``follow``, ...): the client writes them, the scheduler parses
  them, the controller advertises them as features.

A new message type is one entry here plus its handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

#: What a successful reply's value is: the deserialized buffers (``apply``), the
#: content's ``execute_result`` (``execute``), or the reply message itself
#: (control and hub queries, whose callers read the content).
ResultKind = Literal["buffers", "execute_result", "message"]

#: Where an error reply comes from, as its content's ``origin`` says.
Origin = Literal["user", "engine", "scheduler", "hub", "client"]

#: The load-balanced flags a task request's metadata may carry, in wire names.
TASK_FLAGS: tuple[str, ...] = ("after", "follow", "timeout", "retries", "targets")


@dataclass(frozen=True)
class MessageType:
    """One request type: where it goes and what answers it."""

    msg_type: str
    #: the channels it may be sent on
    channels: tuple[str, ...]
    reply_type: str
    result: ResultKind = "message"
    #: metadata flags it may carry
    flags: tuple[str, ...] = ()
    #: whether the hub records it (and its reply) as a task
    is_recorded: bool = False


def _request(name: str, channels: tuple[str, ...], **kwargs: Any) -> MessageType:
    return MessageType(f"{name}_request", channels, f"{name}_reply", **kwargs)


_ENGINE = ("mux", "task")
_HUB = ("registration",)

#: Every request type, by name.
CATALOG: dict[str, MessageType] = {
    kind.msg_type: kind
    for kind in (
        # work for engines, direct (mux) or load-balanced (task)
        _request("apply", _ENGINE, result="buffers", flags=TASK_FLAGS, is_recorded=True),
        _request("execute", _ENGINE, result="execute_result", flags=TASK_FLAGS, is_recorded=True),
        # control of engines; abort also goes to the task scheduler
        _request("abort", ("control", "task")),
        _request("clear", ("control",)),
        _request("shutdown", ("control", "registration")),
        # the hub: engines register, clients and the scheduler ask
        _request("registration", _HUB),
        _request("unregistration", _HUB),
        _request("connection", _HUB),
        _request("queue", _HUB),
        _request("result", _HUB),
        _request("status", _HUB),
        _request("purge", _HUB),
        _request("stats", _HUB),
        _request("ping", _HUB),  # a client checking that the controller is alive
    )
}

#: The reply to a request of a type nobody knows.
ERROR_REPLY = "error_reply"

#: Requests the hub records as tasks (with their replies).
RECORDED_REQUESTS = frozenset(name for name, kind in CATALOG.items() if kind.is_recorded)

#: The replies to control requests (their value is the reply message).
CONTROL_REPLIES = frozenset(CATALOG[name].reply_type for name in ("abort_request", "clear_request", "shutdown_request"))

_BY_REPLY = {kind.reply_type: kind for kind in CATALOG.values()}


def reply_type(msg_type: str) -> str:
    """The type of the reply to a ``msg_type`` request (``error_reply`` if unknown).

    >>> reply_type("apply_request"), reply_type("no_such_thing")
    ('apply_reply', 'error_reply')
    """
    kind = CATALOG.get(msg_type)
    return kind.reply_type if kind is not None else ERROR_REPLY


def request_of(reply: str) -> MessageType | None:
    """The request type a ``reply`` answers (None for ``error_reply`` or unknown)."""
    return _BY_REPLY.get(reply)


def result_kind(reply: str) -> ResultKind:
    """What a successful ``reply``'s value is (see :data:`ResultKind`)."""
    kind = _BY_REPLY.get(reply)
    return kind.result if kind is not None else "message"


def method_of(reply: str) -> str:
    """The name of what a reply answers, for error messages (``apply``, ``execute``, ...)."""
    return reply.removesuffix("_reply")


def error_content(ename: str, evalue: str, origin: Origin, traceback: str = "", **extra: Any) -> dict[str, Any]:
    """The content of an error reply, whoever sends it.

    ``ename`` is the exception's type name: the client raises taskyard's own
    error of that name (``EngineError``, ``ImpossibleDependency``, ...) or a
    :class:`~taskyard.error.RemoteError` for anything else. ``extra`` keys
    (``engine_info``, ``status="aborted"``, ...) are added as they are.
    """
    content: dict[str, Any] = {
        "status": "error",
        "ename": ename,
        "evalue": evalue,
        "traceback": traceback,
        "origin": origin,
    }
    content.update(extra)
    return content
