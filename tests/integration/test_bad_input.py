"""Garbage, wrong keys and replays against a real controller and engines (DESIGN §9)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import zmq

import taskyard as ty
from taskyard.protocol.batch import pack_messages
from taskyard.protocol.session import DELIM
from tests.helpers import pid_alive, wait_for
from tests.integration.garbage import (
    CLIENT_PORTS,
    ENGINE_PORTS,
    PEER_TYPE,
    apply_frames,
    garbage_messages,
    huge_message,
    raw_peer,
    read_info,
    recv_until,
    session_for,
    signed,
)


def _appender(path: Path) -> Any:
    """A function (pickled by value) that appends a line to ``path`` each time it runs."""
    target = str(path)

    def append() -> int:
        with open(target, "a") as f:
            f.write(f"{os.getpid()}\n")
        return os.getpid()

    return append


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _rejected(rc: ty.Client) -> int:
    stats = rc.hub_stats()
    return sum(stats["rejected"].values()) + sum(stats["counters"].values())


def _assert_alive(cluster: Any) -> None:
    for pid in [cluster.controller_pid, *cluster.extra_pids, *cluster.engine_pids]:
        assert pid_alive(pid), f"process {pid} died"


def _assert_working(rc: ty.Client) -> None:
    assert rc.ids == [0, 1]
    assert rc[:].apply_async(lambda x: x * 2, 21).get(10) == [42, 42]
    lv = rc.load_balanced_view()
    assert lv.map_async(lambda x: x + 1, range(6)).get(10) == list(range(1, 7))

    def noisy() -> str:
        print("still streaming")
        return "ok"

    ar = rc[1].apply_async(noisy)
    assert ar.get(10) == "ok"
    wait_for(lambda: ar.stdout == "still streaming\n", 5, "stdout through iopub")


class _Good:
    """Good requests sent between pieces of garbage; every one must come back right."""

    def __init__(self, rc: ty.Client) -> None:
        self.rc = rc
        self.lv = rc.load_balanced_view()
        self.pending: list[tuple[Any, int]] = []

    def send(self) -> None:
        i = len(self.pending)
        if i % 3 == 2:
            ar = self.lv.apply_async(lambda x: x * 3, i)
        else:
            ar = self.rc[i % 3].apply_async(lambda x: x * 3, i)
        self.pending.append((ar, i * 3))

    def check(self) -> None:
        got = [ar.get(20) for ar, _ in self.pending]
        assert got == [expected for _, expected in self.pending]


def test_garbage_to_every_port(cluster: Any, rc: ty.Client) -> None:
    client_info = read_info(cluster.cluster.client_file)
    engine_info = read_info(cluster.cluster.engine_file)
    session = session_for(client_info)
    rejected_before = _rejected(rc)
    good = _Good(rc)
    for info, ports in ((client_info, CLIENT_PORTS), (engine_info, ENGINE_PORTS)):
        for name, kind in ports.items():
            with raw_peer(info, name, PEER_TYPE[kind]) as sock:
                for frames in garbage_messages(session):
                    sock.send_multipart(frames)
                    good.send()
                sock.send_multipart(huge_message())
                good.send()
                if kind == "router":
                    idents = (rc.engine_uuid(0).encode(),) if name in ("mux", "control") and info is client_info else ()
                    sock.send_multipart(signed(session, "frobnicate_request", {}, {}, [], idents)[1])
                    good.send()
    good.check()
    _assert_alive(cluster)
    _assert_working(rc)
    assert _rejected(rc) > rejected_before + 10


def test_signed_unknown_types_get_an_error_reply(cluster: Any, rc: ty.Client) -> None:
    info = read_info(cluster.cluster.client_file)
    session = session_for(info)
    uuid0 = rc.engine_uuid(0).encode()
    for channel, idents in (("mux", (uuid0,)), ("control", (uuid0,)), ("task", ()), ("registration", ())):
        with raw_peer(info, channel, zmq.DEALER) as sock:
            msg_ids = set()
            for msg_type in ("frobnicate_request", "bogus", "apply_reply"):
                msg_id, frames = signed(session, msg_type, {"x": 1}, {}, [], idents)
                sock.send_multipart(frames)
                msg_ids.add(msg_id)
            replies = recv_until(sock, session, msg_ids, 10)
            assert set(replies) == msg_ids, f"{channel}: no reply to an unknown type"
            assert all(r.content["status"] == "error" for r in replies.values())
    # A task with an extra routing frame is answered, and through it.
    with raw_peer(info, "task", zmq.DEALER) as sock:
        msg_id, frames = apply_frames(session, lambda: "routed")
        sock.send_multipart([b"extra-hop", *frames])
        reply = recv_until(sock, session, {msg_id}, 10)[msg_id]
        assert reply.idents == [b"extra-hop"] and reply.content["status"] == "ok"
    # Nothing holds a scheduler slot: with hwm=1, two engines, a map still completes.
    assert rc.load_balanced_view().map_async(lambda x: -x, range(8)).get(10) == [-x for x in range(8)]
    _assert_alive(cluster)


@pytest.mark.parametrize("channel", ["mux", "control"])
def test_one_frame_through_the_router_router_queue(cluster: Any, rc: ty.Client, channel: str) -> None:
    info = read_info(cluster.cluster.client_file)
    engine_info = read_info(cluster.cluster.engine_file)
    session = session_for(info)
    uuids = [rc.engine_uuid(0).encode(), rc.engine_uuid(1).encode()]
    with raw_peer(info, channel, zmq.DEALER) as sock, raw_peer(engine_info, channel, zmq.DEALER) as engine_side:
        for round_ in range(4):
            # Replies must keep flowing while nothing else arrives behind the garbage.
            slow = rc[1].apply_async(time.sleep, 0.3)
            time.sleep(0.05)
            sock.send_multipart([uuids[round_ % 2]])
            assert slow.get(5) is None
            # A good request queued right behind the garbage, on the same connection.
            sent = set()
            sock.send_multipart([uuids[0]])
            for uuid in uuids:
                if channel == "mux":
                    msg_id, frames = apply_frames(session, lambda: 5, to=uuid.decode())
                else:
                    msg_id, frames = signed(session, "clear_request", {}, {}, [], (uuid,))
                sock.send_multipart(frames)
                sent.add(msg_id)
            sock.send_multipart([b"no-such-engine"])
            engine_side.send_multipart([b"no-such-client"])
            assert rc[0].apply_async(lambda: 1).get(5) == 1
            replies = recv_until(sock, session, sent, 10)
            assert set(replies) == sent, f"round {round_}: lost {sent - set(replies)}"
            assert all(r.content["status"] == "ok" for r in replies.values())
    _assert_alive(cluster)
    _assert_working(rc)


def test_wrong_key_runs_nothing(cluster: Any, rc: ty.Client, tmp_path: Path) -> None:
    info = read_info(cluster.cluster.client_file)
    bad_file = tmp_path / "wrong-key.json"
    bad_file.write_text(json.dumps({**info, "key": "0" * 64}))
    rejected_before = _rejected(rc)
    with pytest.raises(ty.error.TimeoutError):
        ty.Client(url_file=bad_file, timeout=1.5)
    marker = tmp_path / "ran"
    bad = session_for(info, key="0" * 64)
    with raw_peer(info, "mux", zmq.DEALER) as mux, raw_peer(info, "task", zmq.DEALER) as task:
        for engine_id in (0, 1):
            mux.send_multipart(apply_frames(bad, _appender(marker), to=rc.engine_uuid(engine_id))[1])
        task.send_multipart(apply_frames(bad, _appender(marker))[1])
        assert rc[:].apply_async(lambda: 1).get(10) == [1, 1]
        assert rc.load_balanced_view().map_async(lambda x: x, range(4)).get(10) == [0, 1, 2, 3]
        time.sleep(0.3)
        assert not mux.poll(0) and not task.poll(0)
    assert not marker.exists()
    assert _rejected(rc) > rejected_before


def test_replays_run_once(cluster: Any, rc: ty.Client, tmp_path: Path) -> None:
    info = read_info(cluster.cluster.client_file)
    session = session_for(info)
    uuid0, uuid1 = rc.engine_uuid(0), rc.engine_uuid(1)
    direct_log, task_log = tmp_path / "direct", tmp_path / "task"
    direct_id, direct = apply_frames(session, _appender(direct_log), to=uuid0)
    task_id, task = apply_frames(session, _appender(task_log))
    with raw_peer(info, "mux", zmq.DEALER) as mux, raw_peer(info, "task", zmq.DEALER) as lb:
        # The direct request: twice to its engine, once re-routed to the other one.
        mux.send_multipart(direct)
        mux.send_multipart(direct)
        mux.send_multipart([uuid1.encode(), *direct[1:]])
        # The task: twice to the scheduler, then straight at each engine.
        lb.send_multipart(task)
        lb.send_multipart(task)
        assert set(recv_until(lb, session, {task_id}, 10)) == {task_id}
        assert set(recv_until(mux, session, {direct_id}, 10)) == {direct_id}
        for uuid in (uuid0, uuid1):
            mux.send_multipart([uuid.encode(), *task])
        # The direct request through the scheduler must not run on another engine.
        lb.send_multipart(direct[1:])
        # Whatever the engines and the scheduler did with those, load balancing is not stalled.
        assert rc.load_balanced_view().map_async(lambda x: x * x, range(8)).get(10) == [x * x for x in range(8)]
        assert rc[:].apply_async(lambda: 0).get(10) == [0, 0]
        late = recv_until(mux, session, {direct_id, task_id}, 0.3)
        late.update(recv_until(lb, session, {direct_id, task_id}, 0.1))
        assert all(r.content["status"] != "ok" for r in late.values()), "a replay ran"
    assert len(_lines(direct_log)) == 1
    assert len(_lines(task_log)) == 1
    _assert_alive(cluster)


def test_batches_of_requests_are_checked_message_by_message(cluster: Any, rc: ty.Client, tmp_path: Path) -> None:
    info = read_info(cluster.cluster.client_file)
    session = session_for(info)
    marker = tmp_path / "ran"
    first_id, first = apply_frames(session, _appender(marker))
    second_id, second = apply_frames(session, _appender(marker))
    tampered = [*first[:6], b"a tampered pickle", *first[7:]]  # changed after signing
    _, wrong_key = apply_frames(session_for(info, key="0" * 64), _appender(marker))
    with raw_peer(info, "task", zmq.DEALER) as sock:
        # Malformed envelopes are dropped whole, and nothing behind them is lost.
        sock.send_multipart([b"batch"])
        sock.send_multipart([b"batch", b"\x01\x00\x00", b""])
        sock.send_multipart([b"batch", *pack_messages([first])[1:2], b"short"])
        sock.send_multipart(pack_messages([first, tampered, wrong_key, first, [b"garbage"], second]))
        replies = recv_until(sock, session, {first_id, second_id}, 10)
        assert set(replies) == {first_id, second_id}
        assert all(r.content["status"] == "ok" for r in replies.values())
        late = recv_until(sock, session, {first_id, second_id}, 0.3)
        assert not late, "the replay in the batch ran again"
    assert len(_lines(marker)) == 2, "exactly the two good requests ran, once each"
    _assert_alive(cluster)
    _assert_working(rc)


def _monitor_port(cluster: Any) -> int:
    """The hub's monitor feed: the one port the controller listens on that no connection file names."""
    files = (cluster.cluster.client_file, cluster.cluster.engine_file)
    named = {v for f in files for v in read_info(f).values() if isinstance(v, int)}
    listening = {
        c.laddr.port
        for c in psutil.Process(cluster.controller_pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    }
    (port,) = listening - named
    return int(port)


def test_forged_notes_on_the_monitor_feed_are_refused(cluster: Any, rc: ty.Client) -> None:
    info = read_info(cluster.cluster.client_file)
    session = session_for(info)
    msg = session.msg("apply_request", {}, metadata={})
    headers = session.serialize(msg)[2:6]
    note = [b"task-sent", rc.engine_uuid(0).encode(), b"client-x", DELIM, b"", *headers]
    batch = pack_messages([note])
    forged = [
        [b"notes", b"0" * 64, *batch],  # a wrong MAC over the batch
        [b"notes", session_for(info, key="0" * 64).sign_frames(batch[1:3]), *batch],  # the wrong key
        batch,  # no MAC at all: the unsigned note is checked on its own
    ]
    before = rc.hub_stats()["counters"].get("bad-monitored", 0)
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    try:
        pub.connect(f"tcp://127.0.0.1:{_monitor_port(cluster)}")
        time.sleep(0.3)  # a PUB drops what it sends before the subscription reaches it
        for frames in forged:
            pub.send_multipart(frames)
        wait_for(lambda: rc.hub_stats()["counters"].get("bad-monitored", 0) >= before + 3, 10, "all three refused")
    finally:
        pub.close(0)
        ctx.term()
    assert rc.result_status([msg.msg_id])["unknown"] == [msg.msg_id]
    _assert_alive(cluster)
    _assert_working(rc)
