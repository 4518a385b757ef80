"""Several messages in one: the batch envelope of the task channel and the monitor feed.

A signed message is seven or more small frames, and every frame costs a
``zmq_msg_send``/``zmq_msg_recv`` at each end. Worse, pyzmq releases the GIL
around each one: in a client whose IO thread sends while the user's thread is
busy submitting, every frame was a GIL hand-over, and the IO thread could wait
milliseconds to get the GIL back. Where several messages are ready to go
together (a client's burst of requests, the replies the scheduler held back for
one client, its notes to the hub) they travel as one batch::

    [b"batch", layout, blob, big_frame_1, big_frame_2, ...]

``blob`` is every frame under :data:`BLOB_MAX` bytes, joined; larger frames
(array and pickle buffers) follow as frames of their own, never copied.
``layout`` is an array of little-endian int64: the number of messages, each
message's frame count, then each frame's length in ``blob``, or ``-k`` for the
k-th big frame. The envelope is not signed: every message in it is, and each is
verified on its own as if it had come alone. A malformed envelope is refused
whole. The messages come back as lists of frames, small ones as ``bytes``.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from typing import Any

from taskyard.protocol.socketio import ZERO_COPY_THRESHOLD, frame_nbytes

#: Frames of at least this many bytes are sent as they are (never copied), not joined.
BLOB_MAX = ZERO_COPY_THRESHOLD
#: The first frame of a batch (a message proper starts with routing identities or ``<IDS|MSG>``).
BATCH_PREFIX = b"batch"
_SWAP = sys.byteorder != "little"


def _int64s(values: Sequence[int]) -> bytes:
    packed = array("q", values)
    if _SWAP:  # pragma: no cover - big-endian hosts
        packed.byteswap()
    return packed.tobytes()


def pack_batch(frames: Sequence[Any], sizes: Sequence[int]) -> list[Any]:
    """One batch for messages whose frames, in order, are ``frames`` (``sizes[i]`` frames each)."""
    lengths: list[int] = []
    small: list[Any] = []
    big: list[Any] = []
    for frame in frames:
        size = len(frame) if type(frame) is bytes else frame_nbytes(frame)
        if size >= BLOB_MAX:
            big.append(frame)
            lengths.append(-len(big))
        else:
            small.append(frame)
            lengths.append(size)
    return [BATCH_PREFIX, _int64s([len(sizes), *sizes, *lengths]), b"".join(small), *big]


def pack_messages(messages: Sequence[Sequence[Any]]) -> list[Any]:
    """One batch for ``messages`` (each a list of frames)."""
    return pack_batch([frame for message in messages for frame in message], [len(m) for m in messages])


def batch_or_single(messages: Sequence[Sequence[Any]]) -> list[Any]:
    """What to send for ``messages``: the one message as it is, or several as one batch."""
    return list(messages[0]) if len(messages) == 1 else pack_messages(messages)


def per_peer(messages: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Messages for a ROUTER, whose first frame names the peer: one message to send per peer.

    A peer with one message gets it as it is; a peer with several gets them as
    one batch, ``[peer, b"batch", ...]``, in their order.
    """
    by_peer: dict[bytes, list[Sequence[Any]]] = {}
    for frames in messages:
        by_peer.setdefault(bytes(frames[0]), []).append(frames[1:])
    return [[peer, *batch_or_single(inner)] for peer, inner in by_peer.items()]


def cut(messages: Sequence[Any], parts: int) -> list[Sequence[Any]]:
    """``messages`` in at most ``parts`` runs of nearly equal length, in order (the longer runs first)."""
    size = -(-len(messages) // max(1, parts))
    return [messages[start : start + size] for start in range(0, len(messages), size)]


def unbatch(frames: Sequence[Any], routing: int = 0) -> list[list[Any]] | None:
    """The messages in what arrived: itself, or those of the batch after its first ``routing`` frames.

    The routing frames (a peer's identity, a monitor prefix) are kept at the
    head of each message of the batch. None if the batch is malformed.
    """
    if len(frames) <= routing or not is_batch(frames[routing]):
        return [list(frames)]
    messages = split_batch(frames[routing:])
    if messages is None:
        return None
    head = list(frames[:routing])
    return [[*head, *message] for message in messages]


def is_batch(first_frame: Any) -> bool:
    return len(first_frame) == len(BATCH_PREFIX) and bytes(first_frame) == BATCH_PREFIX


def split_batch(frames: Sequence[Any]) -> list[list[Any]] | None:
    """The messages in a batch, or None if it is malformed in any way."""
    if len(frames) < 3:
        return None
    raw_layout = bytes(frames[1])
    if not raw_layout or len(raw_layout) % 8:
        return None
    layout = array("q")
    layout.frombytes(raw_layout)
    if _SWAP:  # pragma: no cover - big-endian hosts
        layout.byteswap()
    count = layout[0]
    if count < 1 or len(layout) < 1 + count:
        return None
    sizes = layout[1 : 1 + count]
    lengths = layout[1 + count :]
    if min(sizes) < 1 or sum(sizes) != len(lengths):
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
    messages = []
    start = 0
    for size in sizes:
        messages.append(parts[start : start + size])
        start += size
    return messages
