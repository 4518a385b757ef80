"""Packing several messages into one batch and back, and when held-back notes go (no sockets)."""

from __future__ import annotations

import struct
from typing import Any

import pytest
import zmq

from taskyard.controller.notes import HoldBack
from taskyard.protocol.batch import (
    BLOB_MAX,
    batch_or_single,
    cut,
    is_batch,
    pack_messages,
    per_peer,
    split_batch,
    unbatch,
)


def test_notes_come_back_in_order_small_frames_joined_big_ones_untouched() -> None:
    big = zmq.Frame(b"B" * BLOB_MAX)
    notes: list[list[Any]] = [
        [b"task-assign", b"engine", b"id-1"],
        [b"task-out", zmq.Frame(b"client"), b"", b"sig", big, b"{}"],
        [b"one"],
    ]
    frames = pack_messages(notes)
    assert is_batch(frames[0]) and not is_batch(zmq.Frame(b"task-out"))
    assert len(frames) == 4 and frames[3] is big, "one blob, and the big frame as it was"
    back = split_batch([zmq.Frame(f) if isinstance(f, bytes) else f for f in frames])
    assert back is not None
    assert [[bytes(f) for f in note] for note in back] == [[bytes(f) for f in note] for note in notes]
    assert back[1][4] is big


def test_empty_frames_survive_the_round_trip() -> None:
    notes: list[list[Any]] = [[b"", b"x", b""], [b""]]
    assert split_batch(pack_messages(notes)) == notes


def _layout(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}q", *values)


def test_the_layout_is_little_endian_whatever_the_host() -> None:
    frames = pack_messages([[b"ab", b"c"]])
    assert bytes(frames[1]) == struct.pack("<4q", 1, 2, 2, 1)


@pytest.mark.parametrize(
    "frames",
    [
        [b"batch"],
        [b"batch", b"", b""],
        [b"batch", b"\x01\x00", b""],  # not a whole int64
        [b"batch", _layout(0), b""],  # no notes
        [b"batch", _layout(2, 1), b"a"],  # counts missing
        [b"batch", _layout(1, 0), b""],  # an empty note
        [b"batch", _layout(1, 2, 1), b"a"],  # a frame length missing
        [b"batch", _layout(1, 1, 2), b"a"],  # longer than the blob
        [b"batch", _layout(1, 1, 1), b"ab"],  # blob bytes left over
        [b"batch", _layout(1, 1, -1), b""],  # a big frame that is not there
        [b"batch", _layout(1, 1, -2), b"", b"big"],  # big frames out of order
        [b"batch", _layout(1, 1, 1), b"a", b"extra"],  # a big frame nobody refers to
        [b"batch", _layout(-1, 1), b"a"],
    ],
)
def test_a_malformed_batch_is_refused_whole(frames: list[Any]) -> None:
    assert split_batch(frames) is None


def test_held_back_items_wait_for_company_only_while_tasks_are_in_flight() -> None:
    hold = HoldBack(delay=0.005, max_notes=3)
    assert hold.due_at is None and not hold.is_due(10.0, in_flight=False)
    assert not hold.hold(10.0, notes_held=1)
    assert hold.due_at == pytest.approx(10.005)
    assert not hold.is_due(10.004, in_flight=True)
    assert hold.is_due(10.004, in_flight=False), "nothing else in flight: nothing to wait for"
    assert not hold.hold(10.003, notes_held=2)
    assert hold.due_at == pytest.approx(10.005), "the deadline is the oldest item's"
    assert hold.is_due(10.005, in_flight=True)
    assert hold.hold(10.004, notes_held=3), "a full batch goes at once"
    hold.sent()
    assert hold.due_at is None and not hold.is_due(20.0, in_flight=False)
    hold.hold(20.0, notes_held=1)
    assert hold.due_at == pytest.approx(20.005)


def test_one_message_goes_as_it_is_several_as_a_batch() -> None:
    requests = [[b"<IDS|MSG>", b"sig", f"{i}".encode(), b"{}", b"{}", b"{}", b"f"] for i in range(3)]
    assert batch_or_single(requests[:1]) == requests[0]
    batch = batch_or_single(requests)
    assert is_batch(batch[0]) and split_batch(batch) == requests


def test_messages_for_a_router_go_one_per_peer_in_order() -> None:
    messages = [[b"a", b"1"], [b"b", b"2"], [b"a", b"3", b"x"], [b"a", b"4"]]
    out = per_peer(messages)
    assert [frames[0] for frames in out] == [b"a", b"b"]
    assert split_batch(out[0][1:]) == [[b"1"], [b"3", b"x"], [b"4"]]
    assert out[1] == [b"b", b"2"], "a peer with one message gets it as it is"


def test_a_burst_is_cut_into_nearly_equal_runs_in_order() -> None:
    assert cut(list(range(7)), 2) == [[0, 1, 2, 3], [4, 5, 6]]
    assert cut(list(range(3)), 5) == [[0], [1], [2]], "never an empty run"
    assert cut(list(range(4)), 0) == [[0, 1, 2, 3]], "no engines known: one run"


def test_unbatch_keeps_the_routing_frames_on_each_message() -> None:
    one = [b"<IDS|MSG>", b"sig", b"{}"]
    two = [b"<IDS|MSG>", b"sig2", b"{}", b"buf"]
    assert unbatch([b"client", *one], routing=1) == [[b"client", *one]], "not a batch: itself"
    batch = [b"task-in", b"client", *pack_messages([one, two])]
    assert unbatch(batch, routing=2) == [[b"task-in", b"client", *one], [b"task-in", b"client", *two]]
    assert unbatch(pack_messages([one, two])) == [one, two]
    assert unbatch([b"client", b"batch", b"\x01"], routing=1) is None, "malformed: refused whole"
