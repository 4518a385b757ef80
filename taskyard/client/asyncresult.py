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
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from taskyard.client.message_state import (  # noqa: F401 - re-exported: older imports name this module
    MessageState,
    Metadata,
    SendTracker,
    make_metadata,
    update_metadata,
)
from taskyard.client.outputs import bar_printer, progress_bar
from taskyard.client.request_book import remote_error_for  # noqa: F401 - re-exported, as above
from taskyard.client.result_output import ResultOutputMixin
from taskyard.error import CompositeError, TaskyardError, TimeoutError

if TYPE_CHECKING:
    from taskyard.client.client import Client

__all__ = ["AsyncResult", "AsyncMapResult", "Metadata", "MessageState", "SendTracker", "make_metadata"]
__all__ += ["update_metadata", "remote_error_for"]


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


def _forever_if_negative(timeout: float | None) -> float | None:
    """ipyparallel's convention: a negative timeout (``-1``) waits forever, like None."""
    return None if timeout is None or timeout < 0 else timeout


class AsyncResult(ResultOutputMixin, concurrent.futures.Future):  # type: ignore[type-arg]
    """The pending result of one or more requests.

    Parameters are internal; views and the client create these, except
    ``return_exceptions``: when True, :meth:`get` returns the errors in place of
    the results they stand for instead of raising (as ipyparallel's).

    Metadata keys read as attributes and items: ``ar.started``, ``ar.completed``,
    ``ar.submitted``, ``ar.received``, ``ar.engine_uuid``, ``ar.status``,
    ``ar["stdout"]``, ...: one value for one request, a list for several.

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
        return_exceptions: bool = False,
    ) -> None:
        super().__init__()
        self._return_exceptions = return_exceptions
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

    def wait(self, timeout: float | None = None, return_when: str | None = None) -> Any:
        """Wait up to ``timeout`` seconds (forever if None or negative); returns :meth:`ready`.

        With ``return_when`` (``ty.FIRST_COMPLETED``, ``ty.FIRST_EXCEPTION`` or
        ``ty.ALL_COMPLETED``) it waits on the requests one by one, as
        :func:`concurrent.futures.wait` does, and returns its ``(done, pending)``
        sets of the single-request AsyncResults of :meth:`split`.
        """
        if return_when is None:
            concurrent.futures.wait([self], timeout=_forever_if_negative(timeout))
            return self.done()
        parts = self.split()
        done, pending = concurrent.futures.wait(parts, timeout=_forever_if_negative(timeout), return_when=return_when)
        return done, pending

    def successful(self) -> bool:
        """Whether every request succeeded; raises if they are not all done yet."""
        if not self.done():
            raise AssertionError("not ready: call wait() first")
        return self.exception() is None

    def get(self, timeout: float | None = None, return_exceptions: bool | None = None) -> Any:
        """The result: raises the remote error, or :class:`~taskyard.error.TimeoutError`.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait; None or negative (``-1``) waits forever.
        return_exceptions : bool, optional
            Return each failed request's error in place of its result instead of
            raising (default: as this AsyncResult was made, normally False).
        """
        try:
            value = self.result(_forever_if_negative(timeout))
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"result not ready after {timeout} s: {self}") from None
        except BaseException:
            if return_exceptions if return_exceptions is not None else self._return_exceptions:
                return self._collect_with_errors()
            raise
        return value

    def _collect_with_errors(self) -> Any:
        """The results with each failed request's error in its place."""
        values = [s.error if s.error is not None else s.value for s in self._states]
        return values[0] if self._is_scalar else values

    def wait_for_output(self, timeout: float | None = -1) -> bool:
        """Wait until the requests' output (stdout, stderr, displays) is complete.

        A reply carries the end of its request's output, so this is :meth:`wait`;
        it exists for code written for ipyparallel, where output can lag the result.
        """
        return bool(self.wait(timeout))

    def split(self) -> tuple[AsyncResult, ...]:
        """One AsyncResult per request (per engine for a DirectView call, per
        chunk for a map), to wait for them one by one, e.g. with
        :func:`concurrent.futures.as_completed`. A single request gives ``(self,)``.

        As in ipyparallel, a map's parts are plain AsyncResults whose ``get()``
        is a one-item list holding the chunk's list of results.
        """
        if len(self._states) == 1:
            return (self,)
        targets = self._targets if isinstance(self._targets, list) else [None] * len(self._states)
        scalar = not isinstance(self, AsyncMapResult)
        return tuple(
            AsyncResult(
                self._client,
                [state],
                self._fname,
                target if scalar else [target],
                is_scalar=scalar,
                return_exceptions=self._return_exceptions,
            )
            for target, state in zip(targets, self._states, strict=True)
        )

    @classmethod
    def join(cls, *results: AsyncResult) -> AsyncResult:
        """One AsyncResult covering the requests of ``results`` (the inverse of :meth:`split`)."""
        if not results:
            raise ValueError("join needs at least one AsyncResult")
        if len(results) == 1:
            return results[0]
        states = [state for ar in results for state in ar._states]
        targets: list[Any] | None = []
        for ar in results:
            own = ar._targets if isinstance(ar._targets, list) else [ar._targets] * len(ar._states)
            targets.extend(own)  # type: ignore[union-attr]
        if all(t is None for t in targets or ()):
            targets = None
        first = results[0]
        return AsyncResult(first._client, states, first._fname, targets, return_exceptions=first._return_exceptions)

    def get_dict(self, timeout: float | None = None) -> dict[int, Any]:
        """Results keyed by engine id (one request per engine).

        Raises ValueError when an engine ran more than one of the requests
        (a map with more chunks than engines, say).
        """
        values = self.get(timeout)
        values = [values] if self._is_scalar else values
        engine_ids = [md["engine_id"] for md in self._metadata_list()]
        if len(set(engine_ids)) != len(engine_ids) or len(engine_ids) != len(values):
            raise ValueError(f"get_dict needs one request per engine; engines of the requests: {engine_ids}")
        return dict(zip(engine_ids, values, strict=True))

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
        if not self.done():  # a TimeoutError, as ipyparallel's (also a builtins.TimeoutError)
            raise TimeoutError(f"not ready: wait() first: {self}")

    def abort(self) -> None:
        """Abort the requests that have not started yet."""
        if self._client is None:
            raise TaskyardError("this result has no client to abort through")
        self._client.abort(self)

    @property
    def progress(self) -> int:
        """How many of the requests have finished."""
        return sum(1 for s in self._states if s.is_done)

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
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        total = len(self)
        with progress_bar(total=total, desc=self._fname, unit="tasks", leave=True) as bar:
            printer = bar_printer(bar)
            while not self.done():
                bar.update(self.progress - bar.n)
                if stream:
                    self.print_new_output(printer)
                if return_when == "FIRST_EXCEPTION" and any(s.error is not None for s in self._states):
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self.wait(interval if remaining is None else min(interval, remaining))
            bar.update(self.progress - bar.n)
            if stream:
                self.print_new_output(printer)
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
            text = str(render()) if render is not None else repr(error)
            return (
                f"<div><b>{html.escape(type(self).__name__)}({html.escape(self._fname)})</b>: "
                f"<span style='color:#b00'>failed</span><pre>{html.escape(text)}</pre></div>"
            )
        else:
            status = f"finished: {total} request(s)"
        return (
            f"<div><b>{html.escape(type(self).__name__)}({html.escape(self._fname)})</b>: {html.escape(status)}</div>"
        )

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
    """``state``'s value once it is done; its error raised, or returned if ``ar`` returns exceptions."""
    if not state.is_done:
        event = threading.Event()
        lock = ar._client.state_lock if ar._client is not None else threading.Lock()
        with lock:
            if not state.is_done:
                state.listeners.append(lambda _s: event.set())
            else:
                event.set()
        if not event.wait(_forever_if_negative(timeout)):
            raise TimeoutError(f"result {state.msg_id} not ready after {timeout} s")
    if state.error is not None:
        if ar._return_exceptions:
            return state.error
        raise state.error
    return state.value


