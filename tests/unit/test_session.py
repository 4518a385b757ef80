"""The message envelope: signing, parsing, replay protection, bad input.

Every check goes through :class:`Session` directly, frames in memory; no sockets.
"""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest

from taskyard.error import BufferChanged, MessageTooLarge, ProtocolError
from taskyard.protocol.session import DELIM, DIGEST_THRESHOLD, MAX_JSON_FRAME, Message, Session, buffer_digest

KEY = b"secret-key"


def pair(**options: Any) -> tuple[Session, Session]:
    """A sending and a receiving session sharing a key."""
    return Session(KEY, **options), Session(KEY, **options)


def frames_for(sender: Session, msg_type: str = "apply_request", **kwargs: Any) -> list[Any]:
    msg = sender.msg(msg_type, **kwargs)
    return sender.serialize(msg)


def resign(sender: Session, parts: list[Any], buffers: list[Any] = ()) -> list[Any]:
    """Frames with chosen JSON parts, validly signed, so parsing goes past the MAC."""
    buffers = list(buffers)
    return [DELIM, sender.sign(parts, buffers), *parts, *buffers]


def as_bytes(buffer: Any) -> bytes:
    return bytes(memoryview(buffer).cast("B")) if not isinstance(buffer, bytes) else buffer


# -- round trips ------------------------------------------------------------


def test_round_trip_keeps_dicts_and_buffers() -> None:
    sender, receiver = pair()
    array = np.arange(1000, dtype=np.float64)
    buffers = [b"raw bytes", memoryview(b"a memoryview"), array, bytearray(b"\x00\x01")]
    msg = sender.msg(
        "apply_request",
        content={"a": 1, "nested": {"b": [1, 2, 3]}},
        metadata={"after": ["x"], "timeout": 2.5},
        parent={"msg_id": "parent-1", "msg_type": "execute_request"},
        buffers=buffers,
    )
    got = receiver.deserialize(sender.serialize(msg))
    assert isinstance(got, Message)
    assert got.header == msg.header
    assert got.parent_header == msg.parent_header
    assert got.parent_id == "parent-1"
    assert got.metadata == {"after": ["x"], "timeout": 2.5}
    assert got.content == {"a": 1, "nested": {"b": [1, 2, 3]}}
    assert got.msg_type == "apply_request"
    assert got.msg_id == msg.msg_id
    assert [as_bytes(b) for b in got.buffers] == [as_bytes(b) for b in buffers]
    assert np.array_equal(np.frombuffer(got.buffers[2], dtype=np.float64), array)
    assert receiver.rejected == {}


def test_parent_message_becomes_parent_header() -> None:
    sender, receiver = pair()
    request = sender.msg("apply_request")
    reply = sender.msg("apply_reply", parent=request)
    got = receiver.deserialize(sender.serialize(reply))
    assert got.parent_id == request.msg_id
    assert got.parent_header["msg_type"] == "apply_request"


def test_routing_identities_are_preserved() -> None:
    sender, receiver = pair()
    idents = [b"client-7", b"\x00\x80\xff binary", b""]
    frames = sender.serialize(sender.msg("apply_request"), idents=idents)
    assert frames[:3] == idents
    got = receiver.deserialize(frames)
    assert got.idents == idents


def test_split_idents_accepts_memoryview_frames() -> None:
    sender, receiver = pair()
    frames = [memoryview(f) if isinstance(f, bytes) else f for f in sender.serialize(sender.msg("x"), [b"id"])]
    got = receiver.deserialize(frames)
    assert got.idents == [b"id"]
    assert got.msg_type == "x"


def test_msg_ids_are_unique_within_and_across_sessions() -> None:
    one, two = Session(KEY), Session(KEY)
    ids = [one.new_msg_id() for _ in range(1000)] + [two.new_msg_id() for _ in range(1000)]
    ids += [one.msg("x").msg_id for _ in range(100)]
    assert len(set(ids)) == len(ids)


def test_explicit_msg_id_is_kept() -> None:
    sender, receiver = pair()
    got = receiver.deserialize(sender.serialize(sender.msg("x", msg_id="my-id")))
    assert got.msg_id == "my-id"


