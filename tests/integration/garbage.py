"""Raw ZeroMQ peers and malformed messages for the bad-input tests."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zmq

from taskyard.protocol import connection
from taskyard.protocol.batch import is_batch, split_batch
from taskyard.protocol.serialize import pack_apply
from taskyard.protocol.session import DELIM, Session

HUGE = 20 * 1024 * 1024

#: The socket type that talks to each kind of bound socket.
PEER_TYPE = {"router": zmq.DEALER, "pub": zmq.XSUB, "sub": zmq.PUB}

#: The ports in each connection file and the kind of socket bound there.
CLIENT_PORTS = {
    "registration": "router",
    "mux": "router",
    "control": "router",
    "task": "router",
    "iopub": "pub",
    "notification": "pub",
}
ENGINE_PORTS = {
    "registration": "router",
    "mux": "router",
    "control": "router",
    "task": "router",
    "iopub": "sub",
    "hb_ping": "pub",
    "hb_pong": "router",
}


def read_info(path: Path) -> dict[str, Any]:
    return connection.read_connection_file(path)


@contextmanager
def raw_peer(info: dict[str, Any], channel: str, kind: int, identity: bytes | None = None) -> Iterator[zmq.Socket[Any]]:
    """A raw socket connected to ``channel``, closed (and its context ended) on exit."""
    ctx = zmq.Context()
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 2000)
    if identity is not None:
        sock.setsockopt(zmq.IDENTITY, identity)
    sock.connect(connection.url(info, channel))
    try:
        yield sock
    finally:
        sock.close(linger=2000)
        ctx.term()


def session_for(info: dict[str, Any], key: str | None = None) -> Session:
    return Session(info["key"] if key is None else key, info.get("signature_scheme", "hmac-sha256"), username="raw")


def signed(
    session: Session,
    msg_type: str,
    content: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    buffers: list[Any] | None = None,
    idents: tuple[bytes, ...] = (),
) -> tuple[str, list[Any]]:
    """A correctly signed message: ``(msg_id, frames)``."""
    msg = session.msg(msg_type, content, metadata=metadata, buffers=buffers)
    return msg.msg_id, session.serialize(msg, idents)


def apply_frames(
    session: Session, f: Callable[..., Any], args: tuple[Any, ...] = (), to: str | None = None
) -> tuple[str, list[Any]]:
    """A signed apply_request; ``to`` makes it a direct request for that engine uuid."""
    metadata = {} if to is None else {"to": to}
    idents = () if to is None else (to.encode(),)
    return signed(session, "apply_request", {}, metadata, pack_apply(f, args), idents)


def garbage_messages(session: Session, prefix: tuple[bytes, ...] = ()) -> list[list[bytes]]:
    """Every malformed message we throw at a port (``prefix``: routing frames to put first)."""
    header = json.dumps({"msg_id": "g-1", "msg_type": "apply_request"}).encode()
    _, good = signed(session, "apply_request", {}, {}, [b"not a pickle", b"neither"])
    signature, jsons, buffers = bytes(good[1]), [bytes(p) for p in good[2:6]], [bytes(b) for b in good[6:]]
    wrong_sig = [DELIM, b"0" * 64, *jsons, *buffers]
    tampered = [DELIM, signature, *jsons, b"a tampered pickle", buffers[1]]
    oversized = [DELIM, b"0" * 64, b"{" + b" " * (5 * 1024 * 1024) + b"}", b"{}", b"{}", b"{}"]
    messages: list[list[bytes]] = [
        [os.urandom(64)],
        [os.urandom(3), os.urandom(1000), os.urandom(7)],
        [b""],
        [b"", b"", b""],
        [DELIM],
        [DELIM, b"sig"],
        [DELIM, b"sig", header],
        [DELIM, b"", header, b"{}", b"{}", b"{}"],
        [DELIM, b"x", b"not json", b"[", b"]", b"{"],
        wrong_sig,
        tampered,
        oversized,
        [DELIM, signature, *jsons[:2]],
        [os.urandom(16), DELIM, signature, *jsons[:3]],
    ]
    return [[*prefix, *m] for m in messages]


def huge_message(prefix: tuple[bytes, ...] = ()) -> list[bytes]:
    return [*prefix, b"\0" * HUGE]


def send_all(sock: zmq.Socket[Any], messages: list[list[bytes]]) -> None:
    for frames in messages:
        sock.send_multipart(frames, copy=False)


def recv_until(sock: zmq.Socket[Any], session: Session, msg_ids: set[str], timeout: float) -> dict[str, Any]:
    """Replies (parsed) to ``msg_ids`` arriving on ``sock`` within ``timeout`` seconds."""
    import time

    replies: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while set(replies) != msg_ids:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not sock.poll(int(remaining * 1000) + 1):
            break
        frames = sock.recv_multipart()
        # the task scheduler sends the replies it held back for one client as a batch
        for one in (split_batch(frames) or []) if is_batch(frames[0]) else [frames]:
            msg = session.deserialize(one)
            if msg.parent_id in msg_ids:
                replies[msg.parent_id] = msg
    return replies
