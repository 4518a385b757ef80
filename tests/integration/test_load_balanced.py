"""The load-balanced interface against a real controller, task scheduler and engines.

Functions sent to the engines are marked ``ty.interactive`` (or are local), so
they travel by value: the engines never import this module.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import taskyard as ty
from examples import dagdeps
from tests.helpers import wait_for
from tests.integration.conftest import ClusterHandle

TIMEOUT = 15  # seconds any single result may take before the test fails


@ty.interactive
def sleep_then(seconds: float, value: Any = None) -> Any:
    import time

    time.sleep(seconds)
    return value


@ty.interactive
def getpid_after(seconds: float = 0.0) -> int:
    import os
    import time

    time.sleep(seconds)
    return os.getpid()


@ty.interactive
def fail_after(seconds: float = 0.0) -> None:
    import time

    time.sleep(seconds)
    raise ValueError("failing on purpose")


@ty.interactive
def square(x: int) -> int:
    return x * x


def connect(cluster: ClusterHandle, n: int = 2) -> ty.Client:
    rc = cluster.client()
    rc.wait_for_engines(n, timeout=10, interactive=False)
    return rc


def started_after_completed(child: ty.AsyncResult, parent: ty.AsyncResult) -> bool:
    return bool(child.metadata.started >= parent.metadata.completed)


# -- schemes -------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["lru", "plainrandom", "twobin", "leastload", "weighted"])
def test_scheme_runs_apply_and_map_on_both_engines(make_cluster: Callable[..., ClusterHandle], scheme: str) -> None:
    rc = connect(make_cluster(2, controller_args=(f"--scheme={scheme}",)))
    assert rc.task_scheme == scheme
    lv = rc.load_balanced_view()
    assert lv.apply_async(lambda x, y=1: x * y, 21, y=2).get(TIMEOUT) == 42
    assert lv.map_sync(square, range(10)) == [x * x for x in range(10)]
    # With one task per engine at a time (hwm=1), sleeping tasks submitted together
    # must spread over both engines whatever the scheme.
    ars = [lv.apply_async(getpid_after, 0.1) for _ in range(6)]
    pids = {ar.get(TIMEOUT) for ar in ars}
    assert {ar.metadata.engine_id for ar in ars} == {0, 1}
    assert len(pids) == 2 and os.getpid() not in pids


# -- graph dependencies ---------------------------------------------------


def test_after_starts_once_every_parent_completed(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    parents = [lv.apply_async(sleep_then, 0.2, i) for i in range(2)]
    with lv.temp_flags(after=parents):
        child = lv.apply_async(sleep_then, 0, "child")
    assert child.get(TIMEOUT) == "child"
    assert [p.get(TIMEOUT) for p in parents] == [0, 1]
    assert all(started_after_completed(child, p) for p in parents)
    # The flag was temporary; msg_ids and a Dependency are accepted too.
    assert lv.after is None
    grandchild = lv.apply_async(sleep_then, 0, "done")
    lv.set_flags(after=ty.Dependency(child.msg_ids))
    try:
        last = lv.apply_async(sleep_then, 0, "last")
    finally:
        lv.set_flags(after=None)
    assert last.get(TIMEOUT) == "last" and grandchild.get(TIMEOUT) == "done"
    assert started_after_completed(last, child)


def test_follow_runs_where_the_followed_task_ran(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    with lv.temp_flags(targets=[1]):
        leader = lv.apply_async(getpid_after, 0)
    leader_pid = leader.get(TIMEOUT)
    # Engine 0 is idle, so without ``follow`` some of these would run there.
    with lv.temp_flags(follow=leader):
        followers = [lv.apply_async(getpid_after, 0.05) for _ in range(4)]
    assert [f.get(TIMEOUT) for f in followers] == [leader_pid] * 4
    assert {f.metadata.engine_id for f in followers} == {1}
    # Followed tasks that ran on different engines leave nowhere to go (all=True)...
    with lv.temp_flags(targets=[0]):
        other = lv.apply_async(getpid_after, 0)
    other.get(TIMEOUT)
    with lv.temp_flags(follow=[leader, other]):
        nowhere = lv.apply_async(getpid_after, 0)
    with pytest.raises(ty.error.ImpossibleDependency):
        nowhere.get(TIMEOUT)
    # ... but either engine will do with all=False.
    with lv.temp_flags(follow=ty.Dependency([leader, other], all=False)):
        either = lv.apply_async(getpid_after, 0)
    assert either.get(TIMEOUT) in (leader_pid, other.get(TIMEOUT))


def test_any_of_the_dependencies_is_enough_with_all_false(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    quick = lv.apply_async(sleep_then, 0, "quick")
    slow = lv.apply_async(sleep_then, 1.0, "slow")
    with lv.temp_flags(after=ty.Dependency([quick, slow], all=False)):
        either = lv.apply_async(sleep_then, 0, "either")
    assert either.get(TIMEOUT) == "either"
    assert started_after_completed(either, quick)
    assert not slow.ready(), "the task should not have waited for the slow dependency"
    assert slow.get(TIMEOUT) == "slow"


def test_all_false_still_runs_when_one_dependency_failed(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    failed = lv.apply_async(fail_after, 0)
    ok = lv.apply_async(sleep_then, 0.2, "ok")
    with lv.temp_flags(after=ty.Dependency([failed, ok], all=False)):
        child = lv.apply_async(sleep_then, 0, "child")
    assert child.get(TIMEOUT) == "child"
    assert started_after_completed(child, ok)


def test_success_only_false_runs_after_a_failure(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    parent = lv.apply_async(fail_after, 0.1)
    with lv.temp_flags(after=ty.Dependency(parent, success_only=False)):
        child = lv.apply_async(sleep_then, 0, "ran anyway")
    assert child.get(TIMEOUT) == "ran anyway"
    with pytest.raises(ty.error.RemoteError):
        parent.get(TIMEOUT)
    assert started_after_completed(child, parent)


def test_failed_dependency_makes_dependents_impossible(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    parent = lv.apply_async(fail_after, 0.1)
    with lv.temp_flags(after=parent):
        child = lv.apply_async(sleep_then, 0, "never")
    with lv.temp_flags(after=child):
        grandchild = lv.apply_async(sleep_then, 0, "never")
    with pytest.raises(ty.error.ImpossibleDependency):
        child.get(TIMEOUT)
    with pytest.raises(ty.error.ImpossibleDependency):
        grandchild.get(TIMEOUT)
    # A dependency that already failed is as impossible as one failing later.
    with lv.temp_flags(after=parent):
        late = lv.apply_async(sleep_then, 0, "never")
    with pytest.raises(ty.error.ImpossibleDependency):
        late.get(TIMEOUT)


def test_unknown_dependency_is_invalid(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    with lv.temp_flags(after="no-such-msg-id"):
        ar = lv.apply_async(sleep_then, 0, "never")
    with pytest.raises(ty.error.InvalidDependency):
        ar.get(TIMEOUT)
    with lv.temp_flags(follow=["no-such-msg-id-either"]):
        ar = lv.apply_async(sleep_then, 0, "never")
    with pytest.raises(ty.error.InvalidDependency):
        ar.get(TIMEOUT)


def test_timeout_while_waiting_for_a_slow_dependency(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    slow = lv.apply_async(sleep_then, 1.5, "slow")
    with lv.temp_flags(after=slow, timeout=0.2):
        impatient = lv.apply_async(sleep_then, 0, "never")
    with pytest.raises(ty.error.DependencyTimeout):
        impatient.get(TIMEOUT)
    assert not slow.ready(), "the timeout should fire long before the dependency finishes"
    assert slow.get(TIMEOUT) == "slow"


def test_targets_restrict_to_an_engine(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    lv.set_flags(targets=[1])
    ars = [lv.apply_async(getpid_after, 0.02) for _ in range(4)]
    amr = lv.map_async(square, range(4))
    assert amr.get(TIMEOUT) == [0, 1, 4, 9]
    assert {ar.get(TIMEOUT) and ar.metadata.engine_id for ar in ars} == {1}
    assert {md.engine_id for md in amr.metadata} == {1}
    pinned = rc.load_balanced_view(targets=[0])
    ars = [pinned.apply_async(getpid_after, 0.02) for _ in range(3)]
    assert {ar.get(TIMEOUT) and ar.metadata.engine_id for ar in ars} == {0}


def test_retries_rerun_a_failed_task_on_another_engine(rc: ty.Client, tmp_path: Path) -> None:
    @ty.interactive
    def fails_first_time(marker: str) -> int:
        import os

        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\n")
        with open(marker) as f:
            if len(f.read().split()) == 1:
                raise RuntimeError("first attempt fails")
        return os.getpid()

    lv = rc.load_balanced_view()
    marker = tmp_path / "attempts"
    with lv.temp_flags(retries=1):
        ar = lv.apply_async(fails_first_time, str(marker))
    pid = ar.get(TIMEOUT)
    first, second = (int(p) for p in marker.read_text().split())
    assert second == pid and first != pid, "the retry must avoid the engine that failed"
    # Without retries the failure is the user's error.
    marker.unlink()
    with pytest.raises(ty.error.RemoteError, match="first attempt fails"):
        lv.apply_async(fails_first_time, str(marker)).get(TIMEOUT)


# -- a random DAG through the example -------------------------------------


def test_random_dag_of_500_tasks_runs_in_order(rc: ty.Client, tmp_path: Path) -> None:
    G, results = dagdeps.run(rc, 500, 1500, seed=7, max_wait=0.002, timeout=60)
    assert len(results) == 500 and G.number_of_edges() == 1500
    summary = dagdeps.validate(G, results)
    assert summary.tasks == 500 and summary.edges == 1500
    assert set(summary.tasks_per_engine) == {0, 1}
    assert summary.tightest_gap is not None and summary.tightest_gap >= 0
    path = dagdeps.plot(G, results, tmp_path / "dag.png")
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_validate_catches_a_broken_order(rc: ty.Client) -> None:
    # Two independent tasks, validated as if the second depended on the first.
    G = dagdeps.random_dag(2, 0)
    lv = rc.load_balanced_view()
    first = lv.apply_async(sleep_then, 0.3)
    second = lv.apply_async(sleep_then, 0)
    assert first.get(TIMEOUT) is None and second.get(TIMEOUT) is None
    G.add_edge(0, 1)
    with pytest.raises(AssertionError, match="not respected"):
        dagdeps.validate(G, {0: first, 1: second})


def test_dagdeps_main_starts_its_own_cluster(taskyard_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "dag.png"
    argv = ["--start-cluster", "2", "--nodes", "20", "--edges", "40", "--max-wait", "0.001"]
    argv += ["--profile-dir", str(tmp_path / "profile"), "--output", str(output)]
    assert dagdeps.main(argv) == 0
    assert output.stat().st_size > 1000


# -- functional dependencies ----------------------------------------------


def test_require_of_a_missing_module_is_impossible_everywhere(rc: ty.Client) -> None:
    @ty.require("some_nonexistent_module_for_taskyard")
    def needs_missing() -> str:
        return "never"

    lv = rc.load_balanced_view()
    with pytest.raises(ty.error.ImpossibleDependency) as info:
        lv.apply_async(needs_missing).get(TIMEOUT)
    assert "0, 1" in str(info.value)  # both engines were tried and excluded


def test_require_of_an_available_module_runs(rc: ty.Client) -> None:
    @ty.require("json")
    def encode(value: Any) -> str:
        return json.dumps(value)  # noqa: F821 - bound by require on the engine

    lv = rc.load_balanced_view()
    assert lv.apply_async(encode, {"a": [1, 2]}).get(TIMEOUT) == '{"a": [1, 2]}'


def test_depend_routes_to_the_engine_whose_check_passes(rc: ty.Client) -> None:
    engine1_pid = rc[1].apply_sync(os.getpid)

    def is_process(pid: int) -> bool:
        import os

        return os.getpid() == pid

    @ty.depend(is_process, engine1_pid)
    def where() -> int:
        import os

        return os.getpid()

    lv = rc.load_balanced_view()
    ars = [lv.apply_async(where) for _ in range(4)]
    assert [ar.get(TIMEOUT) for ar in ars] == [engine1_pid] * 4
    assert {ar.metadata.engine_id for ar in ars} == {1}


def test_queue_status_forgets_tasks_an_engine_refused(rc: ty.Client) -> None:
    # Each task is offered to engine 0 first at least once (it is idle), which
    # refuses it with UnmetDependency; engine 1 runs them all.
    engine1_pid = rc[1].apply_sync(os.getpid)

    def is_process(pid: int) -> bool:
        import os

        return os.getpid() == pid

    @ty.depend(is_process, engine1_pid)
    def where() -> int:
        return 1

    lv = rc.load_balanced_view()
    ars = [lv.apply_async(where) for _ in range(6)]
    for ar in ars:
        ar.get(TIMEOUT)
    def all_seen() -> dict[Any, Any] | None:
        status = rc.queue_status()
        return status if status[1]["completed"] >= 7 else None

    status = wait_for(all_seen, TIMEOUT, "the hub to see the replies")
    assert status[0]["tasks"] == 0 and status[0]["queue"] == 0
    assert status[1]["tasks"] == 0 and status[1]["queue"] == 0
    assert status["unassigned"] == 0


def test_depend_check_sees_the_engine_namespace(rc: ty.Client) -> None:
    rc[1]["taskyard_ok_here"] = True

    def flagged() -> bool:
        return bool(globals().get("taskyard_ok_here"))

    @ty.depend(flagged)
    def where() -> int:
        import os

        return os.getpid()

    lv = rc.load_balanced_view()
    ars = [lv.apply_async(where) for _ in range(3)]
    for ar in ars:
        ar.get(TIMEOUT)
    assert {ar.metadata.engine_id for ar in ars} == {1}


# -- map, iteration, decorators ------------------------------------------


def test_map_with_chunksize_sends_one_task_per_chunk(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    amr = lv.map_async(square, range(10), chunksize=3)
    assert len(amr.msg_ids) == 4
    assert amr.get(TIMEOUT) == [x * x for x in range(10)]
    assert list(amr) == [x * x for x in range(10)]
    assert lv.map_sync(lambda x, y: x - y, [5, 6, 7], [1, 1, 1], chunksize=2) == [4, 5, 6]


def test_unordered_map_yields_every_result(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    # Later items finish first, so unordered iteration sees them first.
    amr = lv.map_async(lambda x: sleep_then(0.05 * (3 - x), x), range(4), ordered=False)
    seen = list(amr)
    assert sorted(seen) == [0, 1, 2, 3]
    assert amr.get(TIMEOUT) == [0, 1, 2, 3]


def test_imap_and_map_sync_of_many_items(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    assert list(lv.imap(square, range(20))) == [x * x for x in range(20)]
    assert lv.map_sync(lambda x: x + 1, range(1000), chunksize=50) == list(range(1, 1001))
    assert lv.map_sync(lambda x: -x, range(1000)) == [-x for x in range(1000)]


def test_parallel_and_remote_decorators(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()

    @lv.remote(block=True)
    def remote_pid() -> int:
        import os

        return os.getpid()

    assert remote_pid() in rc[:].apply_sync(os.getpid)

    @lv.parallel(block=True)
    def block_sizes(*blocks: list[int]) -> list[int]:
        # Called once per block, with the block: its items join the result.
        return [len(blocks[0])] * len(blocks[0])

    assert block_sizes(range(5)) == [1] * 5
    assert block_sizes(list(range(5)), chunksize=2) == [2, 2, 2, 2, 1]

    @lv.parallel()
    def add(x: int, y: int) -> int:  # with .map: called once per item
        return x + y

    assert add.map(range(4), range(4)).get(TIMEOUT) == [0, 2, 4, 6]
    with pytest.raises(TypeError, match="unexpected flags"):
        lv.map(add, range(4), bogus=1)

    # On a DirectView, one block per engine.
    @rc[:].parallel(block=True)
    def block_sums(block: list[int]) -> list[int]:
        return [sum(block)]

    assert block_sums(list(range(10))) == [sum(range(5)), sum(range(5, 10))]

    @lv.remote(block=False, targets=[0])
    def on_zero() -> str:
        return "zero"

    ar = on_zero()
    assert ar.get(TIMEOUT) == "zero" and ar.metadata.engine_id == 0
    assert lv.targets is None  # the decorator's flags did not stick


def test_client_wait_and_metadata(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    ars = [lv.apply_async(sleep_then, 0.05, i) for i in range(4)]
    assert rc.wait(ars, timeout=TIMEOUT)
    assert rc.wait([ar.msg_ids[0] for ar in ars], timeout=TIMEOUT)
    assert all(ar.ready() and ar.successful() for ar in ars)
    for ar in ars:
        md = ar.metadata
        assert md.engine_id in (0, 1) and md.engine_uuid == rc.engine_uuid(md.engine_id)
        assert md.status == "ok"
        assert md.submitted <= md.started <= md.completed <= md.received
    slow = lv.apply_async(sleep_then, 1.0)
    assert not rc.wait([slow], timeout=0.05)
    assert slow.get(TIMEOUT) is None


# -- engines dying -------------------------------------------------------


@ty.interactive
def record_and_linger(marker: str) -> int:
    """Append this engine's pid to ``marker``; the first attempt lingers to be killed."""
    import os
    import time

    with open(marker, "a") as f:
        f.write(f"{os.getpid()}\n")
    with open(marker) as f:
        attempts = len(f.read().split())
    if attempts == 1:
        time.sleep(30)
    return os.getpid()


