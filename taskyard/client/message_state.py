"""What the client knows about one request (msg_id): its outcome and its metadata.

A :class:`MessageState` is created when a request is sent, kept in the client's
request book (:mod:`taskyard.client.request_book`) until it ends, and watched by
the :class:`~taskyard.client.asyncresult.AsyncResult` objects that cover it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import zmq

from taskyard.error import TimeoutError

_TIME_KEYS = ("submitted", "started", "completed", "received")


class Metadata(dict):  # type: ignore[type-arg]
    """A dict of a request's metadata that also allows attribute access.

    Keys: ``msg_id``, ``submitted``, ``started``, ``completed``, ``received``
    (datetimes, UTC), ``engine_id``, ``engine_uuid``, ``status``, ``stdout``,
    ``stderr``; ipyparallel's other keys (``after``, ``follow``, ``data``,
    ``error``, ``execute_input``, ``execute_result``, ``label``, ``outputs``),
    empty until filled (``error`` is the request's exception once it failed);
    and whatever else the engine reported.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None


def make_metadata(msg_id: str, submitted: float | None = None) -> Metadata:
    md = Metadata(
        msg_id=msg_id,
        submitted=_as_datetime(submitted),
        started=None,
        completed=None,
        received=None,
        engine_id=None,
        engine_uuid=None,
        status=None,
        stdout="",
        stderr="",
        # the rest of ipyparallel's keys, so that code reading them finds them
        after=[],
        follow=[],
        data={},
        error=None,
        execute_input=None,
        execute_result=None,
        label=None,
        outputs=[],
    )
    return md


def update_metadata(md: Metadata, reported: dict[str, Any]) -> None:
    for key, value in reported.items():
        if key in _TIME_KEYS:
            if value is not None:
                md[key] = _as_datetime(value)
        elif key not in ("stdout", "stderr") or value:
            md[key] = value


class MessageState:
    """What the client knows about one msg_id; filled by the IO thread.

    Its :attr:`metadata` is built when first read: most requests' metadata is
    never looked at, and turning three timestamps into datetimes cost a few µs
    per task on the IO thread, which is what bounds a client's throughput.
    """

    __slots__ = (
        "msg_id",
        "_metadata",
        "_submitted",
        "_reported",
        "_received",
        "is_done",
        "value",
        "error",
        "listeners",
        "engine_id",
        "tracker",
    )

    def __init__(self, msg_id: str, submitted: float | None = None, engine_id: int | None = None) -> None:
        self.msg_id = msg_id
        self._metadata: Metadata | None = None
        self._submitted = submitted
        self._reported: dict[str, Any] | None = None
        self._received: float | None = None
        self.is_done = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.listeners: list[Callable[[MessageState], None]] = []
        self.engine_id = engine_id
        #: Set for requests sent with ``track=True``: tells when their buffers have left the process.
        self.tracker: SendTracker | None = None

    @property
    def metadata(self) -> Metadata:
        md = self._metadata
        if md is None:
            md = make_metadata(self.msg_id, self._submitted)
            # Published before what was reported is read: a report arriving meanwhile
            # (on the IO thread) either is read here or finds this dict and updates it.
            self._metadata = md
            if self._reported is not None:
                update_metadata(md, self._reported)
            if self._received is not None:
                md["received"] = _as_datetime(self._received)
                md["error"] = self.error
        return md

    def report(self, reported: dict[str, Any]) -> None:
        """The metadata the engine sent with its reply (times as UNIX timestamps)."""
        if self._reported is not None:  # a second report (from the hub): on top of the first
            update_metadata(self.metadata, reported)
            return
        self._reported = reported
        if self._metadata is not None:
            update_metadata(self._metadata, reported)

    def finish(self, value: Any = None, error: BaseException | None = None) -> list[Callable[[MessageState], None]]:
        """Record the outcome; returns the listeners for the caller to run (outside its lock)."""
        if self.is_done:
            return []
        self.value = value
        self.error = error
        self._received = time.time()
        if self._metadata is not None:
            self._metadata["received"] = _as_datetime(self._received)
            self._metadata["error"] = error
        self.is_done = True
        listeners, self.listeners = self.listeners, []
        return listeners


class SendTracker:
    """Whether a request's frames have left this process (requests sent with ``track=True``).

    The IO thread sends the frames some time after the caller's ``apply_async``
    returned, and libzmq sends large buffers without copying them, later still:
    a buffer may be changed safely once :attr:`done` is true.
    """

    __slots__ = ("_handed_over", "_trackers", "error")

    def __init__(self) -> None:
        self._handed_over = threading.Event()
        self._trackers: list[zmq.MessageTracker] = []
        #: Why the frames were never sent (the client closed first), if so.
        self.error: BaseException | None = None

    def handed_over(self, trackers: list[zmq.MessageTracker], error: BaseException | None = None) -> None:
        """Called by the IO thread once libzmq has the frames (or they will never be sent)."""
        self._trackers = trackers
        self.error = error
        self._handed_over.set()

    @property
    def done(self) -> bool:
        """Whether libzmq has finished with every buffer (or the frames will never be sent)."""
        return self._handed_over.is_set() and all(t.done for t in self._trackers)

    def wait(self, timeout: float | None = None) -> None:
        """Wait until :attr:`done`; raises :class:`~taskyard.error.TimeoutError` after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._handed_over.wait(timeout):
            raise TimeoutError(f"not sent after {timeout} s")
        for tracker in self._trackers:
            remaining = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                tracker.wait(remaining)
            except zmq.NotDone:
                raise TimeoutError(f"not sent after {timeout} s") from None