def test_hmac_sha512_round_trip_and_signature_length() -> None:
    sender, receiver = pair(signature_scheme="hmac-sha512")
    frames = frames_for(sender, buffers=[b"payload"])
    assert len(frames[1]) == 128  # hex of 64 bytes
    assert receiver.deserialize(frames).buffers == [b"payload"]
    sha256 = Session(KEY)
    with pytest.raises(ProtocolError, match="bad-signature"):
        sha256.deserialize(frames)


def test_unknown_signature_scheme_lists_choices() -> None:
    with pytest.raises(ProtocolError) as info:
        Session(KEY, signature_scheme="hmac-md5")
    message = str(info.value)
    assert "hmac-md5" in message
    assert "hmac-sha256" in message and "hmac-sha512" in message


def test_str_key_equals_bytes_key() -> None:
    sender = Session("secret-key")
    receiver = Session(KEY)
    assert receiver.deserialize(frames_for(sender)).msg_type == "apply_request"


# -- signatures ---------------------------------------------------------------


@pytest.mark.parametrize("index", [2, 3, 4, 5])
def test_tampering_with_any_json_frame_is_rejected(index: int) -> None:
    sender, receiver = pair()
    frames = frames_for(sender, content={"code": "x = 1"}, metadata={"m": 1}, parent={"msg_id": "p"})
    tampered = list(frames)
    tampered[index] = tampered[index].replace(b"}", b" }", 1)
    assert tampered[index] != frames[index]
    with pytest.raises(ProtocolError, match="bad-signature"):
        receiver.deserialize(tampered)
    assert receiver.rejected == {"bad-signature": 1}
    # the untouched frames still pass
    assert receiver.deserialize(frames).content == {"code": "x = 1"}


@pytest.mark.parametrize("buffer_index", [0, 1, 2])
def test_tampering_with_any_buffer_byte_is_rejected(buffer_index: int) -> None:
    sender, receiver = pair()
    buffers = [b"function pickle", bytes(range(256)) * 10, np.arange(100, dtype=np.int32).tobytes()]
    frames = frames_for(sender, buffers=buffers)
    rng = random.Random(buffer_index)
    for _ in range(20):
        tampered = list(frames)
        raw = bytearray(tampered[6 + buffer_index])
        position = rng.randrange(len(raw))
        raw[position] ^= 1 << rng.randrange(8)
        tampered[6 + buffer_index] = bytes(raw)
        with pytest.raises(ProtocolError, match="bad-signature"):
            receiver.deserialize(tampered)
    assert receiver.rejected == {"bad-signature": 20}


def test_dropped_or_added_buffer_is_rejected() -> None:
    sender, receiver = pair()
    frames = frames_for(sender, buffers=[b"one", b"two"])
    with pytest.raises(ProtocolError, match="bad-signature"):
        receiver.deserialize(frames[:-1])
    with pytest.raises(ProtocolError, match="bad-signature"):
        receiver.deserialize([*frames, b"three"])
    assert receiver.rejected == {"bad-signature": 2}


def test_moving_bytes_between_buffers_is_rejected() -> None:
    # The MAC covers every frame's length, so re-splitting the same bytes differently fails.
    sender, receiver = pair()
    frames = frames_for(sender, buffers=[b"abc", b"def"])
    moved = [*frames[:6], b"ab", b"cdef"]
    with pytest.raises(ProtocolError, match="bad-signature"):
        receiver.deserialize(moved)


LARGE = DIGEST_THRESHOLD * 3