def _kill_when_started(cluster: ClusterHandle, marker: Path) -> int:
    """SIGKILL the engine that started the task writing ``marker``; returns its pid."""
    text = wait_for(lambda: marker.exists() and marker.read_text(), 10, "the task to start")
    pid = int(text.split()[0])
    assert pid in cluster.engine_pids
    os.kill(pid, signal.SIGKILL)
    return pid


def test_engine_killed_mid_task_fails_it(make_cluster: Callable[..., ClusterHandle], tmp_path: Path) -> None:
    cluster = make_cluster(2)
    rc = connect(cluster)
    lv = rc.load_balanced_view()
    marker = tmp_path / "attempts"
    ar = lv.apply_async(record_and_linger, str(marker))
    _kill_when_started(cluster, marker)
    with pytest.raises(ty.error.EngineError):
        ar.get(TIMEOUT)


def test_engine_killed_mid_task_is_retried(make_cluster: Callable[..., ClusterHandle], tmp_path: Path) -> None:
    cluster = make_cluster(2)
    rc = connect(cluster)
    lv = rc.load_balanced_view()
    marker = tmp_path / "attempts"
    with lv.temp_flags(retries=1):
        ar = lv.apply_async(record_and_linger, str(marker))
    killed = _kill_when_started(cluster, marker)
    survivor = ar.get(TIMEOUT)
    assert survivor != killed and survivor in cluster.engine_pids
    assert marker.read_text().split() == [str(killed), str(survivor)]
    started = time.monotonic()
    assert lv.apply_async(getpid_after, 0).get(TIMEOUT) == survivor
    assert time.monotonic() - started < TIMEOUT


def test_a_failure_only_dependency_runs_a_fallback_and_skips_on_success(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    broken = lv.apply_async(lambda: 1 / 0)
    fine = lv.apply_async(lambda: "fine")
    with lv.temp_flags(after=ty.Dependency([broken], success=False, failure=True)):
        fallback = lv.apply_async(lambda: "fallback ran")
    with lv.temp_flags(after=ty.Dependency([fine], success=False, failure=True)):
        skipped = lv.apply_async(lambda: "should not run")
    assert fallback.get(TIMEOUT) == "fallback ran"
    with pytest.raises(ty.error.ImpossibleDependency, match="only failures count"):
        skipped.get(TIMEOUT)
