"""The direct interface against a real controller and two engines."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import taskyard as ty
from tests.helpers import wait_for


def test_registration_gives_ids_in_order(rc: ty.Client) -> None:
    assert rc.ids == [0, 1]
    pids = rc[:].apply_sync(os.getpid)
    assert len(set(pids)) == 2 and os.getpid() not in pids


def test_apply_single_and_multiple_targets(rc: ty.Client) -> None:
    assert rc[0].apply_sync(lambda x, y=1: x * y, 21, y=2) == 42
    assert rc[:].apply_sync(lambda: 7) == [7, 7]
    assert rc[::2].apply_sync(lambda: 1) == [1]
    ar = rc[1].apply_async(lambda: "hi")
    assert isinstance(ar, ty.AsyncResult)
    assert ar.get(timeout=10) == "hi"
    assert ar.ready() and ar.successful()
    assert ar.metadata.engine_id == 1
    assert ar.metadata.started <= ar.metadata.completed <= ar.metadata.received


def test_namespace_push_pull_execute(rc: ty.Client) -> None:
    dv = rc[:]
    dv["a"] = 5
    assert dv["a"] == [5, 5]
    dv.push({"b": [1, 2], "c": "x"}, block=True)
    assert dv.pull(["b", "c"], block=True) == [[[1, 2], "x"], [[1, 2], "x"]]
    dv.execute("d = a * 10", block=True)
    assert dv.pull("d", block=True) == [50, 50]
    assert [r.data for r in dv.execute("d + 1", silent=False, block=True)] == [{"text/plain": "51"}] * 2
    # Interactively defined functions see the engine's namespace.
    assert dv.apply_sync(lambda: a + d) == [55, 55]  # noqa: F821 - defined on the engines
    assert rc[0].apply_sync(lambda x: x * 3, ty.Reference("a")) == 15


def test_scatter_gather_and_map(rc: ty.Client) -> None:
    dv = rc[:]
    dv.scatter("part", list(range(11)), block=True)
    assert dv.apply_sync(lambda: len(part)) == [6, 5]  # noqa: F821
    assert dv.gather("part", block=True) == list(range(11))
    assert dv.map_sync(lambda x, y: x + y, range(7), range(7)) == [2 * i for i in range(7)]
    amr = dv.map_async(lambda x: x * x, range(5))
    assert list(amr) == [0, 1, 4, 9, 16]


def test_stdout_is_captured_in_metadata(rc: ty.Client) -> None:
    import sys

    def noisy() -> int:
        print("to stdout")
        print("to stderr", file=sys.stderr)
        return 3

    ar = rc[0].apply_async(noisy)
    assert ar.get(10) == 3
    assert ar.metadata.stdout == "to stdout\n"
    assert ar.metadata.stderr == "to stderr\n"
    assert ar.stdout == "to stdout\n"


def test_remote_error_carries_type_message_traceback(rc: ty.Client) -> None:
    def fails() -> None:
        raise KeyError("missing thing")

    with pytest.raises(ty.error.RemoteError) as info:
        rc[1].apply_sync(fails)
    error = info.value
    assert error.ename == "KeyError"
    assert "missing thing" in error.evalue
    assert "in fails" in error.traceback and "KeyError" in error.traceback
    assert error.engine_info["engine_id"] == 1
    assert "[engine 1:apply]" in str(error.render_traceback())


def test_composite_error_lists_each_engine(rc: ty.Client) -> None:
    with pytest.raises(ty.error.CompositeError) as info:
        rc[:].apply_sync(lambda: 1 / 0)
    assert [e.engine_info["engine_id"] for e in info.value.elist] == [0, 1]
    assert all(e.ename == "ZeroDivisionError" for e in info.value.elist)


def test_numpy_round_trip_is_exact(rc: ty.Client) -> None:
    array = np.arange(3_000_000, dtype=np.float64).reshape(1000, 3000)
    out = rc[0].apply_sync(lambda x: x * 2, array)
    assert out.shape == array.shape and np.array_equal(out, array * 2)
    blob = os.urandom(200_000)
    assert rc[1].apply_sync(lambda b: b[::-1], blob) == blob[::-1]


def test_get_result_from_a_second_client(cluster, rc: ty.Client) -> None:  # type: ignore[no-untyped-def]
    ar = rc[0].apply_async(lambda: {"answer": 42})
    assert ar.get(10) == {"answer": 42}
    other = cluster.client()
    fetched = other.get_result(ar.msg_ids[0], owner=False)
    assert isinstance(fetched, ty.AsyncHubResult)
    assert fetched.get(10) == {"answer": 42}
    pending = rc[0].apply_async(lambda: __import__("time").sleep(1.0) or 1)
    assert not isinstance(rc.get_result(pending.msg_ids[0]), ty.AsyncHubResult)  # its own, still pending
    assert pending.get(10) == 1
    assert fetched.metadata.engine_id == 0
    failed = rc[1].apply_async(lambda: 1 / 0)
    failed.wait(10)
    with pytest.raises(ty.error.RemoteError):
        other.get_result(failed.msg_ids[0]).get(10)
    with pytest.raises(ty.error.TaskyardError):
        other.get_result("no-such-msg-id").get(10)


def test_a_result_too_large_to_keep_reaches_its_client_and_not_the_hub(make_cluster) -> None:  # type: ignore[no-untyped-def]
    cluster = make_cluster(1, controller_args=("--IPController.max_result_mb=0.5",))
    rc = cluster.client()
    rc.wait_for_engines(1, timeout=10, interactive=False)
    big = rc[0].apply_async(lambda: np.ones(1_000_000, dtype=np.uint8))  # 1 MB of buffers
    small = rc[0].apply_async(lambda: np.ones(1000, dtype=np.uint8))
    assert big.get(10).sum() == 1_000_000 and small.get(10).sum() == 1000
    other = cluster.client()
    assert other.get_result(small.msg_ids[0]).get(10).sum() == 1000
    with pytest.raises(ty.error.TaskyardError, match="max_result_mb"):
        other.get_result(big.msg_ids[0]).get(10)
    assert other.get_result(big.msg_ids[0]).metadata.engine_id == 0, "the record itself is kept"


def test_queue_status_counts(rc: ty.Client) -> None:
    rc[0].apply_sync(lambda: None)
    status = wait_for(lambda: (s := rc.queue_status()) and s[0]["completed"] >= 1 and s, 10, "a completed task")
    assert set(status) == {0, 1, "unassigned"}
    assert set(status[0]) == {"queue", "completed", "tasks"}


def test_timeout_error_and_abort(rc: ty.Client) -> None:
    import time

    slow = rc[0].apply_async(time.sleep, 1.0)
    queued = rc[0].apply_async(lambda: "should not run")
    with pytest.raises(ty.error.TimeoutError):
        slow.get(timeout=0.05)
    rc.abort(queued, targets=0, block=True)
    with pytest.raises(ty.error.TaskAborted):
        queued.get(10)
    assert slow.get(10) is None


def test_clear_resets_namespace(rc: ty.Client) -> None:
    rc[:]["gone"] = 1
    rc.clear(block=True)
    with pytest.raises(ty.error.CompositeError):
        rc[:].pull("gone", block=True)


def test_client_apply_direct_and_load_balanced(rc: ty.Client) -> None:
    assert rc.apply(lambda x: x + 1, (1,), block=True, targets=0) == 2
    assert rc.apply(lambda: 3, block=True, targets=[0, 1]) == [3, 3]
    first = rc.apply(lambda: "first")
    second = rc.apply(lambda **kw: kw, kwargs={"k": 1}, after=first)
    assert second.get(10) == {"k": 1}
    assert second.metadata.started >= first.metadata.completed
    with pytest.raises(ValueError, match="load-balanced"):
        rc.apply(lambda: 1, targets=0, after=first)


def test_wait_interactive_shows_progress_and_html(rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    ar = rc[:].apply_async(time.sleep, 0.2)
    assert ar.progress == 0
    assert "pending" in ar._repr_html_()
    assert ar.wait_interactive(interval=0.05, timeout=10)
    assert ar.progress == 2
    assert "2/2" in capsys.readouterr().out  # the bar is on stdout, as ipyparallel's
    assert "finished" in ar._repr_html_()
    failed = rc[0].apply_async(lambda: 1 / 0)
    failed.wait(10)
    html = failed._repr_html_()
    assert "failed" in html and "ZeroDivisionError" in html and "[engine 0:apply]" in html


def test_wait_interactive_streams_engine_output(rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    def chatty(n: int) -> int:
        for i in range(n):
            print(f"step {i}", flush=True)
            time.sleep(0.3)
        return n

    ar = rc[:].apply_async(chatty, 3)
    assert ar.wait_interactive(interval=0.05, timeout=20)
    out = capsys.readouterr()
    text = out.out + out.err
    for engine_id in (0, 1):
        assert re.search(rf"\[stdout:{engine_id}\]\n(step \d\n)*step 0\n", text)
        assert re.search(rf"\[stdout:{engine_id}\]\n(step \d\n)*step 2\n", text)


def test_execute_that_raises_aborts_the_cells_queued_behind_it(rc: ty.Client) -> None:
    view = rc[1]
    view.execute("b = 10", block=True)
    failing = view.execute("import time; time.sleep(0.5); b / 0", block=False)
    queued = [view.execute("b *= 2", block=False), view.apply_async(lambda: "queued apply")]
    with pytest.raises(ty.RemoteError, match="ZeroDivisionError"):
        failing.get(10)
    for ar in queued:  # sent while the failing cell ran: answered "aborted", as an IPython kernel does
        with pytest.raises(ty.error.TaskAborted):
            ar.get(10)
    assert view["b"] == 10  # the aborted cell did not run
    assert view.apply_sync(lambda: "after") == "after"  # what comes later runs
    other = rc[0].apply_async(lambda: "other engine")
    assert other.get(10) == "other engine"
