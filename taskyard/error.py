"""The taskyard exception hierarchy.

Every class says who raises it and when. Every class pickles (its ``__reduce__``
rebuilds it from its constructor arguments), because errors travel: an engine
raises, the scheduler fails a task, the hub stores the failure, a client raises it
again in the user's process.

The names follow ipyparallel's so that ``except ipp.error.X`` becomes
``except ty.error.X`` and nothing else changes.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = [
    "TaskyardError",
    "ProtocolError",
    "ConfigError",
    "KernelError",
    "TaskTimeout",
    "RemoteError",
    "CompositeError",
    "AlreadyDisplayedError",
    "TracebackLines",
    "EngineError",
    "TimeoutError",
    "NoEnginesRegistered",
    "UnmetDependency",
    "ImpossibleDependency",
    "DependencyTimeout",
    "InvalidDependency",
    "TaskAborted",
    "error_from_content",
    "task_error",
]


class TaskyardError(Exception):
    """Base class of every error taskyard raises on purpose."""

    #: The engine the failure concerns (``engine_id``, ``engine_uuid``), when known.
    engine_info: Mapping[str, Any] = MappingProxyType({})

    def __reduce__(self) -> tuple[Any, ...]:
        # the attributes go along as state: callers set some after construction
        return (type(self), self.args, self.__dict__ or None)


class ProtocolError(TaskyardError):
    """Raised when a message cannot be parsed or its signature is wrong.

    Raised by :mod:`taskyard.protocol` at the edge of every process; the shell
    that received the message logs it, counts it and drops it.
    """


class ConfigError(TaskyardError, ValueError):
    """Raised for a bad setting: an unknown scheme, a bad log level, a missing
    connection file. The message lists the valid choices where there are some."""


class KernelError(TaskyardError):
    """Raised when an engine could not run a request at all (as opposed to the
    user's code raising, which is a :class:`RemoteError`).

    As in ipyparallel, it is also the base of every error about a request's fate
    (:class:`RemoteError`, :class:`EngineError`, :class:`TaskTimeout`, the
    dependency errors), so ``except KernelError`` catches them all."""


class TaskTimeout(KernelError):
    """Raised for a load-balanced task whose ``timeout=`` flag expired before the
    scheduler could assign it to an engine. The scheduler raises it as a
    :class:`DependencyTimeout`, which is both, so ``except ty.TaskTimeout``
    (ipyparallel's name) and ``except ty.DependencyTimeout`` both catch it."""


class TimeoutError(TaskyardError, builtins.TimeoutError):  # noqa: A001
    """Raised by ``AsyncResult.get(timeout)``, ``Client.wait_for_engines`` and
    every other client-side wait that ran out of time before the work finished.
    The work itself goes on."""


class NoEnginesRegistered(KernelError, IndexError):
    """Raised by the client when work is aimed at engines and none is registered,
    or at an engine id that is not registered (``rc[7]``); also an ``IndexError``,
    which ipyparallel raises for an unknown engine id."""


class EngineError(KernelError):
    """Raised for a request whose engine died (stopped answering heartbeats or
    unregistered) before it replied. Set by the hub or the scheduler."""


class TaskAborted(KernelError):
    """Raised for a request that was aborted (``Client.abort``) before it ran."""


class TracebackLines(list[str]):
    """What ``render_traceback()`` returns: a list of lines, as in ipyparallel
    (``"\\n".join(error.render_traceback())``), that prints as the text."""

    def __str__(self) -> str:
        return "\n".join(self)


class RemoteError(KernelError):
    """An exception raised by user code on an engine.

    Attributes
    ----------
    ename : str
        The remote exception's type name, e.g. ``"ZeroDivisionError"``.
    evalue : str
        ``str()`` of the remote exception.
    traceback : str
        The remote traceback, formatted.
    engine_info : dict
        ``{"engine_id": int, "engine_uuid": str, "method": str}`` of where it ran.
    """

    def __init__(
        self,
        ename: str,
        evalue: str,
        traceback: str = "",
        engine_info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(ename, evalue, traceback, engine_info)
        self.ename = ename
        self.evalue = evalue
        self.traceback = traceback
        self.engine_info = dict(engine_info or {})

    @property
    def engine_id(self) -> int | None:
        return self.engine_info.get("engine_id")

    def __str__(self) -> str:
        where = ""
        if self.engine_id is not None:
            where = f"[engine {self.engine_id}] "
        return f"{where}{self.ename}: {self.evalue}"

    def render_traceback(self) -> TracebackLines:
        """The remote traceback with a header naming the engine, as lines
        (ipyparallel's type); ``str()`` or ``print()`` of it gives the text."""
        # "[engine 0:execute]": the engine and the kind of request, as ipyparallel's "[0:execute]"
        method = self.engine_info.get("method")
        where = "?" if self.engine_id is None else str(self.engine_id)
        header = f"[engine {where}:{method}]" if method else f"[engine {where}]"
        body = self.traceback.rstrip() or f"{self.ename}: {self.evalue}"
        return TracebackLines(f"{header} {body}".splitlines())

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of the local traceback of the client.
        return list(self.render_traceback())

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        # IPython shows this when the error is a value (e.g. ``ar.exception()``).
        p.text(f"{type(self).__name__}: {self}\n{self.render_traceback()}")

    def _repr_html_(self) -> str:
        import html

        return (
            f"<div><b style='color:#b00'>{html.escape(type(self).__name__)}</b>: {html.escape(str(self))}"
            f"<pre>{html.escape(str(self.render_traceback()))}</pre></div>"
        )

    def print_traceback(self) -> None:
        print(self.render_traceback())  # noqa: T201 - asked for by the user


class ErrorInfo(NamedTuple):
    """One engine's error in :attr:`CompositeError.elist`, shaped as in ipyparallel:
    ``for ename, evalue, tb, engine_info in error.elist`` works, and so do the
    attributes (``info.ename``, ``info.engine_info["engine_id"]``)."""

    ename: str
    evalue: str
    traceback: str
    engine_info: dict[str, Any]

    @classmethod
    def of(cls, error: BaseException) -> ErrorInfo:
        return cls(
            str(getattr(error, "ename", type(error).__name__)),
            str(getattr(error, "evalue", error)),
            str(getattr(error, "traceback", "") or ""),
            dict(getattr(error, "engine_info", {}) or {}),
        )


class CompositeError(RemoteError):
    """Several errors from several engines, raised by multi-engine results.

    ``errors`` holds the individual exceptions (:class:`RemoteError`,
    :class:`EngineError`, ...), in the order of the requests; ``elist`` the
    same as ipyparallel's ``(ename, evalue, traceback, engine_info)`` tuples
    (:class:`ErrorInfo`). ``render_traceback()`` draws the first
    :attr:`tb_limit` tracebacks and counts the rest.
    """

    #: how many tracebacks ``render_traceback()`` draws (ipyparallel's 4)
    tb_limit = 4

    def __init__(self, message: str, elist: list[BaseException]) -> None:
        TaskyardError.__init__(self, message, elist)
        self.message = message
        self.errors = list(elist)
        self.elist = [ErrorInfo.of(e) for e in self.errors]
        first = self.elist[0] if self.elist else None
        self.ename = first.ename if first else ""
        self.evalue = first.evalue if first else ""
        self.traceback = first.traceback if first else ""
        self.engine_info = dict(first.engine_info) if first else {}

    def __str__(self) -> str:
        lines = [f"{self.message} ({len(self.errors)} errors)"]
        for error in self.errors:
            lines.append(f"  {error}")
        return "\n".join(lines)

    def render_traceback(self, excid: int | None = None) -> TracebackLines:
        """The tracebacks as lines: of error ``excid``, or of the first
        :attr:`tb_limit` errors and a count of the others."""
        if excid is not None:
            if not -len(self.errors) <= excid < len(self.errors):
                raise IndexError(f"an exception with index {excid} does not exist")
            return _render_one(self.errors[excid])
        lines = TracebackLines([f"{self.message}:"])
        for error in self.errors[: self.tb_limit]:
            lines += [*_render_one(error), ""]
        if len(self.errors) > self.tb_limit:
            lines.append(f"... {len(self.errors) - self.tb_limit} more exceptions ...")
        return lines

    def raise_exception(self, index: int = 0) -> None:
        """Raise the ``index``-th error on its own."""
        raise self.errors[index]


def _render_one(error: BaseException) -> TracebackLines:
    if isinstance(error, RemoteError):
        return error.render_traceback()
    return TracebackLines([f"{type(error).__name__}: {error}"])


class AlreadyDisplayedError(RemoteError):
    """Raised by ``%%px`` after the engines' tracebacks were already streamed into
    the cell: it wraps the original error (``original_error``, a CompositeError
    or RemoteError) and renders only as ``"<n> errors"``, so nothing shows twice."""

    def __init__(self, original_error: RemoteError) -> None:
        super().__init__(
            original_error.ename, original_error.evalue, original_error.traceback, dict(original_error.engine_info)
        )
        self.original_error = original_error
        self.n = len(original_error.errors) if isinstance(original_error, CompositeError) else 1

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.original_error,))

    def __repr__(self) -> str:
        return f"<{type(self).__name__}({self.n} errors)>"

    def __str__(self) -> str:
        return f"{self.n} errors"

    def render_traceback(self) -> TracebackLines:
        return TracebackLines([str(self)])


class UnmetDependency(KernelError):
    """Raised by a task's function on an engine (via ``@require``, ``@depend``
    or ``dependent``) when the engine cannot run it; the scheduler re-routes the
    task and never sends it to that engine again."""


class ImpossibleDependency(UnmetDependency):
    """Raised for a task the scheduler can never run: a dependency failed under
    ``success_only``, ``follow`` dependencies ran on several engines, or every
    live engine is excluded."""


class DependencyTimeout(ImpossibleDependency, TaskTimeout):
    """Raised by the scheduler for a task whose ``timeout`` expired while it was
    still waiting to be assigned to an engine. It is also a :class:`TaskTimeout`,
    the class ipyparallel 9 raises for that case."""


class InvalidDependency(ImpossibleDependency):
    """Raised for a task that depends on an unknown msg_id or on itself."""


_BY_NAME: dict[str, type[TaskyardError]] = {
    cls.__name__: cls
    for cls in (
        TaskyardError,
        ProtocolError,
        ConfigError,
        KernelError,
        TaskTimeout,
        TimeoutError,
        NoEnginesRegistered,
        EngineError,
        TaskAborted,
        UnmetDependency,
        ImpossibleDependency,
        DependencyTimeout,
        InvalidDependency,
    )
}


#: ipyparallel's ``ename`` for a task's expired ``timeout``.
_ENAMES = {"DependencyTimeout": "TaskTimeout"}

_FLAVOURS: dict[type[TaskyardError], type[TaskyardError]] = {}


def _flavour(cls: type[TaskyardError]) -> type[TaskyardError]:
    """``cls`` that is also a :class:`RemoteError` (cached; same name and docs as ``cls``)."""
    flavour = _FLAVOURS.get(cls)
    if flavour is None:
        namespace = {
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
            "__init__": _flavour_init,
            "__str__": _flavour_str,
            "__reduce__": _flavour_reduce,
            "_plain": cls,
        }
        bases = (RemoteError,) if issubclass(RemoteError, cls) else (cls, RemoteError)  # KernelError is RemoteError's base
        flavour = _FLAVOURS[cls] = type(cls.__name__, bases, namespace)
    return flavour


def _flavour_init(self: Any, message: str = "", engine_info: Mapping[str, Any] | None = None) -> None:
    Exception.__init__(self, message)
    self.ename = _ENAMES.get(self._plain.__name__, self._plain.__name__)
    self.evalue = message
    self.traceback = ""
    self.engine_info = dict(engine_info or {})


def _flavour_str(self: Any) -> str:
    return str(self.evalue)


def _flavour_reduce(self: Any) -> tuple[Any, ...]:
    return (task_error, (self._plain.__name__, self.evalue, self.engine_info), None)


def task_error(name: str, message: str, engine_info: Mapping[str, Any] | None = None) -> TaskyardError:
    """The error taskyard raises for a task's fate (``"EngineError"``, ``"TaskAborted"``,
    ``"ImpossibleDependency"``, ...): an instance of that class which is also a
    :class:`RemoteError`, as ipyparallel delivers them. So both
    ``except ty.EngineError`` and ipyparallel's ``except ty.RemoteError as e:
    e.ename == "EngineError"`` catch it; ``ename`` is ipyparallel's name
    (``"TaskTimeout"`` for an expired ``timeout``) and ``evalue`` the message."""
    return _flavour(_BY_NAME[name])(message, engine_info)


def error_from_content(content: dict[str, Any], engine_info: dict[str, Any] | None = None) -> BaseException:
    """Rebuild the exception a reply's ``content`` describes.

    Errors raised by taskyard itself (``ename`` one of this module's classes, and
    ``origin`` not ``"user"``) come back as that typed class, also a
    :class:`RemoteError` (see :func:`task_error`), so users can catch them by
    either name; anything raised by user code comes back as a :class:`RemoteError`.
    """
    ename = str(content.get("ename", "Error"))
    evalue = str(content.get("evalue", ""))
    traceback = content.get("traceback", "")
    if isinstance(traceback, list):
        traceback = "\n".join(str(line) for line in traceback)
    info = dict(engine_info or content.get("engine_info") or {})
    cls = _BY_NAME.get(ename)
    if cls is not None and content.get("origin") != "user":
        if issubclass(cls, KernelError):
            return task_error(ename, evalue, info)
        error = cls(evalue)
        error.engine_info = info  # which engine (if any) the failure concerns
        return error
    return RemoteError(ename, evalue, str(traceback), info)


# -- the client's own failures (helper A, issue 12) ---------------------------------------------


class ClientClosed(TaskyardError):
    """Raised for every result still pending when :meth:`Client.close` was called, and by any
    request sent on a closed client. Also raised for what is pending when the client's IO
    thread died (a broken socket, a bug): the client is closed from then on; make a new one."""


class ControllerLost(TaskyardError):
    """Raised for every result still pending when the client lost its controller: it sent a
    ``shutdown_notification``, or it answered nothing, not even a liveness probe, for
    ``Client.controller_timeout`` seconds (killed, frozen, or the network is gone). The client
    stays usable: requests sent later are watched the same way."""


class ResultDecodeError(TaskyardError):
    """Raised by ``AsyncResult.get()`` when a reply arrived but could not be decoded in this
    process: a result class this process cannot import, a ``__reduce__`` that fails on load,
    a corrupt buffer. The message names the cause; ``__cause__`` is the original exception
    when there is one. The task itself ran (or failed) on its engine."""


class BufferChanged(ProtocolError):
    """Raised when a message's headers are authentic (their MAC holds over the headers and
    the buffers' signed digests) but a large buffer no longer matches its digest: the sender
    changed an array it passed to ``apply_async``/``push(block=False)`` after the call
    returned and before the bytes left its process (large buffers are sent without a copy).

    Raised by :meth:`Session.deserialize` in the receiver (the scheduler, an engine, the
    client), which answers the request with this error instead of dropping it; the sender's
    ``AsyncResult.get()`` then raises it. ``message`` holds the parsed message (receiver only).
    """

    #: The authentic message whose buffer changed (set by the receiving Session; not sent on).
    message: Any = None


class MessageTooLarge(ProtocolError):
    """Raised by :meth:`Session.deserialize` (when asked, with ``answer_oversized=True``) for an
    authentic message with a header frame over ``MAX_JSON_FRAME`` bytes; ``message`` holds its
    header and parent header. The client then fails the request it answers with a
    :class:`ResultDecodeError` instead of dropping the reply; other receivers drop it."""

    #: The message's header and parent header only (set by the receiving Session).
    message: Any = None


_BY_NAME.update(
    {cls.__name__: cls for cls in (ClientClosed, ControllerLost, ResultDecodeError, BufferChanged, MessageTooLarge)}
)
__all__ += ["ClientClosed", "ControllerLost", "ResultDecodeError", "BufferChanged", "MessageTooLarge"]


class UnsupportedOption(TaskyardError, TypeError, ValueError):
    """An ipyparallel option or keyword that taskyard does not implement (or an unknown one).

    The message names the option and what to do instead; taskyard never accepts
    an option and ignores it.
    """


_BY_NAME[UnsupportedOption.__name__] = UnsupportedOption
__all__ += ["UnsupportedOption"]
