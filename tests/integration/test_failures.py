"""Engines, clients and the controller dying or freezing (DESIGN §9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import taskyard as ty
from tests.helpers import pid_alive, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _engine_pids(rc: ty.Client) -> dict[int, int]:
    return dict(zip(rc.ids, rc[:].apply_async(os.getpid).get(10), strict=True))


def _sleeper_that_reports(path: Path, seconds: float) -> Any:
    """Writes its pid to ``path`` then sleeps, unless ``path`` exists already (a retry)."""
    target = str(path)

    def run() -> int:
        import os
        import time

        if os.path.exists(target):
            return os.getpid()
        with open(target + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(target + ".tmp", target)
        time.sleep(seconds)
        return -1

    return run


def _pid_in(path: Path) -> int:
    return int(wait_for(lambda: path.exists() and path.read_text(), 10, f"a pid in {path}"))


def test_sigkill_engine_fails_its_requests(cluster: Any, rc: ty.Client) -> None:
    pids = _engine_pids(rc)
    pending = [rc[0].apply_async(time.sleep, 30) for _ in range(3)]
    time.sleep(0.2)
    os.kill(pids[0], signal.SIGKILL)
    started = time.monotonic()
    wait_for(lambda: rc.ids == [1], 2.0, "engine 0 to be unregistered")
    assert time.monotonic() - started < 2.0
    for ar in pending:
        with pytest.raises(ty.error.EngineError):
            ar.get(5)
    assert rc[1].apply_async(lambda: "alive").get(10) == "alive"
    assert rc.load_balanced_view().map_async(lambda x: x + 1, range(4)).get(10) == [1, 2, 3, 4]


def test_sigstop_engine_is_unregistered(cluster: Any, rc: ty.Client) -> None:
    pids = _engine_pids(rc)
    os.kill(pids[1], signal.SIGSTOP)
    try:
        wait_for(lambda: rc.ids == [0], 10, "the frozen engine to be unregistered")
        assert rc.load_balanced_view().map_async(lambda x: x, range(4)).get(10) == [0, 1, 2, 3]
    finally:
        os.kill(pids[1], signal.SIGKILL)
        os.kill(pids[1], signal.SIGCONT)


def test_gil_holding_computation_keeps_engine_registered(rc: ty.Client) -> None:
    def spin(seconds: float) -> int:
        import time

        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            n += 1
        # a long C call that never lets go of the GIL
        return n + sum(range(30_000_000)) * 0

    ar = rc[0].apply_async(spin, 3.0)
    lost: list[list[int]] = []
    while not ar.ready():
        if rc.ids != [0, 1]:
            lost.append(rc.ids)
        time.sleep(0.1)
    assert ar.get(10) > 0
    assert not lost, f"engine unregistered during the computation: {lost}"
    assert rc.ids == [0, 1]
    assert rc[0].apply_async(lambda: "still here").get(10) == "still here"


def test_task_on_killed_engine_fails_or_is_retried(cluster: Any, rc: ty.Client, tmp_path: Path) -> None:
    lv = rc.load_balanced_view()
    marker = tmp_path / "first"
    ar = lv.apply_async(_sleeper_that_reports(marker, 30))
    os.kill(_pid_in(marker), signal.SIGKILL)
    with pytest.raises(ty.error.EngineError):
        ar.get(10)
    wait_for(lambda: len(rc.ids) == 1, 5, "the killed engine to be unregistered")
    cluster.cluster.start_engines(1)
    rc.wait_for_engines(2, timeout=10, interactive=False)
    wait_for(lambda: len(rc.ids) == 2, 10, "a replacement engine")

    retried = tmp_path / "retried"
    with lv.temp_flags(retries=1):
        ar = lv.apply_async(_sleeper_that_reports(retried, 30))
    victim = _pid_in(retried)
    os.kill(victim, signal.SIGKILL)
    result = ar.get(15)
    assert result not in (-1, victim) and pid_alive(result)
    # The retry ran on the engine left: the first survivor or the replacement,
    # whichever the scheduler did not pick for the first run.
    wait_for(lambda: len(rc.ids) == 1, 5, "the second killed engine to be unregistered")
    (left,) = rc.ids
    assert rc[left].apply_sync(os.getpid) == result


CRASHING_CLIENT = """
import os, sys, time
import taskyard as ty
rc = ty.Client(url_file=sys.argv[1], timeout=10)
rc.wait_for_engines(2, timeout=10, interactive=False)
lv = rc.load_balanced_view()
ars = [lv.apply_async(lambda i: (time.sleep(0.3), i * 10)[1], i) for i in range(3)]
ars += [rc[i % 2].apply_async(lambda i: (time.sleep(0.3), i * 100)[1], i) for i in range(2)]
print(" ".join(m for ar in ars for m in ar.msg_ids), flush=True)
time.sleep(0.1)
os._exit(3)
"""


def test_crashed_client_results_stay_retrievable(cluster: Any, rc: ty.Client) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CRASHING_CLIENT), str(cluster.cluster.client_file)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 3, proc.stderr
    msg_ids = proc.stdout.split()
    assert len(msg_ids) == 5
    results = [rc.get_result(msg_id).get(10) for msg_id in msg_ids]
    assert results == [0, 10, 20, 0, 100]
    assert rc[:].apply_async(lambda: 1).get(10) == [1, 1]
    assert pid_alive(cluster.controller_pid)


def test_client_shutdown_stops_everything(cluster: Any, rc: ty.Client) -> None:
    pids = [cluster.controller_pid, *cluster.extra_pids, *cluster.engine_pids]
    files = [cluster.cluster.client_file, cluster.cluster.engine_file]
    rc.shutdown(hub=True)
    wait_for(lambda: not any(pid_alive(p) for p in pids), 10, "the cluster to stop")
    assert not any(f.exists() for f in files)


def test_sigterm_controller_cleans_up(cluster: Any) -> None:
    scheduler = cluster.extra_pids
    assert scheduler, "no task scheduler process"
    os.kill(cluster.controller_pid, signal.SIGTERM)
    wait_for(lambda: not any(pid_alive(p) for p in [cluster.controller_pid, *scheduler]), 10, "controller to stop")
    assert not cluster.cluster.client_file.exists()
    assert not cluster.cluster.engine_file.exists()


def test_engines_exit_when_the_controller_dies(make_cluster: Any) -> None:
    cluster = make_cluster(2, engine_args=("--IPEngine.controller_timeout=3",))
    os.kill(cluster.controller_pid, signal.SIGKILL)
    started = time.monotonic()
    wait_for(lambda: not any(pid_alive(p) for p in cluster.engine_pids), 3 + 5, "engines to exit by themselves")
    assert time.monotonic() - started > 2
    wait_for(lambda: not any(pid_alive(p) for p in cluster.extra_pids), 5, "the scheduler to notice")
