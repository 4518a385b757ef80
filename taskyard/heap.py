"""Handing freed memory back to the operating system after a burst of work.

A burst of 100,000 queued tasks makes the scheduler, the hub and the client
allocate hundreds of megabytes; once the burst is over, glibc keeps most of
that memory in its free lists (libzmq's buffers are freed by another thread
than the one that allocated them, which spreads them over several malloc
arenas), so the resident size stays at the burst's high-water mark. Measured
on the development machine: a client that had run 30,000 tasks held 630 MB
resident, and 118 MB after ``malloc_trim(0)``. The controller and engines that
taskyard starts also keep the memory of large messages on purpose
(:data:`taskyard.cluster.launcher.MALLOC_TUNABLES`), so that the next large
message reuses it instead of faulting in fresh pages.

:class:`HeapTrimmer` calls ``malloc_trim`` at most once per ``min_interval``
seconds, only after ``min_events`` units of work or ``min_bytes`` of message
data since the last trim, and only when its owner says it is idle; where there
is no glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable, Iterable
from typing import Any

from taskyard.protocol.socketio import frame_nbytes


def _find_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library this process already uses
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_malloc_trim = _find_malloc_trim()


class HeapTrimmer:
    """Decides when to trim the heap; ``trim`` is called with no arguments."""

    def __init__(
        self,
        min_events: int = 10_000,
        min_interval: float = 2.0,
        trim: Callable[[], object] | None = None,
        min_bytes: int = 256 << 20,
    ) -> None:
        self.min_events = min_events
        self.min_bytes = min_bytes
        self.min_interval = min_interval
        self._trim = trim if trim is not None else (lambda: _malloc_trim(0) if _malloc_trim else None)
        self.events = 0
        self.nbytes = 0
        self.trims = 0
        self._last_at: float | None = None

    def count(self, n: int = 1) -> None:
        self.events += n

    def count_buffers(self, buffers: Iterable[Any]) -> None:
        """Message data handled (large buffers are what the heap keeps)."""
        for buffer in buffers:
            self.nbytes += frame_nbytes(buffer)

    def maybe_trim(self, now: float) -> bool:
        """Trim if enough work happened and enough time passed; call only while idle."""
        if self.events < self.min_events and self.nbytes < self.min_bytes:
            return False
        if self._last_at is not None and now - self._last_at < self.min_interval:
            return False
        self._trim()
        self.events = 0
        self.nbytes = 0
        self.trims += 1
        self._last_at = now
        return True