def test_large_buffers_travel_with_their_digests_in_the_signature() -> None:
    sender, receiver = pair()
    big = np.arange(LARGE // 8, dtype=np.float64)
    frames = frames_for(sender, buffers=[b"small", big, b"x" * DIGEST_THRESHOLD])
    mac, _, digests = frames[1].partition(b":")
    assert len(mac) == 64 and len(digests.split(b",")) == 2
    got = receiver.deserialize(frames)
    assert got.buffers_verified
    assert got.digests[0] is None and got.digests[1] == buffer_digest(big) and got.digests[2] is not None
    assert np.array_equal(np.frombuffer(got.buffers[1], dtype=np.float64), big)


def test_tampering_with_a_large_buffer_or_its_digest_is_rejected() -> None:
    sender, receiver = pair()
    big = bytes(LARGE)
    frames = frames_for(sender, buffers=[big])
    flipped = bytearray(big)
    flipped[LARGE // 2] ^= 1
    # authentic headers with a changed buffer: answerable (BufferChanged), and remembered as seen
    with pytest.raises(BufferChanged, match="changed after it was signed") as info:
        receiver.deserialize([*frames[:6], bytes(flipped)])
    assert info.value.message.msg_id == sender_msg_id(frames)
    with pytest.raises(ProtocolError, match="replay"):
        receiver.deserialize(frames)
    receiver = pair()[1]
    # a digest swapped for the tampered buffer's own breaks the MAC instead
    mac, _, _ = frames[1].partition(b":")
    forged = mac + b":" + buffer_digest(bytes(flipped)).hex().encode()
    with pytest.raises(ProtocolError, match="signature does not match"):
        receiver.deserialize([frames[0], forged, *frames[2:6], bytes(flipped)])
    for bad in (mac, mac + b":zz", mac + b":" + b"ab" * 16 + b"," + b"ab" * 32, mac + b":abcd"):
        with pytest.raises(ProtocolError, match="bad-signature"):
            receiver.deserialize([frames[0], bad, *frames[2:]])
    assert receiver.deserialize(frames).buffers[0] == big


def sender_msg_id(frames: list[Any]) -> str:
    return str(json.loads(bytes(frames[2]))["msg_id"])


def test_a_changed_buffer_is_told_from_a_forgery() -> None:
    """The sender changed an array after signing: the receiver learns whose request it was."""
    sender, receiver = pair()
    big = bytearray(LARGE)
    msg = sender.msg("apply_request", {}, buffers=[big])
    frames = sender.serialize(msg, [b"client-1"])
    big[7] = 1  # what a caller does to its array right after apply_async returns
    with pytest.raises(BufferChanged) as info:
        receiver.deserialize(frames)
    changed = info.value.message
    assert changed.msg_id == msg.msg_id and changed.idents == [b"client-1"]
    assert receiver.rejected["buffer-changed"] == 1
    # a header changed too is a forgery: dropped as before
    forged = list(frames)
    forged[3] = forged[3][:-1] + b" }"
    with pytest.raises(ProtocolError, match="signature does not match"):
        pair()[1].deserialize(forged)


def test_lazy_buffer_verification_defers_the_hash_but_not_the_mac() -> None:
    sender, relay = pair()
    big = bytes(LARGE)
    frames = frames_for(sender, buffers=[big])
    flipped = bytearray(big)
    flipped[0] ^= 1
    # the relay accepts the tampered buffer without hashing it, and says so ...
    lazy = relay.deserialize([*frames[:6], bytes(flipped)], verify_buffers=False)
    assert not lazy.buffers_verified
    # ... and the check it must make before passing the buffers on fails
    assert not relay.verify_buffers(lazy.buffers, lazy.digests)
    good = relay.deserialize(frames, check_replay=False, verify_buffers=False)
    assert relay.verify_buffers(good.buffers, good.digests)
    # the headers are still checked at once
    tampered = list(frames)
    tampered[2] = tampered[2].replace(b"}", b" }", 1)
    with pytest.raises(ProtocolError, match="signature does not match"):
        relay.deserialize(tampered, verify_buffers=False)


def test_known_digests_are_reused_when_re_signing() -> None:
    sender, relay = pair()
    big = bytes(LARGE)
    stored = relay.deserialize(frames_for(sender, buffers=[big]))
    out = relay.msg("result_reply", buffers=stored.buffers, digests=stored.digests)
    assert Session(KEY).deserialize(relay.serialize(out)).buffers[0] == big


def test_unverified_digests_are_never_re_signed() -> None:
    # A relay that took buffers lazily and passes the message on as it is must not
    # vouch for the claimed digests: serializing hashes the buffers afresh.
    sender, relay = pair()
    big = bytes(LARGE)
    flipped = bytearray(big)
    flipped[7] ^= 1
    frames = frames_for(sender, buffers=[big])
    lazy = relay.deserialize([*frames[:6], bytes(flipped)], verify_buffers=False)
    resent = relay.serialize(lazy)
    got = Session(KEY).deserialize(resent)  # signed over the buffer actually sent
    assert got.buffers[0] == bytes(flipped) and got.digests[0] == buffer_digest(bytes(flipped))
    assert got.digests[0] != lazy.digests[0]


def test_wrong_key_is_rejected() -> None:
    sender = Session(b"one key")
    receiver = Session(b"another key")
    with pytest.raises(ProtocolError, match="bad-signature"):
        receiver.deserialize(frames_for(sender))
    assert receiver.rejected == {"bad-signature": 1}


def test_unsigned_message_to_keyed_session_is_rejected() -> None:
    unsigned = Session(b"")
    receiver = Session(KEY)
    frames = frames_for(unsigned)
    assert frames[1] == b""
    with pytest.raises(ProtocolError, match="unsigned"):
        receiver.deserialize(frames)
    assert receiver.rejected == {"unsigned": 1}


def test_unkeyed_session_accepts_anything_well_formed() -> None:
    sender, receiver = Session(KEY), Session(b"")
    assert receiver.deserialize(frames_for(sender)).msg_type == "apply_request"
    assert receiver.deserialize(frames_for(Session(b""))).msg_type == "apply_request"


def test_a_whole_envelope_is_signed_by_lengths_and_bytes() -> None:
    sender, receiver = pair()
    frames = [b"layout", b"blob of notes"]
    mac = sender.sign_frames(frames)
    assert receiver.verify_frames(mac, frames)
    assert not receiver.verify_frames(mac, [b"layout", b"blob of noteS"])
    assert not receiver.verify_frames(mac, [b"layoutb", b"lob of notes"]), "bytes moved between frames"
    assert not Session(b"another key").verify_frames(mac, frames)


def test_an_authenticated_note_needs_no_signature_but_may_not_carry_buffers() -> None:
    sender, receiver = pair()
    frames = frames_for(sender, content={"a": 1})
    unsigned = [DELIM, b"", *frames[2:6]]
    with pytest.raises(ProtocolError, match="unsigned"):
        receiver.deserialize(unsigned)
    assert receiver.deserialize(unsigned, check_replay=False, authenticated=True).content == {"a": 1}
    with pytest.raises(ProtocolError, match="buffers"):
        receiver.deserialize([*unsigned, b"a buffer"], authenticated=True)


# -- replay -------------------------------------------------------------------


def test_replay_is_rejected() -> None:
    sender, receiver = pair()
    frames = frames_for(sender, buffers=[b"pickle"])
    receiver.deserialize(frames)
    with pytest.raises(ProtocolError, match="replay"):
        receiver.deserialize(list(frames))
    # a replay with other routing identities is the same message
    with pytest.raises(ProtocolError, match="replay"):
        receiver.deserialize([b"other-route", *frames])
    assert receiver.rejected == {"replay": 2}


def test_check_replay_false_accepts_repeats() -> None:
    sender, receiver = pair()
    frames = frames_for(sender)
    for _ in range(3):
        assert receiver.deserialize(frames, check_replay=False).msg_type == "apply_request"
    # not remembered either: a checked parse after unchecked ones is the first
    receiver.deserialize(frames)
    with pytest.raises(ProtocolError, match="replay"):
        receiver.deserialize(frames)
    assert receiver.rejected == {"replay": 1}


def test_replay_window_forgets_oldest_signatures() -> None:
    sender, receiver = pair(replay_window=3)
    messages = [frames_for(sender) for _ in range(5)]
    for frames in messages:
        receiver.deserialize(frames)
    # the last three are still remembered
    for frames in messages[2:]:
        with pytest.raises(ProtocolError, match="replay"):
            receiver.deserialize(frames)
    # the first two fell out of the window
    assert receiver.deserialize(messages[0]).msg_id
    assert receiver.rejected == {"replay": 3}
    assert len(receiver._seen) == len(receiver._seen_order) <= 3


def test_rejected_messages_do_not_enter_the_replay_window() -> None:
    sender, receiver = pair()
    frames = frames_for(sender)
    tampered = [*frames[:5], b'{"x": 2}']
    with pytest.raises(ProtocolError):
        receiver.deserialize(tampered)
    assert receiver.deserialize(frames).msg_type == "apply_request"


# -- malformed input ------------------------------------------------------------


def test_no_delimiter() -> None:
    _, receiver = pair()
    with pytest.raises(ProtocolError, match="delimiter"):
        receiver.deserialize([b"a", b"b", b"c", b"d", b"e", b"f"])
    with pytest.raises(ProtocolError, match="delimiter"):
        receiver.deserialize([])
    assert receiver.rejected == {"malformed": 2}


def test_delimiter_too_deep_is_malformed() -> None:
    sender, receiver = pair()
    frames = sender.serialize(sender.msg("x"), idents=[b"i%d" % n for n in range(40)])
    with pytest.raises(ProtocolError, match="delimiter"):
        receiver.deserialize(frames)
    assert receiver.rejected == {"malformed": 1}


@pytest.mark.parametrize("keep", [0, 1, 2, 3, 4])
def test_truncated(keep: int) -> None:
    sender, receiver = pair()
    frames = frames_for(sender)
    with pytest.raises(ProtocolError, match="truncated"):
        receiver.deserialize(frames[: 1 + keep])
    assert receiver.rejected == {"truncated": 1}


def test_non_json_frame() -> None:
    sender, receiver = pair()
    header = json.dumps({"msg_id": "a", "msg_type": "x"}).encode()
    for bad in (b"not json", b"\xff\xfe\x00", b"{", b""):
        with pytest.raises(ProtocolError, match="malformed"):
            receiver.deserialize(resign(sender, [header, bad, b"{}", b"{}"]))
    assert receiver.rejected == {"malformed": 4}


def test_deeply_nested_json_is_malformed_not_recursion_error() -> None:
    sender, receiver = pair()
    header = json.dumps({"msg_id": "a", "msg_type": "x"}).encode()
    for nested in (b"[" * 100_000, b'{"a":' * 100_000):
        with pytest.raises(ProtocolError, match="malformed"):
            receiver.deserialize(resign(sender, [header, b"{}", b"{}", nested]))
    assert receiver.rejected == {"malformed": 2}


@pytest.mark.parametrize("value", [b"[]", b"1", b'"str"', b"null", b"true"])
def test_json_that_is_not_an_object(value: bytes) -> None:
    sender, receiver = pair()
    header = json.dumps({"msg_id": "a", "msg_type": "x"}).encode()
    with pytest.raises(ProtocolError, match="JSON objects"):
        receiver.deserialize(resign(sender, [header, b"{}", value, b"{}"]))
    with pytest.raises(ProtocolError, match="JSON objects"):
        receiver.deserialize(resign(sender, [value, b"{}", b"{}", b"{}"]))
    assert receiver.rejected == {"malformed": 2}


@pytest.mark.parametrize(
    "header",
    [{}, {"msg_id": "a"}, {"msg_type": "x"}, {"msg_id": 1, "msg_type": "x"}, {"msg_id": "a", "msg_type": None}],
)
def test_header_without_msg_id_or_msg_type(header: dict[str, Any]) -> None:
    sender, receiver = pair()
    with pytest.raises(ProtocolError, match="msg_id or msg_type"):
        receiver.deserialize(resign(sender, [json.dumps(header).encode(), b"{}", b"{}", b"{}"]))
    assert receiver.rejected == {"malformed": 1}


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_oversized_json_frame(index: int) -> None:
    sender, receiver = pair()
    parts = [json.dumps({"msg_id": "a", "msg_type": "x"}).encode(), b"{}", b"{}", b"{}"]
    parts[index] = b'{"pad": "' + b"x" * MAX_JSON_FRAME + b'"}'
    with pytest.raises(ProtocolError, match="oversized"):
        receiver.deserialize(resign(sender, parts))
    assert receiver.rejected == {"oversized": 1}


def test_an_authentic_oversized_reply_can_be_answered() -> None:
    """A reply with huge metadata: a client can still tell which request it answers."""
    sender, receiver = pair()
    reply = sender.msg("apply_reply", {"status": "ok"}, parent={"msg_id": "req-1"})
    reply.metadata = {"stdout": "x" * (MAX_JSON_FRAME + 1)}
    frames = sender.serialize(reply, [b"peer"])
    with pytest.raises(ProtocolError, match="oversized"):
        pair()[1].deserialize(frames)  # by default: rejected unread, as before
    with pytest.raises(MessageTooLarge, match="over the 4194304-byte limit") as info:
        receiver.deserialize(frames, answer_oversized=True)
    assert info.value.message.parent_id == "req-1" and info.value.message.idents == [b"peer"]
    with pytest.raises(ProtocolError, match="replay"):
        receiver.deserialize(frames, answer_oversized=True)
    forged = [*frames[:3], frames[3], frames[4], frames[5][:-3] + b'y"}', frames[6]]
    with pytest.raises(ProtocolError, match="oversized") as info:
        pair()[1].deserialize(forged, answer_oversized=True)
    assert not isinstance(info.value, MessageTooLarge)


def test_big_buffers_are_not_oversized() -> None:
    sender, receiver = pair()
    big = bytes(MAX_JSON_FRAME + 1)
    got = receiver.deserialize(frames_for(sender, buffers=[big]))
    assert len(got.buffers[0]) == MAX_JSON_FRAME + 1


def test_counters_accumulate_by_reason() -> None:
    sender, receiver = pair()
    good = frames_for(sender)
    bad_inputs = [
        [b"no delimiter"],
        [DELIM, b"sig"],
        [*good[:2], b"x", *good[3:]],
        [DELIM, b"", *good[2:]],
    ]
    for frames in bad_inputs:
        with pytest.raises(ProtocolError):
            receiver.deserialize(frames)
    receiver.deserialize(good)
    with pytest.raises(ProtocolError):
        receiver.deserialize(good)
    assert receiver.rejected == {"malformed": 1, "truncated": 1, "bad-signature": 1, "unsigned": 1, "replay": 1}


# -- fuzzing ------------------------------------------------------------------


def _random_frame(rng: random.Random, good: list[Any]) -> Any:
    choice = rng.randrange(8)
    if choice == 0:
        return DELIM
    if choice == 1:
        return rng.choice(good)
    if choice == 2:
        return b""
    if choice == 3:
        return rng.choice([b"{}", b"[]", b"null", b'{"msg_id": 1}', b"[" * 2000, b"\xff" * 3])
    if choice == 4:
        return bytearray(rng.randbytes(rng.randrange(40)))
    if choice == 5:
        return memoryview(rng.randbytes(rng.randrange(40)))
    return rng.randbytes(rng.randrange(200))


def _mutate(rng: random.Random, frames: list[Any]) -> list[Any]:
    frames = list(frames)
    operation = rng.randrange(5)
    if operation == 0 and frames:
        del frames[rng.randrange(len(frames))]
    elif operation == 1:
        frames.insert(rng.randrange(len(frames) + 1), rng.randbytes(rng.randrange(20)))
    elif operation == 2 and frames:
        index = rng.randrange(len(frames))
        raw = bytearray(frames[index])
        if raw:
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        frames[index] = bytes(raw)
    elif operation == 3:
        rng.shuffle(frames)
    else:
        frames = frames[: rng.randrange(len(frames) + 1)]
    return frames


@pytest.mark.parametrize("key", [KEY, b""], ids=["keyed", "unkeyed"])
def test_fuzz_only_protocol_errors_escape(key: bytes) -> None:
    rng = random.Random(20240611)
    sender = Session(key)
    receiver = Session(key)
    good = frames_for(sender, content={"a": [1, 2]}, buffers=[b"buf"])
    accepted = 0
    for round_ in range(600):
        if round_ % 2:
            frames = [_random_frame(rng, good) for _ in range(rng.randrange(12))]
        else:
            frames = _mutate(rng, good)
        try:
            msg = receiver.deserialize(frames, check_replay=False)
        except ProtocolError:
            continue
        accepted += 1
        assert isinstance(msg.header, dict) and isinstance(msg.content, dict)
        assert isinstance(msg.msg_id, str) and isinstance(msg.msg_type, str)
    assert sum(receiver.rejected.values()) + accepted == 600
    assert set(receiver.rejected) <= {"malformed", "truncated", "oversized", "unsigned", "bad-signature"}
