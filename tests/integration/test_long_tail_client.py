"""ipyparallel's long tail on the client side, against a real cluster: top-level names,
``Client`` history and indexing, targeted purges, views with flags, waiting for engines.

Functions sent to engines are defined at module level and import what they use inside:
they travel by value (registered below), the engines never import this module.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import Future
from typing import Any

import cloudpickle
import pytest

import taskyard as ty

# the engines may run another checkout of taskyard, without this file
cloudpickle.register_pickle_by_value(sys.modules[__name__])

TIMEOUT = 20


def sleep_then(seconds: float, value: Any = None) -> Any:
    import time

    time.sleep(seconds)
    return value


def test_an_expired_task_timeout_is_caught_as_task_timeout(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    slow = lv.apply_async(sleep_then, 1.0, "slow")
    with lv.temp_flags(after=slow, timeout=0.2):
        impatient = lv.apply_async(sleep_then, 0, "never")
    with pytest.raises(ty.TaskTimeout) as caught:
        impatient.get(TIMEOUT)
    assert isinstance(caught.value, ty.DependencyTimeout)
    assert isinstance(caught.value, ty.KernelError)
    assert slow.get(TIMEOUT) == "slow"


def double(x: int) -> int:
    return 2 * x


def test_module_level_remote_and_parallel_decorators(rc: ty.Client) -> None:
    getpid = ty.remote(rc[:], block=True)(sleep_then)
    assert getpid(0, "x") == ["x", "x"]

    def total(xs: list[int]) -> list[int]:
        return [sum(xs)]  # one block in, one block out: the blocks are joined

    blocks = ty.parallel(rc.load_balanced_view(), block=True)(total)
    assert sum(blocks(list(range(10)))) == sum(range(10))
    assert ty.parallel(rc[:], block=True)(double).map([1, 2, 3]) == [2, 4, 6]


def test_remote_and_parallel_functions_say_what_they_are() -> None:
    def multiply(x: int, y: int = 5) -> int:
        """multiply x * y"""
        return x * y

    from taskyard.client.remotefunction import ParallelFunction, RemoteFunction

    wrapped = RemoteFunction(None, multiply)  # type: ignore[arg-type]
    assert wrapped.__name__ == "multiply"
    assert wrapped.__doc__ is not None and wrapped.__doc__.startswith("RemoteFunction wrapping multiply")
    assert "multiply x * y" in wrapped.__doc__
    assert "ParallelFunction" in (ParallelFunction(None, multiply).__doc__ or "")  # type: ignore[arg-type]


def sleep_by_value(x: float) -> float:
    import time

    time.sleep(x)
    return x


def chunk_sizes(xs: list[int]) -> list[int]:
    return [len(xs)]


def test_parallel_takes_chunksize_ordered_and_return_exceptions(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    # chunksize: blocks of 3 items, each one task (ipyparallel's ParallelFunction keyword, not a view flag)
    assert ty.parallel(lv, block=True, chunksize=3)(chunk_sizes)(list(range(7))) == [3, 3, 1]
    # ordered=False: the quick item first, as it finishes
    unordered = ty.parallel(lv, ordered=False)(sleep_by_value).map([0.6, 0.0])
    assert list(unordered) == [0.0, 0.6]
    assert list(ty.parallel(lv, ordered=True)(sleep_by_value).map([0.6, 0.0])) == [0.6, 0.0]
    # return_exceptions: the failed item's error in its place
    inverted = ty.parallel(lv, block=True, return_exceptions=True)(invert).map([1, 0, 2])
    assert inverted[0] == 1.0 and inverted[2] == 0.5 and isinstance(inverted[1], ty.RemoteError)
    # a view flag still goes to the view, and only for the call
    with_retries = ty.parallel(lv, block=True, retries=2)(double)
    assert with_retries.map([4]) == [8] and lv.retries == 0
    with pytest.warns(UserWarning, match="chunksize is ignored"):
        assert ty.parallel(rc[:], block=True, chunksize=3)(double).map([1]) == [2]


def invert(x: float) -> float:
    return 1 / x


def test_history_lists_requests_in_order_and_get_result_indexes_it(rc: ty.Client) -> None:
    view = rc[0]
    before = len(rc.history)
    first = view.apply_async(double, 1)
    second = view.apply_async(double, 2)
    assert rc.history[before:] == first.msg_ids + second.msg_ids
    assert first.get(TIMEOUT) == 2 and second.get(TIMEOUT) == 4
    assert rc.get_result(-1).get(TIMEOUT) == 4
    assert rc.get_result(before).get(TIMEOUT) == 2
    assert rc.get_result().get(TIMEOUT) == 4  # the default: the last request
    assert rc.get_result([before, -1]).get(TIMEOUT) == [2, 4]
    assert rc.get_result([first, second]).msg_ids == first.msg_ids + second.msg_ids  # AsyncResults in a list
    assert rc.get_result([second, first.msg_ids[0]]).get(TIMEOUT) == [4, 2]
    with pytest.raises(IndexError, match="history"):
        rc.get_result(len(rc.history) + 5)


def test_new_views_take_the_clients_block_flag(rc: ty.Client) -> None:
    assert rc[:].block is False
    rc.block = True  # ipyparallel's rc.block = True, then views made from it block
    try:
        assert rc[:].block is True and rc.load_balanced_view().block is True
        assert rc[0].apply(lambda: 5) == 5
    finally:
        rc.block = False


def test_iterating_a_client_gives_one_view_per_engine(rc: ty.Client) -> None:
    views = list(rc)
    assert [view.targets for view in views] == rc.ids
    assert [view.apply_sync(double, 3) for view in views] == [6] * len(rc.ids)


def test_views_take_flags_as_keywords(rc: ty.Client) -> None:
    direct = rc.direct_view("all", block=True)
    assert direct.block is True
    assert direct.apply(double, 5) == [10] * len(rc.ids)
    balanced = rc.load_balanced_view(retries=2, block=True)
    assert (balanced.retries, balanced.block) == (2, True)
    assert balanced.apply(double, 6) == 12
    with pytest.raises(KeyError, match="invalid flag"):
        rc.load_balanced_view(no_such_flag=1)


def test_wait_for_engines_without_blocking_returns_a_future(rc: ty.Client) -> None:
    ready = rc.wait_for_engines(len(rc.ids), timeout=TIMEOUT, block=False)
    assert isinstance(ready, Future)
    assert ready.result(TIMEOUT) is None
    too_many = rc.wait_for_engines(len(rc.ids) + 1, timeout=0.3, block=False)
    started = time.monotonic()
    with pytest.raises(ty.TimeoutError):
        too_many.result(TIMEOUT)
    assert time.monotonic() - started < TIMEOUT / 2


def test_purge_results_of_one_engine_keeps_the_others(rc: ty.Client) -> None:
    first, second = rc.ids[:2]
    on_first = rc[first].apply_async(double, 1)
    on_second = rc[second].apply_async(double, 2)
    assert (on_first.get(TIMEOUT), on_second.get(TIMEOUT)) == (2, 4)
    rc.purge_results(targets=[first])
    status = rc.result_status(on_first.msg_ids + on_second.msg_ids)
    assert status["unknown"] == on_first.msg_ids
    assert status["completed"] == on_second.msg_ids


def fail_first(i: int) -> int:
    import time

    if i == 0:
        raise ZeroDivisionError("first")
    time.sleep(1.0)
    return i


def test_wait_with_return_when_gives_done_and_pending_parts(rc: ty.Client) -> None:
    dv = rc[:]
    n = len(dv)
    assert n >= 2
    amr = dv.map_async(fail_first, range(n))
    done, pending = amr.wait(timeout=TIMEOUT, return_when=ty.FIRST_EXCEPTION)
    assert len(done) == 1 and len(pending) == n - 1
    (first,) = done
    assert first.msg_ids == amr.msg_ids[:1] and isinstance(first.exception(), ty.RemoteError)
    assert amr.wait(timeout=TIMEOUT) is True
    done, pending = amr.wait(timeout=0, return_when=ty.ALL_COMPLETED)
    assert pending == set() and len(done) == n
    single = rc[0].apply_async(sleep_then, 0, "one")
    done, pending = single.wait(TIMEOUT, return_when=ty.FIRST_COMPLETED)
    assert done == {single} and pending == set()


def test_negative_targets_are_pinned_when_the_view_is_made(rc: ty.Client) -> None:
    last = rc.ids[-1]
    assert rc.direct_view().targets == "all" and rc.direct_view("all").targets == "all"
    assert rc.direct_view(-1).targets == last and rc[-1].targets == last
    assert rc.direct_view([0, -1]).targets == [0, last]
    assert rc.load_balanced_view().targets is None and rc.load_balanced_view("all").targets is None
    assert rc.load_balanced_view(-1).targets == [last]
    assert rc.load_balanced_view(-1).apply_sync(sleep_then, 0, "x") == "x"
    assert rc[-1].apply_sync(sleep_then, 0, "y") == "y"


def test_client_wait_accepts_any_future(rc: ty.Client) -> None:
    import threading

    plain: Future[str] = Future()
    threading.Timer(0.1, plain.set_result, ["later"]).start()
    ar = rc[0].apply_async(sleep_then, 0.1, "ar")
    assert rc.wait([plain, ar], timeout=TIMEOUT) is True
    assert plain.result() == "later" and ar.get(0) == "ar"
    never: Future[str] = Future()
    assert rc.wait([never], timeout=0.1) is False


def test_client_wait_interactive_waits_for_everything_outstanding(rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:
    ars = [rc[0].apply_async(sleep_then, 0.3, i) for i in range(3)]
    assert rc.wait_interactive(timeout=TIMEOUT) is True
    assert rc.outstanding == set() and [ar.get(0) for ar in ars] == [0, 1, 2]
    assert "3/3" in capsys.readouterr().out  # the progress bar (on stdout) counted them
    assert rc.wait_interactive() is True  # nothing outstanding: at once
    assert rc.wait_interactive(ars[0].msg_ids, timeout=TIMEOUT) is True


def test_an_unknown_engine_id_is_an_index_error_as_in_ipyparallel(rc: ty.Client) -> None:
    with pytest.raises(IndexError):
        rc[max(rc.ids) + 100]
    with pytest.raises(ty.NoEnginesRegistered):
        rc[max(rc.ids) + 100]


def test_purge_local_hub_and_everything(rc: ty.Client) -> None:
    with pytest.raises(ValueError, match="give jobs"):
        rc.purge_local_results()
    slow = rc[0].apply_async(sleep_then, 1.0, "slow")
    with pytest.raises(RuntimeError, match="outstanding"):
        rc.purge_local_results(slow)
    with pytest.raises(RuntimeError, match="outstanding"):
        rc.purge_local_results("all")
    assert slow.get(TIMEOUT) == "slow"
    rc.purge_local_results("all")  # nothing outstanding: nothing to do, no error
    assert slow.get(0) == "slow"  # the AsyncResult keeps its value
    rc.purge_hub_results(slow)
    with pytest.raises(ty.error.TaskyardError, match="no such task"):
        rc.get_result(slow.msg_ids[0]).get(TIMEOUT)
    done = rc[0].apply_async(sleep_then, 0, "done")
    assert done.get(TIMEOUT) == "done"
    rc.purge_everything()
    assert rc.history == []
    with pytest.raises(ty.error.TaskyardError, match="no such task"):
        rc.get_result(done.msg_ids[0]).get(TIMEOUT)
