"""ty.Cluster: starting and stopping clusters from Python."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import taskyard as ty
from tests.helpers import assert_all_gone, children_of


def test_context_manager_starts_connects_and_stops(taskyard_dir: Path) -> None:
    cluster = ty.Cluster(n=2)
    with cluster as rc:
        assert len(rc.ids) == 2
        assert rc[:].apply_sync(lambda: "hi") == ["hi", "hi"]
        pids = cluster._launcher.pids()
        pids += children_of(pids[0])
        assert cluster.is_running
    assert not cluster.is_running
    assert_all_gone(pids)


def test_sync_start_and_stop_with_scheme(taskyard_dir: Path) -> None:
    cluster = ty.Cluster(n=1, scheme="lru", cluster_id="named")
    rc = cluster.start_and_connect_sync()
    try:
        assert rc.task_scheme == "lru"
        assert rc.load_balanced_view().apply_sync(lambda: 3) == 3
        assert "named" in str(rc.url_file)
        pids = cluster._launcher.pids()
        pids += children_of(pids[0])
    finally:
        cluster.stop_cluster_sync()
    assert_all_gone(pids)


def test_a_client_keeps_the_cluster_it_came_from_running(taskyard_dir: Path) -> None:
    import gc

    rc = ty.Cluster(n=2).start_and_connect_sync()  # no other reference to the Cluster (ipyparallel's idiom)
    try:
        gc.collect()
        assert rc.ids == [0, 1] and rc[:].apply_sync(lambda: 1) == [1, 1]
        assert isinstance(rc.cluster, ty.Cluster) and rc.cluster.is_running
    finally:
        rc.cluster.stop_cluster_sync()


def test_async_context_manager(taskyard_dir: Path) -> None:
    async def main() -> list[int]:
        async with ty.Cluster(n=2) as rc:
            return await asyncio.wrap_future(rc[:].apply_async(lambda: 1))

    assert asyncio.run(main()) == [1, 1]


def test_everything_stops_when_the_owner_is_killed(taskyard_dir: Path, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import json, os, sys
        import taskyard as ty
        cluster = ty.Cluster(n=2)
        rc = cluster.start_and_connect_sync()
        print(json.dumps(cluster._launcher.pids()), flush=True)
        sys.stdin.readline()
        os._exit(0)  # no cleanup at all, as if the kernel were killed
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None and owner.stdin is not None
    pids = json.loads(owner.stdout.readline())
    pids += children_of(pids[0])
    owner.stdin.write("\n")
    owner.stdin.close()
    owner.wait(10)
    owner.stdout.close()
    # The controller notices within a second or two; engines follow within their controller timeout.
    assert_all_gone(pids, timeout=25)


@ty.interactive
def _mark_then_sleep(marker: str, seconds: float) -> None:
    import os
    import time

    open(f"{marker}.{os.getpid()}", "w").close()
    time.sleep(seconds)


def test_signal_engines_interrupts_running_tasks_and_engines_carry_on(taskyard_dir: Path, tmp_path: Path) -> None:
    import signal
    import time

    cluster = ty.Cluster(n=2)
    rc = cluster.start_and_connect_sync()
    try:
        cluster.signal_engines_sync(signal.SIGINT)  # idle engines: nothing to interrupt, they stay
        time.sleep(0.5)
        assert rc[:].apply_sync(lambda: "still here") == ["still here"] * 2
        marker = str(tmp_path / "started")
        ar = rc[:].apply_async(_mark_then_sleep, marker, 60)
        deadline = time.monotonic() + 20
        while len(list(tmp_path.glob("started.*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(list(tmp_path.glob("started.*"))) == 2, "the tasks did not start"
        cluster.signal_engines_sync(signal.SIGINT)
        with pytest.raises(ty.CompositeError) as info:
            ar.get(20)
        assert [e.ename for e in info.value.errors] == ["KeyboardInterrupt"] * 2
        assert rc[:].apply_sync(lambda: 2) == [2, 2]  # the engines took the next task
        asyncio.run(cluster.signal_engines(signal.SIGINT))
    finally:
        cluster.stop_cluster_sync()
