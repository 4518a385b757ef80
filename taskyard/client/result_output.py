"""ipyparallel's long tail of :class:`~taskyard.client.asyncresult.AsyncResult`: metadata
as attributes and items, ``timedelta``, the engines' output (``display_outputs``,
``stream_output``) and send tracking (``sent``, ``wait_for_send``).

Mixed into AsyncResult; it reads only ``self._states`` (the requests' MessageStates,
in order), ``self._is_scalar`` and the Future's own methods.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from taskyard.client.message_state import MessageState, Metadata
from taskyard.client.outputs import OutputPrinter
from taskyard.error import TimeoutError

#: Seconds between looks at new output inside ``stream_output()``.
STREAM_INTERVAL = 0.05


class ResultOutputMixin:
    """The metadata, output and send-tracking part of AsyncResult's interface."""

    _states: list[MessageState]
    _is_scalar: bool

    # -- metadata ---------------------------------------------------------

    def _metadata_list(self) -> list[Metadata]:
        return [s.metadata for s in self._states]

    def _metadata_values(self, key: str) -> Any:
        """``key`` of each request's metadata: one value for one request, else a list (KeyError if unknown)."""
        values = [md[key] for md in self._metadata_list()]
        return values[0] if self._is_scalar else values

    def __getattr__(self, name: str) -> Any:
        """Metadata keys as attributes: ``ar.started``, ``ar.engine_uuid``, ``ar.status``, ..."""
        if name.startswith("_"):  # internals, IPython's _repr_*_ probes, asyncio's checks
            raise AttributeError(name)
        try:
            return self._metadata_values(name)
        except KeyError:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}") from None

    def __getitem__(self, key: Any) -> Any:
        """``ar["stdout"]`` reads metadata (also while pending); ``ar[0]``, ``ar[1:3]`` index the results."""
        if isinstance(key, str):
            return self._metadata_values(key)
        if isinstance(key, (int, slice)):
            if not self.done():
                raise TimeoutError("result not ready: wait() first, or use get()")
            return self.get()[key]
        raise TypeError(f"AsyncResult keys are str (metadata) or int/slice (results), not {type(key).__name__}")

    def timedelta(
        self,
        start: datetime | list[datetime],
        end: datetime | list[datetime],
        start_key: Callable[[list[datetime]], datetime] = min,
        end_key: Callable[[list[datetime]], datetime] = max,
    ) -> float:
        """Seconds from ``start`` to ``end``, each one datetime or several (e.g. ``ar.submitted``).

        Of several, ``start_key`` picks the start (default the earliest) and
        ``end_key`` the end (default the latest), e.g.
        ``ar.timedelta(ar.submitted, ar.received)``.
        """
        first = start if isinstance(start, datetime) else start_key([d for d in start if d is not None])
        last = end if isinstance(end, datetime) else end_key([d for d in end if d is not None])
        return float((last - first).total_seconds())

    # -- output -----------------------------------------------------------

    def print_new_output(self, printer: OutputPrinter) -> None:
        """Print the engines' stdout/stderr that arrived since ``printer`` last did.

        ``printer`` remembers what it showed; pass the same one on every call.
        Each engine's text comes under a ``[stdout:<engine>]`` line.
        """
        printer.show_new(self._metadata_list(), rich=False)

    @contextlib.contextmanager
    def stream_output(self) -> Iterator[None]:
        """A context manager during which the engines' output is printed as it arrives.

        Output already captured is printed at once, new output every
        ``STREAM_INTERVAL`` seconds, and what is left when the block ends.

        Examples
        --------
        >>> with ar.stream_output():   # doctest: +SKIP
        ...     ar.wait()
        """
        printer = OutputPrinter()
        stop = threading.Event()

        def pump() -> None:
            while not stop.wait(STREAM_INTERVAL):
                self.print_new_output(printer)

        self.print_new_output(printer)
        thread = threading.Thread(target=pump, name="taskyard-stream-output", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.print_new_output(printer)

    def display_outputs(self, groupby: str = "type", result_only: bool = False) -> None:
        """Show the engines' captured output again, labelled by engine.

        The result of one request (``rc[0].execute(...)``) is shown unlabelled, as
        if it had run here: its stdout, its stderr, then (in IPython) its
        displays and its value, as ipyparallel shows it.

        Parameters
        ----------
        groupby : str
            ``"type"``: all stdout, then all stderr, then rich outputs;
            ``"engine"``: everything of one engine before the next;
            ``"order"``: like ``"type"``, but the i-th rich output of every engine
            together (e.g. the first figure of each, then the second...).
        result_only : bool
            Only the results (``execute_result``), not streams or displays.
        """
        if self._is_scalar:
            OutputPrinter().show_single(self._metadata_list()[0], result_only)
            return
        OutputPrinter().show_all(self._metadata_list(), groupby, result_only)

    # -- send tracking ----------------------------------------------------

    @property
    def sent(self) -> bool:
        """Whether the requests' buffers have left this process (meaningful with ``track=True``;
        an untracked request counts as sent)."""
        return all(s.tracker is None or s.tracker.done for s in self._states)

    def wait_for_send(self, timeout: float | None = -1) -> None:
        """Wait until :attr:`sent`: then arrays passed to the call may be changed.

        Needs ``track=True`` (a view flag) to mean anything. ``timeout`` in
        seconds (negative or None: forever); raises
        :class:`~taskyard.error.TimeoutError` if it passes first.
        """
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        for state in self._states:
            if state.tracker is None:
                continue
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            state.tracker.wait(remaining)
