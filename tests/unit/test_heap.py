"""When the heap is trimmed after a burst (no sockets; the trim itself is counted)."""

from __future__ import annotations

import psutil

from taskyard import heap
from taskyard.heap import HeapTrimmer


def test_trims_only_after_enough_work_and_time() -> None:
    calls: list[float] = []
    trimmer = HeapTrimmer(min_events=3, min_interval=2.0, trim=lambda: calls.append(1))
    trimmer.count(2)
    assert not trimmer.maybe_trim(10.0) and calls == []
    trimmer.count()
    assert trimmer.maybe_trim(10.0) and len(calls) == 1
    # the count starts again, and the interval holds even with work done
    trimmer.count(5)
    assert not trimmer.maybe_trim(11.0) and len(calls) == 1
    assert trimmer.maybe_trim(12.5) and len(calls) == 2 and trimmer.trims == 2
    assert not trimmer.maybe_trim(20.0)  # nothing new to give back


def test_message_data_alone_is_reason_enough_to_trim() -> None:
    calls: list[float] = []
    trimmer = HeapTrimmer(min_events=1000, min_bytes=100, min_interval=2.0, trim=lambda: calls.append(1))
    trimmer.count(1)
    trimmer.count_buffers([b"x" * 90, memoryview(b"y" * 9)])
    assert not trimmer.maybe_trim(10.0) and calls == []
    trimmer.count_buffers([b"z"])
    assert trimmer.maybe_trim(10.0) and len(calls) == 1
    assert trimmer.nbytes == 0 and trimmer.events == 0
    trimmer.count_buffers([bytearray(500)])
    assert not trimmer.maybe_trim(11.0)  # the interval still holds
    assert trimmer.maybe_trim(12.0) and len(calls) == 2


def test_real_trim_gives_freed_memory_back() -> None:
    if heap._malloc_trim is None:
        assert HeapTrimmer(min_events=0, trim=None).maybe_trim(0.0)  # a harmless no-op
        return
    process = psutil.Process()
    # Many mid-sized blocks go to glibc (not pymalloc); freeing them leaves free lists.
    blocks = [bytearray(4000) for _ in range(50_000)]  # ~200 MB
    keep = blocks[::1000]  # pins the top of the heap, so free() alone cannot shrink it
    del blocks
    before = process.memory_info().rss
    assert HeapTrimmer(min_events=0).maybe_trim(0.0)
    after = process.memory_info().rss
    assert before - after > 100_000_000, (before, after)
    assert len(keep) == 50
