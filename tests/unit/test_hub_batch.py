"""Packing the task scheduler's notes to the hub into few frames, and back (no sockets)."""

from __future__ import annotations

from array import array
from typing import Any

import pytest
import zmq

from taskyard.controller.notes import BLOB_MAX, HoldBack, is_batch, pack_notes, split_notes


def _pack(notes: list[list[Any]]) -> list[Any]:
    return pack_notes([frame for note in notes for frame in note], [len(note) for note in notes])


def test_notes_come_back_in_order_small_frames_joined_big_ones_untouched() -> None:
    big = zmq.Frame(b"B" * BLOB_MAX)
    notes: list[list[Any]] = [
        [b"task-assign", b"engine", b"id-1"],
        [b"task-out", zmq.Frame(b"client"), b"", b"sig", big, b"{}"],
        [b"one"],
    ]
    frames = _pack(notes)
    assert is_batch(frames[0]) and not is_batch(zmq.Frame(b"task-out"))
    assert len(frames) == 4 and frames[3] is big, "one blob, and the big frame as it was"
    back = split_notes([zmq.Frame(f) if isinstance(f, bytes) else f for f in frames])
    assert back is not None
    assert [[bytes(f) for f in note] for note in back] == [[bytes(f) for f in note] for note in notes]
    assert back[1][4] is big


def test_empty_frames_survive_the_round_trip() -> None:
    notes: list[list[Any]] = [[b"", b"x", b""], [b""]]
    assert split_notes(_pack(notes)) == notes


def _layout(*values: int) -> bytes:
    return array("q", values).tobytes()


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
    assert split_notes(frames) is None


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
