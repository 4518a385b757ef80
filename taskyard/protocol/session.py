"""Message envelope, signing and replay protection.

Theory of operation
-------------------
Every message on every channel is a multipart ZeroMQ message::

    [routing identities..., b"<IDS|MSG>", signature, header, parent_header,
     metadata, content, buffers...]

The four dict frames are JSON. ``buffers`` carry pickles and raw data (numpy
arrays travel as their own frames, never copied into a pickle). The signature is
a keyed MAC over the frame lengths, the four dict frames *and every buffer*, so a
tampered pickle is as detectable as a tampered header; a message whose signature
does not match is rejected before anything in it is looked at.

Large buffers (``DIGEST_THRESHOLD`` bytes and more) enter the MAC by their
BLAKE3 digest rather than byte by byte, and the digests travel in the signature
frame after the MAC (``<hex mac>:<hex digest>,<hex digest>...``). BLAKE3 hashes
at ≈ 6 GB/s on one core here and spreads a big buffer over all cores (≈ 10 GB/s
on two), against ≈ 1.7 GB/s for HMAC-SHA256, so a 128 MB array costs ≈ 12 ms to
sign instead of ≈ 75 ms. A forged buffer still fails: its digest no longer matches
the one under the MAC. The digests also let a relay that only stores a message
(the hub, for results) check the MAC over the headers and the claimed digests at
once and hash the buffers only when it serves them (``verify_buffers=False``,
then :meth:`Session.verify_buffers`).

Each receiving :class:`Session` remembers the signatures of the last
``replay_window`` messages it accepted; a message that repeats one of them is a
replay and is rejected. The window is bounded by count so memory stays flat; a
replay older than the window is not caught by this check (the engines' own
per-request bookkeeping and the scheduler's task table catch re-sent tasks that
are still known).

:class:`Session` does no IO: it turns a :class:`Message` into frames and frames
back into a :class:`Message`, raising :class:`~taskyard.error.ProtocolError`
with what was wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import struct
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import zmq
from blake3 import blake3

from taskyard.error import BufferChanged, MessageTooLarge, ProtocolError
from taskyard.protocol import jsonutil
from taskyard.protocol.socketio import SIZED_FRAME_TYPES, frame_nbytes, send_frames

DELIM = b"<IDS|MSG>"
PROTOCOL_VERSION = "1.0"

#: A frame as pyzmq hands it over with ``copy=False`` or as we build it.
Frame = Union[bytes, bytearray, memoryview, Any]

#: Largest JSON frame accepted; anything bigger is an oversized header.
MAX_JSON_FRAME = 4 * 1024 * 1024

SIGNATURE_SCHEMES = {"hmac-sha256": hashlib.sha256, "hmac-sha512": hashlib.sha512}

#: Buffers at least this large are signed by their BLAKE3 digest.
DIGEST_THRESHOLD = 64 * 1024
#: Buffers at least this large are hashed on every core.
PARALLEL_DIGEST_THRESHOLD = 4 * 1024 * 1024
_DIGEST_SIZE = 32
_DIGEST_TAG = b"blake3:"


def buffer_digest(buffer: Frame) -> bytes:
    """The BLAKE3 digest of a buffer (on every core when it is large)."""
    view = memoryview(buffer)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    threads = blake3.AUTO if view.nbytes >= PARALLEL_DIGEST_THRESHOLD else 1
    return blake3(view, max_threads=threads).digest()


def new_key() -> str:
    """A fresh random key for a connection file."""
    return os.urandom(32).hex()


def _new_mac(key: bytes, scheme: str) -> Any:
    """A keyed MAC to ``copy()`` per message: OpenSSL's own object where there is one.

    ``hmac.new`` wraps it in a Python class whose ``update`` costs a Python call
    per frame; the C object does not.
    """
    digest = SIGNATURE_SCHEMES[scheme]
    try:
        import _hashlib

        return _hashlib.hmac_new(key, digestmod=scheme.removeprefix("hmac-"))
    except (ImportError, AttributeError, ValueError):  # pragma: no cover - Python without OpenSSL
        return hmac.new(key, digestmod=digest)


_LENGTHS: dict[int, struct.Struct] = {}


def _sizes(frames: Sequence[Frame]) -> list[int]:
    return [len(f) if type(f) in SIZED_FRAME_TYPES else frame_nbytes(f) for f in frames]


def _packed(sizes: list[int]) -> bytes:
    """Every frame's length, packed: the first thing the MAC covers."""
    packer = _LENGTHS.get(len(sizes))
    if packer is None:
        packer = _LENGTHS.setdefault(len(sizes), struct.Struct(f"<{len(sizes)}Q"))
    return packer.pack(*sizes)


