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


def test_module_level_joblib_backend_connects_at_parallel(rc: ty.Client, tmp_path: Any) -> None:
    joblib = pytest.importorskip("joblib")
    from taskyard.client.joblib_backend import register_joblib_backend

    register_joblib_backend(name="taskyard-eager", url_file=rc.url_file, timeout=10)
    parallel = joblib.Parallel(backend="taskyard-eager")
    assert parallel._backend._view.client.ids == rc.ids  # connected before the first call
    assert parallel(joblib.delayed(square)(i) for i in range(3)) == [0, 1, 4]
    register_joblib_backend(name="taskyard-nowhere", url_file=tmp_path / "missing.json", timeout=0.2)
    with pytest.raises(Exception, match="missing.json"):
        joblib.Parallel(backend="taskyard-nowhere")  # no cluster: said at once, not at the first task


def test_patching_client_new_is_undone_cleanly(rc: ty.Client) -> None:
    from unittest import mock

    with mock.patch.object(ty.Client, "__new__", lambda *args, **kwargs: rc):
        assert ty.Client() is rc  # ipyparallel's joblib test does this
    assert not rc._closed
    other = ty.Client(url_file=rc.url_file, timeout=10)
    try:
        assert other is not rc and other.ids == rc.ids
    finally:
        other.close()


# -- map / imap -----------------------------------------------------------


def test_map_return_exceptions_on_both_views(rc: ty.Client) -> None:
    for view in (rc.load_balanced_view(), rc[:]):
        out = view.map(fail_on_three, range(6), block=True, return_exceptions=True)
        assert len(out) == 6 and out[:3] == [0, 1, 2]  # a failed chunk's items are its error
        assert isinstance(out[3], RemoteError)
        with pytest.raises(RemoteError):
            view.map(fail_on_three, range(6), block=True)
        ar = view.map_async(fail_on_three, range(6))
        assert isinstance(ar.get(timeout=TIMEOUT, return_exceptions=True)[3], RemoteError)


def test_imap_is_lazy_on_endless_input(rc: ty.Client) -> None:
    import itertools

    lv = rc.load_balanced_view()
    it = lv.imap(square, itertools.count())
    assert list(itertools.islice(it, 10)) == [i * i for i in range(10)]
    it.cancel()
    assert len(list(it)) < 25  # only what was already sent: the input is no longer read


