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


def test_keep_large_buffers_leaves_a_chosen_malloc_alone() -> None:
    assert not heap.keep_large_buffers(environ={"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert not heap.keep_large_buffers(environ={"TASKYARD_KEEP_BUFFERS": "0"})
    assert not heap.keep_large_buffers(environ={"TASKYARD_KEEP_BUFFERS": " no "})


_LARGE_BLOCK_FROM_A_THREAD = """
import ctypes, threading, taskyard
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
out = []
def work():  # as libzmq's I/O thread does for a large message: allocate, free, allocate again
    mapped = libc.mallinfo2().hblks
    first = libc.malloc(100_000_000)
    out.append(libc.mallinfo2().hblks - mapped)
    libc.free(first)
    second = libc.malloc(100_000_000)
    out.append(first == second)
    libc.free(second)
thread = threading.Thread(target=work)
thread.start()
thread.join()
print(*out)
"""


def test_importing_taskyard_keeps_large_blocks_off_fresh_mappings() -> None:
    import ctypes
    import os
    import subprocess
    import sys

    if heap._find_mallopt() is None or not hasattr(ctypes.CDLL(None), "mallinfo2"):
        assert not heap.keep_large_buffers(environ={})  # not glibc (or too old to tell): nothing is changed
        return
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}

    def run(**extra: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _LARGE_BLOCK_FROM_A_THREAD], env={**env, **extra}, capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.decode().strip()

    # 100 MB on a thread of its own comes from the heap (no mmap'd block), and the
    # freed memory serves the next large block: it is not faulted in again
    assert run() == "0 True"
    # opted out: glibc's default, a fresh mapping each time
    assert run(TASKYARD_KEEP_BUFFERS="0").startswith("1 ")


def test_no_trim_until_idle_long_enough() -> None:
    calls: list[float] = []
    trimmer = HeapTrimmer(min_events=1, min_interval=0.0, min_idle=1.0, trim=lambda: calls.append(1))
    trimmer.count()
    trimmer.busy(10.0)
    # between two hops of one transfer the loop sees nothing to read: not idle yet
    assert not trimmer.maybe_trim(10.0) and not trimmer.maybe_trim(10.3) and calls == []
    assert trimmer.maybe_trim(11.0) and len(calls) == 1


def test_counted_work_postpones_the_trim_without_being_told() -> None:
    # A hub's loop wakes for queries and heartbeats too: only counted work is "busy".
    calls: list[float] = []
    trimmer = HeapTrimmer(min_events=1, min_interval=0.0, min_idle=1.0, trim=lambda: calls.append(1))
    trimmer.count()
    assert not trimmer.maybe_trim(10.0)  # the work was seen now
    assert not trimmer.maybe_trim(10.6)  # a wake-up with no new work does not postpone ...
    assert trimmer.maybe_trim(11.0) and len(calls) == 1  # ... so a second after the work, it trims
    trimmer.count()
    assert not trimmer.maybe_trim(11.5)
    trimmer.count()
    assert not trimmer.maybe_trim(12.3)  # more work: a second from this one
    assert not trimmer.maybe_trim(13.2)
    assert trimmer.maybe_trim(13.3) and len(calls) == 2


def test_a_trim_after_a_large_transfer_is_repeated_later() -> None:
    # the first trim may run while a zero-copy send still holds the last buffer
    calls: list[float] = []
    trimmer = HeapTrimmer(min_events=100, min_bytes=1000, min_interval=0.0, trim=lambda: calls.append(1))
    trimmer.count_buffers([bytearray(2000)])
    assert trimmer.maybe_trim(10.0) and len(calls) == 1
    first, second = (10.0 + delay for delay in heap.FOLLOW_UPS)
    assert not trimmer.maybe_trim(first - 0.1)
    assert trimmer.maybe_trim(first) and len(calls) == 2
    assert not trimmer.maybe_trim(second - 0.1)
    assert trimmer.maybe_trim(second) and len(calls) == 3
    assert not trimmer.maybe_trim(second + 100.0)  # and no more
    # small work does not schedule follow-ups
    trimmer.count(100)
    assert trimmer.maybe_trim(200.0) and len(calls) == 4
    assert not trimmer.maybe_trim(200.0 + max(heap.FOLLOW_UPS))


def test_a_follow_up_waits_for_idleness_and_is_not_lost() -> None:
    calls: list[float] = []
    trimmer = HeapTrimmer(min_events=100, min_bytes=1000, min_interval=0.0, min_idle=1.0, trim=lambda: calls.append(1))
    trimmer.count_buffers([bytearray(2000)])
    trimmer.maybe_trim(0.0)
    assert trimmer.maybe_trim(1.0) and len(calls) == 1
    due = 1.0 + heap.FOLLOW_UPS[0]
    trimmer.count()  # a little work just before the follow-up is due
    assert not trimmer.maybe_trim(due)
    assert trimmer.maybe_trim(due + 1.0) and len(calls) == 2
