"""ipyparallel's ``serialize`` functions that user code imports, on taskyard's format.

Code that moves objects itself (over its own zmq sockets between engines, as
ipyparallel's inter-engine examples do) calls these; taskyard's own messages
use :mod:`taskyard.protocol.serialize` underneath.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taskyard.protocol import serialize as _wire

__all__ = ["deserialize_object", "serialize_object"]


def serialize_object(obj: Any, buffer_threshold: int | None = None, item_threshold: int | None = None) -> list[Any]:
    """``obj`` as a list of frames to send (``socket.send_multipart``): a pickle,
    then the large buffers (numpy arrays' data) apart, uncopied.

    ``buffer_threshold`` and ``item_threshold`` are accepted for ipyparallel's
    sake; taskyard decides by itself which buffers travel apart.
    """
    return _wire.serialize_object(obj)


def deserialize_object(buffers: Sequence[Any], g: dict[str, Any] | None = None) -> tuple[Any, list[Any]]:
    """The object the frames ``buffers`` carry, and the frames left over (none), as
    ipyparallel returns them: ``obj, _ = deserialize_object(frames)``."""
    return _wire.deserialize_object(buffers), []
