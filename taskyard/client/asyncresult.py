"""Results that arrive later: :class:`AsyncResult` and friends.

An :class:`AsyncResult` covers one or more requests (msg_ids). It is a
:class:`concurrent.futures.Future`, so ``add_done_callback``, ``as_completed``
and ``asyncio.wrap_future`` work on it, and it adds ipyparallel's interface:
``get``, ``wait``, ``ready``, ``successful``, ``msg_ids``, ``metadata``.

The client's IO thread fills one :class:`MessageState` per msg_id as replies
arrive; an AsyncResult watches its states and resolves when the last one is done.
"""

from __future__ import annotations

import concurrent.futures
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from taskyard.error import CompositeError, RemoteError, TaskyardError, TimeoutError

if TYPE_CHECKING:
    from taskyard.client.client import Client

_TIME_KEYS = ("submitted", "started", "completed", "received")


class Metadata(dict):  # type: ignore[type-arg]
    """A dict of a request's metadata that also allows attribute access.

    Keys: ``msg_id``, ``submitted``, ``started``, ``completed``, ``received``
    (datetimes, UTC), ``engine_id``, ``engine_uuid``, ``status``, ``stdout``,
    ``stderr``, and whatever else the engine reported.
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
        self.is_done = True
        listeners, self.listeners = self.listeners, []
        return listeners


class _LeanCondition(threading.Condition):
    """A ``threading.Condition`` that binds no methods of its lock per instance.

    ``Condition.__init__`` stores five bound methods of its lock on the instance,
    each an object the cyclic garbage collector tracks; with one Condition per
    Future, a client with 10,000 tasks in flight carried 50,000 of them, and
    the collector's passes over them took a fifth of a burst's time. This one
    looks the lock's methods up when called; it behaves the same.
    """

    def __init__(self) -> None:  # noqa: D107 - see the class
        self._lock = threading.RLock()
        self._waiters: deque[Any] = deque()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def _release_save(self) -> Any:
        return self._lock._release_save()  # type: ignore[attr-defined]

    def _acquire_restore(self, state: Any) -> None:
        self._lock._acquire_restore(state)  # type: ignore[attr-defined]

    def _is_owned(self) -> bool:
        return bool(self._lock._is_owned())  # type: ignore[attr-defined]


class AsyncResult(concurrent.futures.Future):  # type: ignore[type-arg]
    """The pending result of one or more requests.

    Parameters are internal; views and the client create these.

    Examples
    --------
    >>> ar = view.apply_async(pow, 2, 10)   # doctest: +SKIP
    >>> ar.get(timeout=5)                    # doctest: +SKIP
    1024
    """

    def __init__(
        self,
        client: Client | None,
        states: Sequence[MessageState],
        fname: str = "unknown",
        targets: Any = None,
        is_scalar: bool = False,
    ) -> None:
        super().__init__()
        self._condition = _LeanCondition()  # fewer objects for the garbage collector (see there)
        self._client = client
        self._states = list(states)
        self._fname = fname
        self._targets = targets
        self._is_scalar = is_scalar and len(self._states) == 1
        # one state finishes once: only several need counting under a lock
        self._lock = threading.Lock() if len(self._states) > 1 else None
        self._remaining = len(self._states)
        self._created_at = time.monotonic()
        self.set_running_or_notify_cancel()
        if not self._states:
            self._resolve()
        for state in self._states:
            self._watch(state)

    def _watch(self, state: MessageState) -> None:
        # The IO thread may finish the state while we subscribe; the client's
        # lock orders the two.
        lock = self._client.state_lock if self._client is not None else threading.Lock()
        with lock:
            if not state.is_done:
                state.listeners.append(self._one_done)
                return
        self._one_done(state)

    def _one_done(self, _state: MessageState) -> None:
        if self._lock is None:
            self._resolve()
            return
        with self._lock:
            self._remaining -= 1
            last = self._remaining == 0
        if last:
            self._resolve()

    def _resolve(self) -> None:
        errors = [s.error for s in self._states if s.error is not None]
        if errors:
            if self._is_scalar:
                self.set_exception(errors[0])
            else:
                self.set_exception(CompositeError("one or more exceptions raised in remote calls", errors))
        else:
            self.set_result(self._collect())

    def _collect(self) -> Any:
        values = [s.value for s in self._states]
        return values[0] if self._is_scalar else values

    # -- ipyparallel's interface ------------------------------------------

    @property
    def msg_ids(self) -> list[str]:
        return [s.msg_id for s in self._states]

    @property
    def metadata(self) -> Metadata | list[Metadata]:
        mds = [s.metadata for s in self._states]
        return mds[0] if self._is_scalar else mds

    def ready(self) -> bool:
        """Whether every request has finished (successfully or not)."""
        return self.done()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (forever if None); returns :meth:`ready`."""
        concurrent.futures.wait([self], timeout=timeout)
        return self.done()

    def successful(self) -> bool:
        """Whether every request succeeded; raises if they are not all done yet."""
        if not self.done():
            raise AssertionError("not ready: call wait() first")
        return self.exception() is None

    def get(self, timeout: float | None = None) -> Any:
        """The result: raises the remote error, or :class:`~taskyard.error.TimeoutError`."""
        try:
            return self.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"result not ready after {timeout} s: {self}") from None

    def get_dict(self, timeout: float | None = None) -> dict[int, Any]:
        """Results keyed by engine id (one request per engine)."""
        values = self.get(timeout)
        values = [values] if self._is_scalar else values
        return {md["engine_id"]: v for md, v in zip(self._metadata_list(), values, strict=True)}

    def _metadata_list(self) -> list[Metadata]:
        return [s.metadata for s in self._states]

    @property
    def stdout(self) -> str | list[str]:
        out = [s.metadata.get("stdout", "") for s in self._states]
        return out[0] if self._is_scalar else out

    @property
    def stderr(self) -> str | list[str]:
        out = [s.metadata.get("stderr", "") for s in self._states]
        return out[0] if self._is_scalar else out

    @property
    def engine_id(self) -> int | list[int]:
        ids = [s.metadata.get("engine_id") for s in self._states]
        return ids[0] if self._is_scalar else ids  # type: ignore[return-value]

    @property
    def elapsed(self) -> float:
        """Seconds since submission (until the last reply, once done)."""
        submitted = [s.metadata["submitted"] for s in self._states if s.metadata.get("submitted")]
        if not submitted:
            return time.monotonic() - self._created_at
        received = [s.metadata["received"] for s in self._states if s.metadata.get("received")]
        end = max(received) if self.done() and received else datetime.now(tz=timezone.utc)
        return float((end - min(submitted)).total_seconds())

    @property
    def wall_time(self) -> float:
        """Seconds from the first start to the last completion on the engines."""
        self._require_done()
        mds = self._metadata_list()
        started = [m["started"] for m in mds if m.get("started")]
        completed = [m["completed"] for m in mds if m.get("completed")]
        if not started or not completed:
            return 0.0
        return float((max(completed) - min(started)).total_seconds())

    @property
    def serial_time(self) -> float:
        """Seconds of engine time, summed over the requests."""
        self._require_done()
        total = 0.0
        for md in self._metadata_list():
            if md.get("started") and md.get("completed"):
                total += (md["completed"] - md["started"]).total_seconds()
        return total

    def _require_done(self) -> None:
        if not self.done():
            raise AssertionError("not ready: call wait() first")

    def abort(self) -> None:
        """Abort the requests that have not started yet."""
        if self._client is None:
            raise TaskyardError("this result has no client to abort through")
        self._client.abort(self)

    @property
    def progress(self) -> int:
        """How many of the requests have finished."""
        return sum(1 for s in self._states if s.is_done)

    def print_new_output(self, shown: dict[tuple[str, str], int], write: Callable[[str], None] | None = None) -> None:
        """Print the engines' stdout/stderr that arrived since the last call.

        ``shown`` remembers how much of each request's output was printed; pass
        the same dict on every call. Lines are prefixed ``[stdout:<engine>]``.
        """
        for md in self._metadata_list():
            for name in ("stdout", "stderr"):
                text = md.get(name) or ""
                key = (md["msg_id"], name)
                start = shown.get(key, 0)
                if len(text) <= start:
                    continue
                shown[key] = len(text)
                new = text[start:].rstrip("\n")
                line = f"[{name}:{md.get('engine_id')}] {new}"
                if write is not None:
                    write(line)
                else:
                    print(line, file=sys.stdout if name == "stdout" else sys.stderr)  # noqa: T201

    def wait_interactive(
        self, interval: float = 0.1, timeout: float = -1, return_when: str = "ALL_COMPLETED", stream: bool = True
    ) -> bool:
        """Wait with a progress bar (a widget in a notebook, text in a terminal).

        Parameters
        ----------
        interval : float
            Seconds between updates of the bar.
        timeout : float
            Give up after this many seconds (negative or None: wait until done).
        return_when : str
            ``"ALL_COMPLETED"`` or ``"FIRST_EXCEPTION"`` (stop at the first error).
        stream : bool
            Print the engines' output as it arrives, prefixed by engine id.

        Returns
        -------
        bool
            Whether everything finished.
        """
        from tqdm.auto import tqdm

        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        total = len(self._states)
        shown: dict[tuple[str, str], int] = {}
        with tqdm(total=total, desc=self._fname, unit="tasks", leave=True) as bar:
            while not self.done():
                bar.update(self.progress - bar.n)
                if stream:
                    self.print_new_output(shown, bar.write)
                if return_when == "FIRST_EXCEPTION" and any(s.error is not None for s in self._states):
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self.wait(interval if remaining is None else min(interval, remaining))
            bar.update(self.progress - bar.n)
            if stream:
                self.print_new_output(shown, bar.write)
        return self.done()

    def _repr_html_(self) -> str:
        import html

        done = self.progress
        total = len(self._states)
        if not self.done():
            status = f"pending: {done}/{total} done"
        elif self.exception() is not None:
            error = self.exception()
            render = getattr(error, "render_traceback", None)
            text = render() if render is not None else repr(error)
            return (
                f"<div><b>{html.escape(type(self).__name__)}({html.escape(self._fname)})</b>: "
                f"<span style='color:#b00'>failed</span><pre>{html.escape(text)}</pre></div>"
            )
        else:
            status = f"finished: {total} request(s)"
        return (
            f"<div><b>{html.escape(type(self).__name__)}({html.escape(self._fname)})</b>: {html.escape(status)}</div>"
        )

    def display_outputs(self) -> None:
        """Print each engine's captured stdout/stderr."""
        for md in self._metadata_list():
            for name in ("stdout", "stderr"):
                text = md.get(name)
                if text:
                    print(f"[{name}:{md.get('engine_id')}] {text}", end="" if text.endswith("\n") else "\n")  # noqa: T201

    def __len__(self) -> int:
        return len(self._states)

    def __iter__(self) -> Iterator[Any]:
        if self._is_scalar:
            yield self.get()
            return
        for state in self._states:
            yield _wait_state(self, state)

    def __repr__(self) -> str:
        status = "finished" if self.done() else "pending"
        return f"<{type(self).__name__}({self._fname}): {status}, {len(self._states)} request(s)>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


