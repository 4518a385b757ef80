"""Splitting the task scheduler's batched notes to the hub (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from taskyard.controller.hub import split_batch


def test_a_batch_splits_into_its_notes_in_order() -> None:
    notes = [[b"task-assign", b"engine", b"id-1"], [b"task-out", b"client", b"x"], [b"one"]]
    frames: list[Any] = [b"batch", b"3,3,1", *notes[0], *notes[1], *notes[2]]
    assert split_batch(frames) == notes


@pytest.mark.parametrize(
    "frames",
    [
        [b"batch"],
        [b"batch", b""],
        [b"batch", b"2", b"only one"],
        [b"batch", b"1", b"a", b"extra"],
        [b"batch", b"0,2", b"a", b"b"],
        [b"batch", b"-1,3", b"a", b"b"],
        [b"batch", b"x,y", b"a", b"b"],
        [b"batch", b"\xff", b"a"],
    ],
)
def test_a_malformed_batch_is_refused_whole(frames: list[Any]) -> None:
    assert split_batch(frames) is None
