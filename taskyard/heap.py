"""Handing freed memory back to the operating system after a burst of work.

A burst of 100,000 queued tasks makes the scheduler, the hub and the client
allocate hundreds of megabytes; once the burst is over, glibc keeps most of
that memory in its free lists (libzmq's buffers are freed by another thread
than the one that allocated them, which spreads them over several malloc
arenas), so the resident size stays at the burst's high-water mark. Measured
on the development machine: a client that had run 30,000 tasks held 630 MB
resident, and 118 MB after ``malloc_trim(0)``. The controller and engines that
taskyard starts also keep the memory of large messages on purpose
(:data:`KEEP_SETTINGS`), so that the next large
message reuses it instead of faulting in fresh pages.

:class:`HeapTrimmer` calls ``malloc_trim`` at most once per ``min_interval``
seconds, only after ``min_events`` units of work or ``min_bytes`` of message
data since the last trim, and only once no work has been counted for
``min_idle`` seconds; where there is no glibc it does nothing.

Idleness is judged by the work counted (requests and replies handled, their
bytes), not by the owner's wake-ups: a hub answers a scheduler's resync query
every second and a scheduler wakes on its clock, and neither is work that
would reuse a large message's memory. A trim after a large transfer is
repeated :data:`FOLLOW_UPS` seconds later: a zero-copy send to a slow reader
may still have held the last message's buffer when the first trim ran.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterable, Mapping
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


#: Seconds of no work before the hub and the scheduler trim: a loop that wakes on a
#: clock sees "nothing to read" between the hops of one transfer, and bursts a
#: moment apart should reuse the memory of the one before.
IDLE_BEFORE_TRIM = 1.0
#: Seconds after a trim that followed a large transfer at which it is repeated.
FOLLOW_UPS = (2.0, 10.0)


class HeapTrimmer:
    """Decides when to trim the heap; ``trim`` is called with no arguments."""

    def __init__(
        self,
        min_events: int = 10_000,
        min_interval: float = 2.0,
        trim: Callable[[], object] | None = None,
        min_bytes: int = 256 << 20,
        min_idle: float = 0.0,
    ) -> None:
        self.min_events = min_events
        #: seconds without :meth:`busy` before a trim (see IDLE_BEFORE_TRIM)
        self.min_idle = min_idle
        self._busy_at = float("-inf")
        self.min_bytes = min_bytes
        self.min_interval = min_interval
        self._trim = trim if trim is not None else (lambda: _malloc_trim(0) if _malloc_trim else None)
        self.events = 0
        self.nbytes = 0
        self.trims = 0
        self._last_at: float | None = None
        self._seen = (0, 0)  # (events, nbytes) at the last look: a change is work
        self._follow_ups: list[float] = []  # when to trim again, soonest last

    def count(self, n: int = 1) -> None:
        self.events += n

    def count_buffers(self, buffers: Iterable[Any]) -> None:
        """Message data handled (large buffers are what the heap keeps)."""
        for buffer in buffers:
            self.nbytes += frame_nbytes(buffer)

    def busy(self, now: float) -> None:
        """Work was done at ``now`` (what ``min_idle`` counts from)."""
        self._busy_at = now

    def maybe_trim(self, now: float) -> bool:
        """Trim if enough work happened and enough time passed without any; call often."""
        seen = (self.events, self.nbytes)
        if seen != self._seen:  # work was counted since the last look
            self._seen = seen
            self._busy_at = max(self._busy_at, now)
        is_follow_up = self.events < self.min_events and self.nbytes < self.min_bytes
        if is_follow_up and (not self._follow_ups or now < self._follow_ups[-1]):
            return False
        if now - self._busy_at < self.min_idle:
            return False
        if self._last_at is not None and now - self._last_at < self.min_interval:
            return False
        self._trim()
        if is_follow_up:
            self._follow_ups.pop()
        elif self.nbytes >= self.min_bytes:
            self._follow_ups = [now + delay for delay in reversed(FOLLOW_UPS)]
        self.events = 0
        self.nbytes = 0
        self._seen = (0, 0)
        self.trims += 1
        self._last_at = now
        return True


#: Free memory glibc may keep at the top of the heap: a few large messages' worth.
KEEP_TOP_BYTES = 1 << 30
#: The malloc settings that keep large messages' memory for the next one, as
#: ``(tunable, mallopt option, value)``: the launcher hands them to the processes
#: it starts as ``GLIBC_TUNABLES`` (:func:`glibc_tunables`), and
#: :func:`keep_large_buffers` makes them at run time. ``mallopt`` options are
#: glibc's malloc.h ``M_ARENA_MAX``, ``M_MMAP_MAX`` and ``M_TRIM_THRESHOLD``.
KEEP_SETTINGS = (
    ("glibc.malloc.arena_max", -8, 1),  # libzmq's I/O thread allocates in the main arena ...
    ("glibc.malloc.mmap_max", -4, 0),  # ... from the heap, never from a fresh mmap ...
    ("glibc.malloc.trim_threshold", -1, KEEP_TOP_BYTES),  # ... which free() does not shrink at once
)


def glibc_tunables() -> str:
    """:data:`KEEP_SETTINGS` as a ``GLIBC_TUNABLES`` value."""
    return ":".join(f"{name}={value}" for name, _, value in KEEP_SETTINGS)


def _find_mallopt() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


def keep_large_buffers(environ: Mapping[str, str] | None = None) -> bool:
    """Have glibc keep the memory of large messages for the next one; True if it was set.

    libzmq's I/O thread allocates every message it receives. By default glibc
    serves an allocation above 32 MiB (above 64 MiB on a thread with its own
    arena, such as that I/O thread) from a fresh ``mmap`` and unmaps it on
    ``free``: every large message is faulted in and zeroed anew. A client
    echoing 128 MB spent ~45 of its ~75 ms of CPU per echo so (``pyzmq``
    alone, two processes). This makes :data:`KEEP_SETTINGS` at run time, as
    the launcher's ``GLIBC_TUNABLES`` do for the processes it starts: threads that have not
    allocated yet (the I/O thread of a context made after this call) share the
    main arena, ``mmap`` is not used for malloc, and up to
    :data:`KEEP_TOP_BYTES` of freed memory stays at the heap's top. The
    process's :class:`HeapTrimmer` gives memory back once it is idle.

    Where a thread had its own arena before (an IPython kernel's threads), glibc
    keeps its arena limit and large messages are mapped afresh as before:
    nothing is lost but the gain. Nothing is changed where ``GLIBC_TUNABLES``
    is set (someone chose), where ``TASKYARD_KEEP_BUFFERS=0``, or where the C
    library is not glibc.
    """
    env = os.environ if environ is None else environ
    if "GLIBC_TUNABLES" in env or env.get("TASKYARD_KEEP_BUFFERS", "1").strip().lower() in ("0", "no", "false"):
        return False
    mallopt = _find_mallopt()
    if mallopt is None:
        return False
    # mallopt returns 1 on success; every one is tried
    results = [mallopt(option, value) for _, option, value in KEEP_SETTINGS]
    return all(results)