def _wait_state(ar: AsyncResult, state: MessageState, timeout: float | None = None) -> Any:
    if not state.is_done:
        event = threading.Event()
        lock = ar._client.state_lock if ar._client is not None else threading.Lock()
        with lock:
            if not state.is_done:
                state.listeners.append(lambda _s: event.set())
            else:
                event.set()
        if not event.wait(timeout):
            raise TimeoutError(f"result {state.msg_id} not ready after {timeout} s")
    if state.error is not None:
        raise state.error
    return state.value


class AsyncMapResult(AsyncResult):
    """The pending result of a ``map``: each request returns a chunk (a list);
    the result is their concatenation, and iterating yields single items, in
    order (``ordered=True``) or as chunks complete."""

    def __init__(
        self, client: Client | None, states: Sequence[MessageState], fname: str = "map", ordered: bool = True
    ) -> None:
        self._ordered = ordered
        super().__init__(client, states, fname)

    def _collect(self) -> Any:
        out: list[Any] = []
        for state in self._states:
            out.extend(state.value)
        return out

    def __iter__(self) -> Iterator[Any]:
        if self._ordered:
            for state in self._states:
                yield from _wait_state(self, state)
            return
        futures: dict[concurrent.futures.Future[Any], MessageState] = {}
        for state in self._states:
            fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
            futures[fut] = state
            _notify_future(self, state, fut)
        for fut in concurrent.futures.as_completed(futures):
            state = futures[fut]
            if state.error is not None:
                raise state.error
            yield from state.value


def _notify_future(ar: AsyncResult, state: MessageState, fut: concurrent.futures.Future[Any]) -> None:
    lock = ar._client.state_lock if ar._client is not None else threading.Lock()
    with lock:
        if not state.is_done:
            state.listeners.append(lambda _s: fut.set_result(None))
            return
    fut.set_result(None)


def remote_error_for(content: dict[str, Any], engine_info: dict[str, Any]) -> BaseException:
    """The exception a failed reply stands for (typed for taskyard's own errors)."""
    from taskyard.error import error_from_content

    error = error_from_content(content, engine_info)
    if isinstance(error, RemoteError) and not error.engine_info:
        error.engine_info = dict(engine_info)
    return error