def _as_bytes(frame: Frame) -> bytes:
    if isinstance(frame, bytes):
        return frame
    raw = getattr(frame, "bytes", None)  # zmq.Frame
    if raw is not None:
        return raw  # type: ignore[no-any-return]
    return bytes(frame)


@dataclass(slots=True)
class Message:
    """A parsed message: four dicts, raw buffers and the routing identities."""

    header: dict[str, Any]
    parent_header: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    content: dict[str, Any] = field(default_factory=dict)
    buffers: list[Any] = field(default_factory=list)
    idents: list[bytes] = field(default_factory=list)
    #: The signed digest of each buffer (None for small ones, signed byte by byte).
    digests: list[bytes | None] = field(default_factory=list)
    #: False when the buffers were not hashed on receipt (``verify_buffers=False``).
    buffers_verified: bool = True

    @property
    def msg_id(self) -> str:
        return str(self.header["msg_id"])

    @property
    def msg_type(self) -> str:
        return str(self.header["msg_type"])

    @property
    def parent_id(self) -> str | None:
        parent = self.parent_header.get("msg_id")
        return None if parent is None else str(parent)


class Session:
    """Builds, signs, verifies and parses messages for one process.

    Parameters
    ----------
    key : bytes or str
        The shared secret from the connection file. An empty key disables
        signing (only for tests of the unsigned path; every app uses a key).
    signature_scheme : str
        ``"hmac-sha256"`` (default) or ``"hmac-sha512"``.
    replay_window : int
        How many accepted signatures to remember for replay detection.
    username : str
        Recorded in every header.
    """

    def __init__(
        self,
        key: bytes | str = b"",
        signature_scheme: str = "hmac-sha256",
        replay_window: int = 65536,
        username: str = "",
        session_id: str | None = None,
    ) -> None:
        if signature_scheme not in SIGNATURE_SCHEMES:
            choices = ", ".join(sorted(SIGNATURE_SCHEMES))
            raise ProtocolError(f"unknown signature scheme {signature_scheme!r}; choose one of: {choices}")
        self.key = key.encode() if isinstance(key, str) else bytes(key)
        self.signature_scheme = signature_scheme
        self._mac = _new_mac(self.key, signature_scheme) if self.key else None
        self.session = session_id or os.urandom(8).hex()
        self.username = username or os.environ.get("USER", "taskyard")
        self._counter = itertools.count()
        self._seen: set[bytes] = set()
        self._seen_order: deque[bytes] = deque()
        self.replay_window = replay_window
        #: Why messages were rejected, by reason; shells log and expose these.
        self.rejected: dict[str, int] = {}

    # -- building ---------------------------------------------------------

    def new_msg_id(self) -> str:
        return f"{self.session}-{next(self._counter)}"

    def header(self, msg_type: str, msg_id: str | None = None) -> dict[str, Any]:
        return {
            "msg_id": msg_id or self.new_msg_id(),
            "msg_type": msg_type,
            "session": self.session,
            "username": self.username,
            "date": time.time(),
            "version": PROTOCOL_VERSION,
        }

    def msg(
        self,
        msg_type: str,
        content: dict[str, Any] | None = None,
        parent: Message | dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[Frame] | None = None,
        msg_id: str | None = None,
        digests: Sequence[bytes | None] | None = None,
    ) -> Message:
        """A new message; ``digests`` are the buffers' digests if already verified (see :meth:`sign`)."""
        if isinstance(parent, Message):
            parent_header = parent.header
        else:
            parent_header = parent or {}
        return Message(
            header=self.header(msg_type, msg_id),
            parent_header=parent_header,
            metadata=metadata or {},
            content=content or {},
            buffers=list(buffers or []),
            digests=list(digests or []),
        )

    def sign(
        self,
        parts: Sequence[Frame],
        buffers: Sequence[Frame] = (),
        digests: Sequence[bytes | None] | None = None,
    ) -> bytes:
        """The signature frame for four dict frames and their buffers.

        ``digests`` gives buffer digests already known (verified on receipt), so
        a relay re-signing stored buffers need not hash them again.
        """
        if self._mac is None:
            return b""
        sizes = _sizes([*parts, *buffers])
        if digests is None:
            digests = [
                buffer_digest(b) if n >= DIGEST_THRESHOLD else None for b, n in zip(buffers, sizes[4:], strict=True)
            ]
        return self._signature(parts, buffers, digests, sizes)

    def _signature(
        self,
        parts: Sequence[Frame],
        buffers: Sequence[Frame],
        digests: Sequence[bytes | None],
        sizes: list[int],
    ) -> bytes:
        """The signature frame; ``sizes`` are the lengths of ``parts`` then ``buffers``."""
        assert self._mac is not None
        mac = self._mac.copy()
        update = mac.update
        update(_packed(sizes))
        for part in parts:
            update(part)  # bytes, memoryviews and zmq.Frames all expose the buffer protocol
        for buffer, digest in zip(buffers, digests, strict=True):
            update(buffer if digest is None else _DIGEST_TAG + digest)
        signature: bytes = mac.hexdigest().encode()
        if not any(digests):
            return signature
        return signature + b":" + b",".join(d.hex().encode() for d in digests if d is not None)

    def verify_buffers(self, buffers: Sequence[Frame], digests: Sequence[bytes | None]) -> bool:
        """Whether every large buffer still hashes to its signed digest."""
        if len(buffers) != len(digests):
            return False
        return all(d is None or hmac.compare_digest(buffer_digest(b), d) for b, d in zip(buffers, digests, strict=True))

    def serialize(self, msg: Message, idents: Sequence[bytes] = ()) -> list[Frame]:
        """The frames to send for ``msg``, routed through ``idents``."""
        parts = [
            jsonutil.dumps(msg.header),
            jsonutil.dumps(msg.parent_header),
            jsonutil.dumps(msg.metadata),
            jsonutil.dumps(msg.content),
        ]
        # Digests are reused only if they were checked: re-signing a lazily received
        # message's claimed digests would vouch for buffers nobody hashed.
        known = msg.digests if msg.digests and msg.buffers_verified else None
        signature = self.sign(parts, msg.buffers, known)
        return [*idents, DELIM, signature, *parts, *msg.buffers]

    # -- parsing ----------------------------------------------------------

    def _reject(self, reason: str, detail: str) -> ProtocolError:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        return ProtocolError(f"{reason}: {detail}")

    @staticmethod
    def split_idents(frames: Sequence[Frame]) -> tuple[list[bytes], list[Frame]]:
        """Split routing identities from the message proper at the delimiter."""
        for index, frame in enumerate(frames):
            if len(frame) == len(DELIM) and _as_bytes(frame) == DELIM:
                return [_as_bytes(f) for f in frames[:index]], list(frames[index + 1 :])
            if index >= 16:
                break
        raise ProtocolError("malformed: no <IDS|MSG> delimiter")

    def sign_frames(self, frames: Sequence[Frame]) -> bytes:
        """A MAC over whole frames (their lengths, then their bytes): for envelopes that are not messages."""
        if self._mac is None:
            return b""
        return self._signature(frames, (), (), _sizes(frames))

    def verify_frames(self, signature: Frame, frames: Sequence[Frame]) -> bool:
        """Whether ``signature`` is :meth:`sign_frames` of ``frames``."""
        if self._mac is None:
            return True
        return hmac.compare_digest(_as_bytes(signature), self.sign_frames(frames))

    def deserialize(
        self,
        frames: Sequence[Frame],
        check_replay: bool = True,
        verify_buffers: bool = True,
        authenticated: bool = False,
        answer_oversized: bool = False,
    ) -> Message:
        """Parse frames into a :class:`Message`, verifying the signature.

        With ``answer_oversized=True`` a message with an oversized header frame
        whose signature holds raises :class:`~taskyard.error.MessageTooLarge`
        carrying its ``header`` and ``parent_header`` (when those two are small)
        as ``message``, so that a client can end the request it answers; without
        it, such a message is rejected unread like any other oversized one.

        Raises :class:`~taskyard.error.BufferChanged` (a ProtocolError) carrying the
        parsed message as ``message`` when the headers are authentic but a large
        buffer changed after signing: the receiver can answer the sender.

        Raises :class:`~taskyard.error.ProtocolError` for anything wrong: no
        delimiter, too few frames, a bad or repeated signature, oversized or
        non-JSON headers, a header without ``msg_id``/``msg_type``.

        With ``verify_buffers=False`` large buffers are not hashed: the MAC is
        checked over their *claimed* digests, and the message comes back with
        ``buffers_verified=False``; whoever passes the buffers on must call
        :meth:`verify_buffers` first.

        ``authenticated=True`` skips the signature: for a message whose
        envelope was verified as a whole (the scheduler's own notes in a batch
        signed with :meth:`sign_frames`); it must carry no buffers.
        """
        try:
            idents, rest = self.split_idents(frames)
        except ProtocolError as exc:
            raise self._reject("malformed", str(exc)) from None
        if len(rest) < 5:
            raise self._reject("truncated", f"{len(rest)} frames after the delimiter, need at least 5")
        signature = _as_bytes(rest[0])
        parts = rest[1:5]
        buffers = rest[5:]
        for part in parts:
            if len(part) > MAX_JSON_FRAME:
                if answer_oversized:
                    raise self._too_large(idents, signature, parts, buffers, check_replay)
                raise self._reject("oversized", f"a header frame exceeds {MAX_JSON_FRAME} bytes")
        digests: list[bytes | None] = []
        changed = False
        if authenticated:
            if buffers:
                raise self._reject("malformed", "an authenticated note carries buffers")
        elif self._mac is not None:
            if not signature:
                raise self._reject("unsigned", "message carries no signature")
            sizes = _sizes([*parts, *buffers])
            digests = self._claimed_digests(signature, sizes[4:])
            if not hmac.compare_digest(signature, self._signature(parts, buffers, digests, sizes)):
                raise self._reject("bad-signature", "signature does not match")
            if check_replay:
                if signature in self._seen:
                    raise self._reject("replay", "signature already seen")
                self._remember(signature)
            # Only now the buffers: hashing garbage before the cheap check would be a gift to a flooder.
            changed = verify_buffers and not self.verify_buffers(buffers, digests)
        try:
            header, parent_header, metadata, content = (jsonutil.loads(_as_bytes(p)) for p in parts)
        except (ValueError, RecursionError) as exc:  # RecursionError: deeply nested JSON
            raise self._reject("malformed", f"bad JSON: {type(exc).__name__}: {str(exc)[:200]}") from None
        if not all(isinstance(d, dict) for d in (header, parent_header, metadata, content)):
            raise self._reject("malformed", "header frames must be JSON objects")
        if not isinstance(header.get("msg_id"), str) or not isinstance(header.get("msg_type"), str):
            raise self._reject("malformed", "header lacks msg_id or msg_type")
        msg = Message(header, parent_header, metadata, content, list(buffers), idents, digests, verify_buffers)
        if changed:
            raise self._buffer_changed(msg)
        return msg

    def _too_large(
        self,
        idents: list[bytes],
        signature: bytes,
        parts: Sequence[Frame],
        buffers: Sequence[Frame],
        check_replay: bool,
    ) -> ProtocolError:
        """The error for an oversized message: MessageTooLarge with its small headers if it is authentic."""
        detail = f"a header frame exceeds {MAX_JSON_FRAME} bytes"
        if self._mac is None or not signature or any(len(p) > MAX_JSON_FRAME for p in parts[:2]):
            return self._reject("oversized", detail)
        sizes = _sizes([*parts, *buffers])
        try:
            digests = self._claimed_digests(signature, sizes[4:])
        except ProtocolError:
            return self._reject("oversized", detail)
        # One MAC pass over the large frame (no JSON parsing of it): cheap next to receiving it.
        if not hmac.compare_digest(signature, self._signature(parts, buffers, digests, sizes)):
            return self._reject("oversized", detail)
        if check_replay:
            if signature in self._seen:
                return self._reject("replay", "signature already seen")
            self._remember(signature)
        try:
            header, parent_header = (jsonutil.loads(_as_bytes(p)) for p in parts[:2])
        except (ValueError, RecursionError):
            return self._reject("oversized", detail)
        if not isinstance(header, dict) or not isinstance(parent_header, dict):
            return self._reject("oversized", detail)
        self.rejected["oversized"] = self.rejected.get("oversized", 0) + 1
        largest = max(len(p) for p in parts)
        error = MessageTooLarge(
            f"the {header.get('msg_type')} to {parent_header.get('msg_id')} has a {largest}-byte header frame, "
            f"over the {MAX_JSON_FRAME}-byte limit (huge metadata, e.g. captured output): it cannot be read"
        )
        error.message = Message(header, parent_header, idents=idents)
        return error

    def _buffer_changed(self, msg: Message) -> BufferChanged:
        """The error for an authentic message whose large buffer changed after it was signed.

        The MAC covers the headers and the *claimed* digests, so headers that pass
        it were written by a key holder; only a buffer differs from what was
        signed. That is what a sender sees when it changes an array passed to
        ``apply_async`` before its zero-copy send has finished, and what a
        forger could produce only with an intercepted message it could as
        well have dropped: the receiver answers it with this error (the
        signature was remembered, so it cannot be replayed) rather than drop it.
        """
        self.rejected["buffer-changed"] = self.rejected.get("buffer-changed", 0) + 1
        error = BufferChanged(
            f"a buffer of {msg.msg_type} {msg.msg_id} changed after it was signed: the sender modified "
            "an array (or other buffer) passed to it before the zero-copy send had finished. Pass a copy, "
            "or send with track=True and call ar.wait_for_send() before changing it"
        )
        error.message = msg
        return error

    def _claimed_digests(self, signature: bytes, buffer_sizes: list[int]) -> list[bytes | None]:
        """The digests a signature frame carries, one per buffer (None for small ones)."""
        _, _, listed = signature.partition(b":")
        large = [n >= DIGEST_THRESHOLD for n in buffer_sizes]
        if not listed and not any(large):
            return [None] * len(large)  # the common case: small buffers only
        claimed = listed.split(b",") if listed else []
        if len(claimed) != sum(large):
            raise self._reject("bad-signature", "the signature lists the wrong number of buffer digests")
        try:
            decoded = iter([bytes.fromhex(c.decode("ascii")) for c in claimed])
        except (ValueError, UnicodeDecodeError):
            raise self._reject("bad-signature", "a buffer digest is not hex") from None
        digests = [next(decoded) if is_large else None for is_large in large]
        if any(d is not None and len(d) != _DIGEST_SIZE for d in digests):
            raise self._reject("bad-signature", "a buffer digest has the wrong length")
        return digests

    def _remember(self, signature: bytes) -> None:
        self._seen.add(signature)
        self._seen_order.append(signature)
        if len(self._seen_order) > self.replay_window:
            self._seen.discard(self._seen_order.popleft())

    # -- socket helpers ---------------------------------------------------

    def send(self, socket: Any, msg: Message, idents: Sequence[bytes] = ()) -> None:
        """Serialize and send ``msg`` on a pyzmq socket (or ZMQStream)."""
        frames = self.serialize(msg, idents)
        if isinstance(socket, zmq.Socket):
            send_frames(socket, frames)
        else:
            socket.send_multipart(frames, copy=False)

    def send_new(
        self,
        socket: Any,
        msg_type: str,
        content: dict[str, Any] | None = None,
        parent: Message | dict[str, Any] | None = None,
        idents: Sequence[bytes] = (),
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[Frame] | None = None,
        digests: Sequence[bytes | None] | None = None,
    ) -> Message:
        msg = self.msg(msg_type, content, parent, metadata, buffers, digests=digests)
        self.send(socket, msg, idents)
        return msg
