"""Large messages: the engines keep their memory for reuse, and give it back when idle."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.helpers import children_of, wait_for


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tunables and /proc are Linux's")
def test_an_engine_keeps_large_buffers_while_busy_and_gives_them_back_when_idle(make_cluster, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)  # the launcher's own settings, not the caller's
    cluster = make_cluster(1)
    rc = cluster.client()
    rc.wait_for_engines(1, timeout=10, interactive=False)
    (pid,) = cluster.engine_pids
    baseline = _rss(pid)
    array = np.ones(200_000_000, dtype=np.uint8)
    # The array arrives in a buffer libzmq allocates; the engine frees it after the
    # reply. Kept in the heap (not unmapped), the engine's RSS stays up until it idles.
    assert rc[0].apply_sync(lambda a: int(a[::1000].sum()), array) == 200_000
    assert _rss(pid) - baseline > 150_000_000, "the buffer was given back at once: nothing to reuse"
    wait_for(lambda: _rss(pid) - baseline < 50_000_000, 10, "the idle engine to trim its heap")


def test_the_client_gives_memory_back_once_idle_after_work(rc) -> None:  # type: ignore[no-untyped-def]
    # import taskyard keeps freed memory in this process's heap (heap.keep_large_buffers),
    # so the client trims once idle for a second after any reply, not only after big ones
    rc.wait_for_engines(1, timeout=10, interactive=False)
    trims = rc._io._heap.trims
    assert rc[0].apply_sync(lambda: 1) == 1
    wait_for(lambda: rc._io._heap.trims > trims, 10, "the idle client to trim its heap")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tunables and /proc are Linux's")
def test_the_hub_and_the_scheduler_give_a_large_result_back(make_cluster, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Both relay (and the hub records) a large reply; the memory is kept for reuse
    # while work goes on, and given back a few seconds after the last large message
    # even though their loops keep waking for resyncs and heartbeats.
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    cluster = make_cluster(1)
    rc = cluster.client()
    rc.wait_for_engines(1, timeout=10, interactive=False)
    (scheduler,) = children_of(cluster.controller_pid)
    processes = {"hub": cluster.controller_pid, "scheduler": scheduler}
    baseline = {name: _rss(pid) for name, pid in processes.items()}

    def make() -> object:
        import numpy

        return numpy.ones(400_000_000, dtype=numpy.uint8)

    result = rc.load_balanced_view().apply_async(make).get(30)
    assert result.nbytes == 400_000_000
    del result

    def grown() -> dict[str, int]:
        return {name: (_rss(pid) - baseline[name]) >> 20 for name, pid in processes.items()}

    wait_for(lambda: max(grown().values()) < 100, 20, "the hub and the scheduler to give 400 MB back")
