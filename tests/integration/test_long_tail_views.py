"""The long tail of the views: executors, joblib, lazy maps, data movement aliases.

Functions are marked ``ty.interactive`` (or are local) so they travel by value.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pytest

import taskyard as ty
from taskyard.client.asyncresult import AsyncResult
from taskyard.error import RemoteError

TIMEOUT = 15  # seconds any single result may take before the test fails


@ty.interactive
def square(x: int) -> int:
    return x * x


@ty.interactive
def sleep_then(seconds: float, value: Any = None) -> Any:
    import time

    time.sleep(seconds)
    return value


@ty.interactive
def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


# -- executor -------------------------------------------------------------


def test_client_executor_submits_and_works_with_as_completed(rc: ty.Client) -> None:
    ex = rc.executor()
    assert isinstance(ex, concurrent.futures.Executor)
    futures = [ex.submit(square, i) for i in range(8)]
    assert all(isinstance(f, AsyncResult) for f in futures)
    done = {f.result(timeout=TIMEOUT) for f in concurrent.futures.as_completed(futures, timeout=TIMEOUT)}
    assert done == {i * i for i in range(8)}
    finished, pending = concurrent.futures.wait(futures, timeout=TIMEOUT)
    assert len(finished) == 8 and not pending


def test_view_executor_map_is_ordered_and_shutdown_waits(rc: ty.Client) -> None:
    for view in (rc.load_balanced_view(), rc[:]):
        ex = view.executor
        assert list(ex.map(square, range(10))) == [i * i for i in range(10)]
        slow = ex.submit(sleep_then, 0.3, "late")
        ex.shutdown(wait=True)
        assert slow.done()
        with pytest.raises(RuntimeError):
            ex.submit(square, 1)


def test_executor_future_carries_remote_error(rc: ty.Client) -> None:
    fut = rc.executor().submit(fail_on_three, 3)
    with pytest.raises(RemoteError):
        fut.result(timeout=TIMEOUT)


def test_executor_as_context_manager_and_targets(rc: ty.Client) -> None:
    with rc.executor(targets=[0]) as ex:
        ar = ex.submit(square, 4)
    assert ar.done() and ar.get(timeout=TIMEOUT) == 16
    assert ar.engine_id == 0


def test_len_of_views(rc: ty.Client) -> None:
    n = len(rc.ids)
    assert len(rc[:]) == n
    assert len(rc[0]) == 1
    assert len(rc.load_balanced_view()) == n
    assert len(rc.load_balanced_view([0])) == 1


# -- joblib ---------------------------------------------------------------


def test_joblib_backend_on_a_view(rc: ty.Client) -> None:
    joblib = pytest.importorskip("joblib")
    rc.load_balanced_view().register_joblib_backend()
    out = joblib.Parallel(backend="taskyard")(joblib.delayed(square)(i) for i in range(20))
    assert out == [i * i for i in range(20)]
    # Code written for ipyparallel asks for it by that name.
    out = joblib.Parallel(backend="ipyparallel", n_jobs=2)(joblib.delayed(square)(i) for i in range(5))
    assert out == [0, 1, 4, 9, 16]


def test_joblib_backend_raises_remote_error(rc: ty.Client) -> None:
    joblib = pytest.importorskip("joblib")
    rc[:].register_joblib_backend(name="taskyard-direct")
    with pytest.raises(Exception, match="three"):
        joblib.Parallel(backend="taskyard-direct")(joblib.delayed(fail_on_three)(i) for i in range(6))


def test_module_level_joblib_backend_connects_default_client(rc: ty.Client) -> None:
    joblib = pytest.importorskip("joblib")
    from taskyard.client.joblib_backend import register_joblib_backend

    register_joblib_backend(name="taskyard-default", url_file=rc.url_file, timeout=10)
    with joblib.parallel_config(backend="taskyard-default"):
        out = joblib.Parallel()(joblib.delayed(square)(i) for i in range(6))
    assert out == [i * i for i in range(6)]
