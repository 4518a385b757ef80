"""The wire: message envelope and signing, serialization, connection files."""

from taskyard.protocol.serialize import (
    deserialize_object,
    pack_apply,
    serialize_object,
    unpack_apply,
)
from taskyard.protocol.session import DELIM, Message, Session, new_key

__all__ = [
    "DELIM",
    "Message",
    "Session",
    "new_key",
    "pack_apply",
    "unpack_apply",
    "serialize_object",
    "deserialize_object",
]
