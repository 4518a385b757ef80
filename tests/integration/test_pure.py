"""The pure scheme: load-balanced tasks through a C-level queue, no Python scheduler."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest
import zmq

import taskyard as ty
from taskyard.protocol.batch import is_batch, pack_messages, split_batch
from tests.helpers import pid_alive, wait_for
from tests.integration.garbage import apply_frames, raw_peer, read_info, recv_until, session_for

TIMEOUT = 20


@pytest.fixture
def pure(make_cluster):  # type: ignore[no-untyped-def]
    return make_cluster(2, controller_args=("--scheme=pure",))


@pytest.fixture
def prc(pure) -> ty.Client:  # type: ignore[no-untyped-def]
    client = pure.client()
    client.wait_for_engines(2, timeout=10, interactive=False)
    return client


def test_no_scheduler_process_and_no_features(pure, prc: ty.Client) -> None:  # type: ignore[no-untyped-def]
    assert pure.extra_pids == []  # no forked scheduler behind the controller
    assert prc.task_scheme == "pure"
    assert prc.features == ["engine-batch"]  # no task flags; batches go whole to one engine


def test_apply_and_map(prc: ty.Client) -> None:
    lv = prc.load_balanced_view()
    assert lv.apply_sync(lambda x: x * 2, 21) == 42
    assert lv.map_sync(lambda x: x + 1, range(50)) == list(range(1, 51))
    ars = [lv.apply_async(os.getpid) for _ in range(20)]
    assert len({ar.get(TIMEOUT) for ar in ars}) == 2
    assert {ar.metadata.engine_id for ar in ars} == {0, 1}
    # A burst is sent in batches, one per engine, so the engines share it. However the IO
    # thread happens to cut it into flushes, each flush of an odd size gives one engine one
    # more: with 8 requests, at most two such flushes, so at worst 5 and 3.
    burst = [lv.apply_async(time.sleep, 0.1) for _ in range(8)]
    for ar in burst:
        ar.get(TIMEOUT)
    counts = Counter(ar.metadata.engine_id for ar in burst)
    assert set(counts) == {0, 1} and min(counts.values()) >= 3, counts


@pytest.mark.parametrize(
    ("flags", "word"),
    [
        ({"after": ["x"]}, "after"),
        ({"follow": ["x"]}, "follow"),
        ({"timeout": 5}, "timeout"),
        ({"retries": 1}, "retries"),
        ({"targets": [0]}, "targets"),
    ],
)
def test_unsupported_flags_are_refused_before_sending(prc: ty.Client, flags: dict[str, object], word: str) -> None:
    lv = prc.load_balanced_view()
    before = set(prc.outstanding)
    with pytest.raises(ty.error.TaskyardError, match=f"does not support {word}"), lv.temp_flags(**flags):
        lv.apply_async(lambda: 1)
    assert set(prc.outstanding) == before


def test_functional_dependencies_are_refused(prc: ty.Client) -> None:
    @ty.require("json")
    def f() -> int:
        return 1

    with pytest.raises(ty.error.TaskyardError, match="functional"):
        prc.load_balanced_view().apply_async(f)


def test_the_hub_records_pure_tasks(pure, prc: ty.Client) -> None:  # type: ignore[no-untyped-def]
    ar = prc.load_balanced_view().apply_async(lambda: "recorded")
    assert ar.get(TIMEOUT) == "recorded"
    other = pure.client()
    assert other.get_result(ar.msg_ids[0]).get(TIMEOUT) == "recorded"
    # A burst travels in batches: the hub records each task in them all the same.
    burst = [prc.load_balanced_view().apply_async(lambda i: i * i, i) for i in range(40)]
    assert [b.get(TIMEOUT) for b in burst] == [i * i for i in range(40)]
    assert [other.get_result(b.msg_ids[0]).get(TIMEOUT) for b in burst[::7]] == [i * i for i in range(0, 40, 7)]
    status = wait_for(lambda: (s := prc.queue_status()) and s[0]["tasks"] + s[1]["tasks"] == 0 and s, 10, "idle")
    assert status["unassigned"] == 0


def test_work_goes_on_when_an_engine_dies(pure, prc: ty.Client) -> None:  # type: ignore[no-untyped-def]
    lv = prc.load_balanced_view()
    pids = dict(zip(prc.ids, prc[:].apply_sync(os.getpid), strict=True))
    running = [lv.apply_async(time.sleep, 3) for _ in range(2)]
    wait_for(lambda: prc.queue_status()[0]["tasks"] == 1 and prc.queue_status()[1]["tasks"] == 1, 10, "both started")
    os.kill(pids[0], signal.SIGKILL)
    wait_for(lambda: 0 not in prc.ids, 5, "engine 0 to be unregistered")
    # The task that was running on the dead engine fails; the other one finishes.
    outcomes = []
    for ar in running:
        try:
            outcomes.append(ar.get(TIMEOUT))
        except ty.error.EngineError:
            outcomes.append("EngineError")
    assert sorted(outcomes, key=str) == ["EngineError", None]
    # New tasks all go to the engine that is left.
    results = [lv.apply_async(os.getpid) for _ in range(10)]
    assert {ar.get(TIMEOUT) for ar in results} == {pids[1]}


def test_batches_through_the_queue_are_checked_message_by_message(pure, prc: ty.Client) -> None:  # type: ignore[no-untyped-def]
    info = read_info(pure.cluster.client_file)
    session = session_for(info)
    good_id, good = apply_frames(session, lambda: "good")
    other_id, other = apply_frames(session, lambda: "other")
    tampered = [*good[:6], b"a tampered pickle", *good[7:]]
    with raw_peer(info, "task", zmq.DEALER) as sock:
        for _ in range(2):  # one to each engine, whichever the queue picks first
            sock.send_multipart([b"batch", b"\x01\x00\x00", b""])
        sock.send_multipart(pack_messages([tampered, good, [b"garbage"], good, other]))
        replies = recv_until(sock, session, {good_id, other_id}, TIMEOUT)
        assert {k: r.content["status"] for k, r in replies.items()} == {good_id: "ok", other_id: "ok"}
        assert not recv_until(sock, session, {good_id}, 0.3), "the replayed request ran twice"
    assert prc.load_balanced_view().map_sync(lambda x: -x, range(10)) == [-x for x in range(10)]
    for pid in [pure.controller_pid, *pure.engine_pids]:
        assert pid_alive(pid)


def test_a_slow_tasks_reply_is_not_held_for_the_rest_of_its_batch(pure, prc: ty.Client) -> None:  # type: ignore[no-untyped-def]
    info = read_info(pure.cluster.client_file)
    session = session_for(info)
    first_id, first = apply_frames(session, time.sleep, (0.6,))
    second_id, second = apply_frames(session, time.sleep, (0.6,))
    with raw_peer(info, "task", zmq.DEALER) as sock:
        sock.send_multipart(pack_messages([first, second]))  # one engine runs both, in turn
        arrived: dict[str, float] = {}
        deadline = time.monotonic() + TIMEOUT
        while len(arrived) < 2 and sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            frames = sock.recv_multipart()
            for frames_one in split_batch(frames) or [] if is_batch(frames[0]) else [frames]:
                arrived.setdefault(session.deserialize(frames_one).parent_id, time.monotonic())
    assert set(arrived) == {first_id, second_id}
    assert arrived[second_id] - arrived[first_id] > 0.4, "the first reply waited for the second task"
