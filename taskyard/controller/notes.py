"""The task scheduler's batched notes to the hub: when a batch goes (:class:`HoldBack`), and packed into few frames.

Sending a ZeroMQ frame costs about a microsecond of Python and libzmq work
whatever its size, and a note is eight or nine small frames (a prefix, routing
identities, the delimiter, the signature, four JSON headers): two notes per
task made the batches the larger part of the scheduler's frame traffic. A
batch therefore travels as::

    [b"batch", layout, blob, big_frame_1, big_frame_2, ...]

``blob`` is every frame under :data:`BLOB_MAX` bytes, joined; larger frames
(result buffers) follow as frames of their own, never copied. ``layout`` is an
array of native int64: the number of notes, each note's frame count, then each
frame's length in ``blob``, or ``-k`` for the k-th big frame. Both ends run on
one machine (the hub and the scheduler it forked), so native byte order is
shared. The notes come back as lists of frames, small ones as ``bytes``.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any

from taskyard.protocol.socketio import ZERO_COPY_THRESHOLD, frame_nbytes

#: Frames of at least this many bytes are sent as they are (never copied), not joined.
BLOB_MAX = ZERO_COPY_THRESHOLD
_PREFIX = b"batch"


def pack_notes(frames: Sequence[Any], note_sizes: Sequence[int]) -> list[Any]:
    """One batch message for notes whose frames, in order, are ``frames``."""
    lengths: list[int] = []
    small: list[Any] = []
    big: list[Any] = []
    for frame in frames:
        size = frame_nbytes(frame)
        if size >= BLOB_MAX:
            big.append(frame)
            lengths.append(-len(big))
        else:
            small.append(frame)
            lengths.append(size)
    layout = array("q", [len(note_sizes), *note_sizes, *lengths]).tobytes()
    return [_PREFIX, layout, b"".join(small), *big]


def is_batch(first_frame: Any) -> bool:
    return bytes(first_frame) == _PREFIX


def split_notes(frames: Sequence[Any]) -> list[list[Any]] | None:
    """The notes in a batch message, or None if it is malformed in any way."""
    if len(frames) < 3:
        return None
    raw_layout = bytes(frames[1])
    if not raw_layout or len(raw_layout) % 8:
        return None
    layout = array("q")
    layout.frombytes(raw_layout)
    count = layout[0]
    if count < 1 or len(layout) < 1 + count:
        return None
    note_sizes = layout[1 : 1 + count]
    lengths = layout[1 + count :]
    if min(note_sizes) < 1 or sum(note_sizes) != len(lengths):
        return None
    blob = bytes(frames[2])
    big = frames[3:]
    parts: list[Any] = []
    at = 0
    next_big = 0
    for length in lengths:
        if length >= 0:
            if at + length > len(blob):
                return None
            parts.append(blob[at : at + length])
            at += length
        elif -length - 1 == next_big < len(big):  # big frames are referred to in order
            parts.append(big[next_big])
            next_big += 1
        else:
            return None
    if at != len(blob) or next_big != len(big):
        return None
    notes = []
    start = 0
    for size in note_sizes:
        notes.append(parts[start : start + size])
        start += size
    return notes


class HoldBack:
    """When the scheduler's held-back replies and notes must go out (no sockets, no clock).

    While tasks are in flight, replies to clients and notes to the hub wait up
    to ``delay`` seconds after the first of them, so that a client in a burst
    wakes once for several replies and the hub once for several notes (at
    ``hwm=1`` replies come back one at a time). A batch of ``max_notes`` goes at
    once; with nothing else in flight nothing waits, so a single request's
    round trip is not delayed.
    """

    def __init__(self, delay: float = 0.005, max_notes: int = 256) -> None:
        self.delay = delay
        self.max_notes = max_notes
        #: when the oldest held item must go; None while nothing is held
        self.due_at: float | None = None

    def hold(self, now: float, notes_held: int) -> bool:
        """A note (and maybe a reply) was held back; True if the batch is full and must go now."""
        if self.due_at is None:
            self.due_at = now + self.delay
        return notes_held >= self.max_notes

    def is_due(self, now: float, in_flight: bool) -> bool:
        return self.due_at is not None and (not in_flight or now >= self.due_at)

    def sent(self) -> None:
        self.due_at = None