class AsyncMapResult(AsyncResult):
    """The pending result of a ``map``: each request returns a chunk (a list);
    the result is their concatenation, and iterating yields single items, in
    order (``ordered=True``) or as chunks complete.

    With ``return_exceptions=True`` a failed chunk gives its error in place of
    each of its items (``chunk_sizes``, one per request, says how many; one
    if not given), in ``get()`` and in iteration, instead of raising.
    """

    def __init__(
        self,
        client: Client | None,
        states: Sequence[MessageState],
        fname: str = "map",
        ordered: bool = True,
        return_exceptions: bool = False,
        chunk_sizes: Sequence[int] | None = None,
    ) -> None:
        self._ordered = ordered
        self._chunk_sizes = list(chunk_sizes) if chunk_sizes is not None else None
        super().__init__(client, states, fname, return_exceptions=return_exceptions)

    def _collect(self) -> Any:
        out: list[Any] = []
        for state in self._states:
            out.extend(state.value)
        return out

    def _chunk_of(self, index: int, state: MessageState) -> list[Any]:
        if state.error is None:
            return list(state.value)
        size = self._chunk_sizes[index] if self._chunk_sizes is not None else 1
        return [state.error] * size

    def _collect_with_errors(self) -> Any:
        out: list[Any] = []
        for index, state in enumerate(self._states):
            out.extend(self._chunk_of(index, state))
        return out

    def _sizes(self) -> list[int]:
        return self._chunk_sizes if self._chunk_sizes is not None else [1] * len(self._states)

    def __len__(self) -> int:
        """How many items the map covers (ipyparallel's count of granular tasks)."""
        return sum(self._sizes())

    @property
    def progress(self) -> int:
        """How many items have finished (a chunk's items finish together)."""
        return sum(size for size, state in zip(self._sizes(), self._states, strict=True) if state.is_done)

    def __iter__(self) -> Iterator[Any]:
        if self._ordered:
            for index, state in enumerate(self._states):
                _wait_state(self, state)
                yield from self._items(index, state)
            return
        futures: dict[concurrent.futures.Future[Any], tuple[int, MessageState]] = {}
        for index, state in enumerate(self._states):
            fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
            futures[fut] = (index, state)
            _notify_future(self, state, fut)
        for fut in concurrent.futures.as_completed(futures):
            index, state = futures[fut]
            yield from self._items(index, state)

    def _items(self, index: int, state: MessageState) -> list[Any]:
        if state.error is not None and not self._return_exceptions:
            raise state.error
        return self._chunk_of(index, state)


def _notify_future(ar: AsyncResult, state: MessageState, fut: concurrent.futures.Future[Any]) -> None:
    lock = ar._client.state_lock if ar._client is not None else threading.Lock()
    with lock:
        if not state.is_done:
            state.listeners.append(lambda _s: fut.set_result(None))
            return
    fut.set_result(None)
