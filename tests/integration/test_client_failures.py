"""A client that never hangs: every pending result ends, with a typed error if need be.

Replies that cannot be decoded, a closed client, a killed controller, a dead IO
thread, a buffer changed after sending; and ipyparallel's ``-1`` timeouts.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import numpy as np
import pytest
import zmq

import taskyard as ty
from taskyard.error import BufferChanged, ClientClosed, ControllerLost, ResultDecodeError
from tests.helpers import wait_for


@ty.interactive  # pickled by value: the engines cannot import this module
def _engine_only_class_instance() -> Any:
    """An instance of a class whose module exists on the engine only."""
    import sys
    import types

    module = types.ModuleType("taskyard_engine_only_module")
    exec("class Thing:\n    pass\n", module.__dict__)  # noqa: S102
    module.Thing.__module__ = module.__name__
    sys.modules[module.__name__] = module
    return module.Thing()


@ty.interactive
def _fails_to_load() -> Any:
    class Bad:
        def __reduce__(self) -> tuple[Any, ...]:
            return (int, ("not a number",))

    return Bad()


# -- replies that cannot be decoded --------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (_engine_only_class_instance, "No module named 'taskyard_engine_only_module'"),
        (_fails_to_load, "invalid literal for int()"),
    ],
    ids=["class-not-importable", "reduce-fails-on-load"],
)
def test_an_undecodable_result_fails_at_once_direct_load_balanced_and_from_the_hub(
    cluster: Any, rc: ty.Client, make: Any, cause: str
) -> None:
    for ar in (rc[0].apply_async(make), rc.load_balanced_view().apply_async(make)):
        started = time.monotonic()
        with pytest.raises(ResultDecodeError, match="cannot be decoded") as info:
            ar.get(10)
        assert time.monotonic() - started < 5
        assert cause in str(info.value) and ar.msg_ids[0] in str(info.value)
        assert ar.done() and not ar.successful()
        assert ar.metadata["status"] == "ok"  # it ran; only decoding failed here
        other = cluster.client()
        with pytest.raises(ResultDecodeError, match=cause.replace("(", r"\(").replace(")", r"\)")):
            other.get_result(ar.msg_ids[0]).get(10)
    assert rc[0].apply_async(lambda: "still fine").get(10) == "still fine"
    assert not rc.outstanding


# -- close ---------------------------------------------------------------------------------------


def test_close_fails_pending_results_at_once(cluster: Any) -> None:
    rc = cluster.client()
    rc.wait_for_engines(2, timeout=10, interactive=False)
    pending = [rc[0].apply_async(time.sleep, 30), rc.load_balanced_view().apply_async(time.sleep, 30)]
    waiter_got: list[BaseException] = []

    def wait_in_get() -> None:
        try:
            pending[0].get()
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            waiter_got.append(exc)

    waiter = threading.Thread(target=wait_in_get)
    waiter.start()
    started = time.monotonic()
    rc.close()
    waiter.join(10)
    assert not waiter.is_alive() and isinstance(waiter_got[0], ClientClosed)
    for ar in pending:
        with pytest.raises(ClientClosed, match="closed"):
            ar.get(1)
    assert time.monotonic() - started < 6
    with pytest.raises(ClientClosed):
        rc[0].apply_async(time.sleep, 0)


# -- a controller that dies ----------------------------------------------------------------------


def test_a_killed_controller_fails_waiters_within_the_timeout(cluster: Any, rc: ty.Client) -> None:
    rc.controller_timeout = 3
    rc.probe_period = 0.5
    direct = rc[0].apply_async(time.sleep, 60)
    balanced = rc.load_balanced_view().apply_async(time.sleep, 60)
    assert rc.queue_status()  # the hub answers
    returned: list[Any] = []
    waiter = threading.Thread(target=lambda: returned.append(rc.wait()))  # rc.wait() with no timeout
    waiter.start()
    os.kill(cluster.controller_pid, signal.SIGKILL)
    started = time.monotonic()
    for ar in (direct, balanced):
        with pytest.raises(ControllerLost, match="controller_timeout"):
            ar.get()  # no timeout: it must end by itself
    assert time.monotonic() - started < 3 + 2
    waiter.join(5)
    assert returned == [True]
    with pytest.raises(ControllerLost):
        rc.queue_status()


def test_long_tasks_on_a_healthy_controller_outlive_the_timeout(rc: ty.Client) -> None:
    rc.controller_timeout = 2.5
    rc.probe_period = 0.3
    ar = rc.load_balanced_view().apply_async(time.sleep, 5)
    direct = rc[1].apply_async(time.sleep, 5)  # twice the timeout, in silence but for the probes' answers
    assert ar.get(20) is None and direct.get(20) is None


def test_controller_timeout_must_be_positive(rc: ty.Client) -> None:
    with pytest.raises(ValueError, match="controller_timeout"):
        rc.controller_timeout = 0
    with pytest.raises(ValueError, match="probe_period"):
        rc.probe_period = -1


# -- a dead IO thread ----------------------------------------------------------------------------


def test_a_socket_broken_under_the_io_thread_fails_every_waiter(cluster: Any) -> None:
    rc = cluster.client()
    rc.wait_for_engines(2, timeout=10, interactive=False)
    pending = rc[0].apply_async(time.sleep, 30)
    wait_for(lambda: rc.queue_status()[0]["queue"] == 1, 10, "the task to reach its engine")
    flush = rc._io._flush_outbox

    def break_the_socket_then_flush(sockets: dict[str, zmq.Socket[Any]]) -> None:
        sockets["mux"].close(linger=0)  # on the IO thread itself: a socket gone under it
        flush(sockets)

    rc._io._flush_outbox = break_the_socket_then_flush  # type: ignore[method-assign]
    second = rc[1].apply_async(time.sleep, 0)
    for ar in (pending, second):
        with pytest.raises(ClientClosed, match="IO thread died"):
            ar.get(10)
    assert not rc._io.thread.is_alive()
    with pytest.raises(ClientClosed):
        rc[1].apply_async(time.sleep, 0)


def test_a_bug_in_reply_handling_fails_every_waiter(cluster: Any) -> None:
    rc = cluster.client()
    rc.wait_for_engines(2, timeout=10, interactive=False)
    slow = rc[0].apply_async(time.sleep, 30)
    quick = rc[1].apply_async(time.sleep, 0.2)

    def broken(*_: Any) -> None:
        raise RuntimeError("a bug in the IO thread")

    rc._io._receive = broken  # type: ignore[method-assign]
    for ar in (quick, slow):
        with pytest.raises(ClientClosed, match="RuntimeError: a bug in the IO thread"):
            ar.get(10)


# -- ipyparallel's -1 --------------------------------------------------------------------------


def test_minus_one_waits_forever(rc: ty.Client) -> None:
    ar = rc[0].apply_async(time.sleep, 0.5)
    assert ar.wait(-1) is True
    assert rc[0].apply_async(lambda: 7).get(-1) == 7
    rc[1].apply_async(time.sleep, 0.5)
    started = time.monotonic()
    assert rc.wait(timeout=-1) is True
    assert time.monotonic() - started > 0.3 and not rc.outstanding


# -- buffers changed after sending ---------------------------------------------------------------


@ty.interactive
def _total(a: np.ndarray) -> float:
    return float(a.sum())


@pytest.mark.parametrize("channel", ["direct", "load-balanced", "push"])
def test_an_array_changed_right_after_sending_never_makes_a_reply_vanish(rc: ty.Client, channel: str) -> None:
    view = rc[0] if channel == "direct" else rc.load_balanced_view()
    outcomes = []
    for _ in range(3):
        array = np.zeros(8 * 1024 * 1024)  # 64 MB
        if channel == "push":
            ar = rc[0].push({"a": array}, block=False)
        else:
            ar = view.apply_async(_total, array)
        array += 1.0  # at once, while the zero-copy send is under way
        try:
            outcomes.append(ar.get(30))
        except BufferChanged as exc:
            assert "changed after it was signed" in str(exc) and "wait_for_send" in str(exc)
            outcomes.append("changed")
    assert all(o in (None, 0.0, float(8 * 1024 * 1024), "changed") for o in outcomes)
    assert rc[0].apply_async(lambda: 1).get(10) == 1


def test_track_tells_when_an_array_may_be_changed(rc: ty.Client) -> None:
    for view in (rc[0], rc.load_balanced_view()):
        view.set_flags(track=True)
        array = np.zeros(8 * 1024 * 1024)
        ar = view.apply_async(_total, array)
        ar.wait_for_send(10)
        assert ar.sent
        array += 1.0  # safe now
        assert ar.get(30) == 0.0
        with view.temp_flags(track=False):
            untracked = view.apply_async(_total, np.ones(10))
        assert untracked.get(10) == 10.0 and untracked.sent
    for targets in (None, 1):
        ar = rc.apply(_total, (np.ones(8 * 1024 * 1024),), targets=targets, track=True)
        ar.wait_for_send(10)
        assert ar.sent and ar.get(30) in (float(8 * 1024 * 1024), [float(8 * 1024 * 1024)])


# -- a reply too large to read ---------------------------------------------------------------------


@ty.interactive
def _print_a_lot() -> str:
    print("x" * 6_000_000)  # one print: more output than a reply's header frame may carry
    return "done"


def test_a_reply_too_large_to_read_still_ends_its_request(rc: ty.Client) -> None:
    ar = rc[0].apply_async(_print_a_lot)
    try:
        value = ar.get(30)  # the engine may cap the output; then the reply is an ordinary one
    except ResultDecodeError as exc:
        assert "over the" in str(exc) and "byte limit" in str(exc)
    else:
        assert value == "done"
    assert rc[0].apply_async(lambda: 1).get(10) == 1


def test_with_the_pure_queue_the_engine_answers_a_changed_buffer(make_cluster: Any) -> None:
    cluster = make_cluster(1, controller_args=("--scheme=pure",))
    rc = cluster.client()
    rc.wait_for_engines(1, timeout=10, interactive=False)
    for _ in range(3):
        array = np.zeros(8 * 1024 * 1024)
        ar = rc.load_balanced_view().apply_async(_total, array)
        array += 1.0
        try:
            assert ar.get(30) in (0.0, float(8 * 1024 * 1024))
        except BufferChanged:
            pass
    assert rc.load_balanced_view().apply_async(lambda: 2).get(10) == 2