def test_imap_max_outstanding_bounds_tasks_in_flight(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    sent: list[AsyncResult] = []
    most = 0
    real_apply = lv._really_apply

    def counting_apply(*args: Any, **kwargs: Any) -> Any:
        nonlocal most
        ar = real_apply(*args, **kwargs)
        sent.append(ar)
        most = max(most, sum(1 for a in sent if not a.done()))
        return ar

    lv._really_apply = counting_apply  # type: ignore[method-assign]
    out = list(lv.imap(sleep_then, [0.05] * 12, range(12), max_outstanding=2))
    assert out == list(range(12))
    assert len(sent) == 12
    assert 1 <= most <= 2


def test_imap_unordered_yields_fast_results_first(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    out = list(lv.imap(sleep_then, [1.0, 0.0], ["slow", "fast"], ordered=False, max_outstanding=0))
    assert out == ["fast", "slow"]
    assert list(lv.imap(sleep_then, [0.5, 0.0], ["slow", "fast"], max_outstanding=0)) == ["slow", "fast"]


def test_imap_return_exceptions(rc: ty.Client) -> None:
    out = list(rc.load_balanced_view().imap(fail_on_three, range(5), return_exceptions=True))
    assert out[:3] == [0, 1, 2] and out[4] == 4
    assert isinstance(out[3], RemoteError)


def test_executor_shutdown_sends_the_rest_of_a_lazy_map(rc: ty.Client) -> None:
    view = rc.load_balanced_view()
    with view.executor as ex:
        slow = ex.submit(sleep_then, 0.3, "late")
        results = ex.map(square, range(10))
    assert slow.done()
    assert len(view.history) == 11  # every item was sent before shutdown returned
    assert list(results) == [i * i for i in range(10)]


# -- data movement --------------------------------------------------------


def test_scatter_gather_blocks_round_robin_and_flatten(rc: ty.Client) -> None:
    dv = rc[:]
    n = len(dv)
    dv.scatter("part", list(range(7)), block=True)
    assert dv.gather("part", block=True) == list(range(7))
    dv.scatter("part", list(range(7)), dist="r", block=True)
    assert dv.pull("part", block=True) == [list(range(7))[i::n] for i in range(n)]
    assert dv.gather("part", dist="r", block=True) == list(range(7))
    dv.scatter("one", list(range(n)), flatten=True, block=True)
    assert dv.pull("one", block=True) == list(range(n))
    with pytest.raises(ValueError):
        dv.scatter("x", [1, 2], dist="z")


def test_get_update_aliases_and_pull_of_missing_name(rc: ty.Client) -> None:
    dv = rc[:]
    dv.block = True
    dv.update({"a": 5, "b": 6})
    assert dv.get("a") == [5] * len(dv)
    assert dv.get(["a", "b"]) == [[5, 6]] * len(dv)
    with pytest.raises(RemoteError) as info:
        dv.pull("no_such_name")
    assert "NameError" in str(info.value)


# -- flags and magics -----------------------------------------------------


def test_set_flags_returns_the_view_and_flags_come_from_the_catalog(rc: ty.Client) -> None:
    from taskyard.protocol.catalog import TASK_FLAGS

    lv = rc.load_balanced_view()
    assert lv._flag_names == ("block", "track", *TASK_FLAGS)
    assert lv.set_flags(block=True, retries=1) is lv
    assert lv.block and lv.retries == 1
    assert lv.set_flags(block=False).map(square, range(3)).get(timeout=TIMEOUT) == [0, 1, 4]
    dv = rc[:]
    assert dv.set_flags(block=True) is dv
    with pytest.raises(KeyError):
        dv.set_flags(retries=1)


def test_direct_view_activate_outside_ipython_warns(rc: ty.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    IPython = pytest.importorskip("IPython")
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    with pytest.warns(UserWarning, match="IPython"):
        assert rc[:].activate() is None


def test_direct_view_activate_registers_suffixed_magics(rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:
    IPython = pytest.importorskip("IPython")
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython() or IPython.get_ipython()
    try:
        even = rc[::2]
        even.activate("_even")
        shell.run_line_magic("px_even", "b = 'even'")
        assert rc[0]["b"] == "even"
        with pytest.raises(RemoteError):
            rc[1].pull("b", block=True)
    finally:
        shell._taskyard_magics = None


# -- serialization and imports ---------------------------------------------


def test_use_cloudpickle_and_pickle_are_honest_no_ops_and_dill_says_why(rc: ty.Client) -> None:
    dv = rc[:]
    assert dv.use_cloudpickle().get(timeout=TIMEOUT) == [None] * len(dv)
    dv.block = True
    assert dv.use_pickle() == [None] * len(dv)
    with pytest.raises(NotImplementedError, match="cloudpickle"):
        dv.use_dill()
    offset = 3
    assert dv.apply(lambda x: x + offset, 1) == [4] * len(dv)  # closures still travel


def test_sync_imports_imports_here_and_on_the_engines(rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:
    dv = rc[:]
    dv.execute("import sys; sys.modules.pop('colorsys', None); globals().pop('colorsys', None)", block=True)
    with dv.sync_imports():
        import colorsys
        from fractions import Fraction
    assert colorsys.__name__ == "colorsys" and Fraction(1, 2) == 0.5
    out = capsys.readouterr().out
    assert "importing colorsys on engine(s)" in out
    assert "importing Fraction from fractions on engine(s)" in out
    dv.execute("c = colorsys.__name__; f = str(Fraction(1, 3))", block=True)
    assert dv.pull("c", block=True) == ["colorsys"] * len(dv)
    assert dv.pull("f", block=True) == ["1/3"] * len(dv)
    with dv.sync_imports(quiet=True):
        import textwrap  # noqa: F401
    assert capsys.readouterr().out == ""
    import builtins

    real_import = builtins.__import__
    with pytest.raises(ImportError), dv.sync_imports(quiet=True):
        import no_such_module_anywhere  # noqa: F401
    assert builtins.__import__ is real_import  # the hook is gone after an error too


def test_importer_is_sync_imports_as_a_property(rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:
    dv = rc[:]
    with dv.importer:
        import keyword  # noqa: F401
    assert "importing keyword on engine(s)" in capsys.readouterr().out
    assert dv.apply_sync(ty.interactive(lambda: keyword.iskeyword("for"))) == [True, True]  # noqa: F821


# -- the engine's namespace -----------------------------------------------


def test_references_resolve_inside_containers_as_expressions_and_as_the_function(rc: ty.Client) -> None:
    dv = rc[:]
    dv.block = True
    dv["a"] = 128
    dv["g"] = [7, 8]
    assert dv.apply(lambda x: x, [ty.Reference("a")]) == [[128], [128]]
    assert dv.apply(lambda x: x, {"k": (ty.Reference("a"),)}) == [{"k": (128,)}] * 2
    assert dv.apply(lambda x: x, ty.Reference("g[1] + 1")) == [9, 9]
    dv.execute("triple = lambda x: 3 * x")
    assert dv.apply(ty.Reference("triple"), 5) == [15, 15]
    assert dv.apply(ty.Reference("len"), "abc") == [3, 3]  # builtins too
    with pytest.raises(RemoteError, match="NameError"):
        dv.apply(lambda x: x, ty.Reference("nowhere"))


def test_push_and_pull_take_dotted_names(rc: ty.Client) -> None:
    dv = rc[:]
    dv.execute("class A: pass\nobj = A()\nobj.b = 1", block=True)
    dv["obj.b"] = 5
    assert dv["obj.b"] == [5, 5]
    assert dv.apply_sync(ty.interactive(lambda: obj.b)) == [5, 5]  # noqa: F821
    with pytest.raises(TypeError, match="names"):
        dv.push({3: "x"})


def test_a_pushed_interactive_function_sees_the_engines_names(rc: ty.Client) -> None:
    @ty.interactive
    def get_zz() -> Any:
        return zz  # noqa: F821 - defined on the engine, later

    view = rc[1]
    view.block = True
    view["f"] = get_zz
    with pytest.raises(RemoteError, match="NameError"):
        view.execute("b = f()")
    view.execute("zz = 5\nb = f()")
    assert view["b"] == 5


def test_gather_of_scattered_arrays_is_one_array(rc: ty.Client) -> None:
    import numpy as np

    dv = rc[:]
    dv.scatter("arr", np.arange(9), block=True)
    joined = dv.gather("arr", block=True)
    assert isinstance(joined, np.ndarray) and joined.tolist() == list(range(9))
    assert dv.gather("arr", dist="r", block=True).tolist() == [0, 5, 1, 6, 2, 7, 3, 8, 4]
    pending = dv.gather("arr", block=False)
    assert isinstance(pending, ty.AsyncMapResult)  # as ipyparallel's
    assert pending.get(TIMEOUT).tolist() == list(range(9)) and list(pending) == list(range(9))


def test_apply_passes_a_keyword_named_f_and_blocking_execute_returns_its_result(rc: ty.Client) -> None:
    view = rc[0]
    assert view.apply_sync(lambda f: f * 2, f=4) == 8
    ar = view.execute("5", silent=False, block=True)
    assert isinstance(ar, AsyncResult) and ar.done()  # as ipyparallel's: the AsyncResult, finished
    assert ar.execute_result["data"]["text/plain"] == "5"
    assert str(ar.get()) == f"<ExecuteReply[{ar.get().execution_count}]: 5>"
    with pytest.raises(RemoteError, match="ZeroDivisionError"):
        view.execute("1 / 0", block=True)


def test_push_tracked_follows_the_send(rc: ty.Client) -> None:
    view = rc[0]
    ar = view.push({"big": "x" * (1 << 20)}, block=False, track=True)
    ar.wait_for_send(TIMEOUT)
    assert ar.sent
    ar.get(TIMEOUT)
    assert view.apply_sync(ty.interactive(lambda: len(big))) == 1 << 20  # noqa: F821


# -- AsyncResult ----------------------------------------------------------


@ty.interactive
def say_then_sleep(seconds: float) -> int:
    import time

    print("said")
    time.sleep(seconds)
    return 1


def test_split_a_direct_result_per_engine_and_join_it_back(rc: ty.Client) -> None:
    dv = rc[:]
    ar = dv.apply_async(sleep_then, 0.0, "x")
    parts = ar.split()
    assert len(parts) == len(dv)
    assert [p.engine_id for p in concurrent.futures.as_completed(parts, timeout=TIMEOUT)]
    assert [p.get(timeout=TIMEOUT) for p in parts] == ["x"] * len(dv)
    assert [p.engine_id for p in parts] == rc.ids
    joined = AsyncResult.join(*parts)
    assert joined.get(timeout=TIMEOUT) == ["x"] * len(dv)
    single = rc[0].apply_async(square, 3)
    assert single.split() == (single,)


def test_split_a_map_per_chunk(rc: ty.Client) -> None:
    amr = rc.load_balanced_view().map_async(square, range(6), chunksize=2)
    parts = amr.split()
    assert all(type(p) is AsyncResult for p in parts)  # as ipyparallel's: one chunk each, in a list
    assert [p.get(timeout=TIMEOUT) for p in parts] == [[[0, 1]], [[4, 9]], [[16, 25]]]


def test_data_and_wait_for_output(rc: ty.Client) -> None:
    ar = rc[:].apply_async(say_then_sleep, 0.2)
    assert ar.wait_for_output(timeout=0) is False
    assert ar.wait_for_output(timeout=TIMEOUT) is True
    assert ar.stdout == ["said\n"] * len(rc.ids)
    assert ar.data == [{}] * len(rc.ids)  # nothing published with data_pub


def test_get_dict_needs_one_request_per_engine_and_timings_wait(rc: ty.Client) -> None:
    import builtins

    lv = rc.load_balanced_view()
    amr = lv.map_async(square, range(len(rc.ids) * 2))
    with pytest.raises(ValueError):
        amr.get_dict(timeout=TIMEOUT)
    assert rc[:].apply_async(square, 2).get_dict(timeout=TIMEOUT) == dict.fromkeys(rc.ids, 4)
    ar = lv.apply_async(sleep_then, 0.5)
    with pytest.raises(builtins.TimeoutError):
        _ = ar.wall_time
    ar.get(timeout=TIMEOUT)
    assert ar.wall_time > 0.4


def test_len_and_progress_of_a_map_count_items(rc: ty.Client) -> None:
    dv = rc[:]
    amr = dv.map_async(sleep_then, [0.2] * 2 * len(dv))
    assert len(amr) == 2 * len(dv)
    assert amr.progress == 0
    amr.wait(TIMEOUT)
    assert amr.progress == len(amr)
