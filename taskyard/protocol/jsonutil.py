"""JSON encoding of the four header frames.

orjson is several times faster than the standard library on the small dicts every
message carries (see FACTS.md); it is used when installed and the standard
library otherwise. Both produce plain UTF-8 JSON, so peers may differ.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

dumps: Callable[[Any], bytes]
loads: Callable[[bytes | bytearray | memoryview | str], Any]

try:  # pragma: no cover - which branch runs depends on the environment
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)

    loads = orjson.loads
except ImportError:  # pragma: no cover

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), default=str).encode()

    def loads(data: bytes | bytearray | memoryview | str) -> Any:
        if isinstance(data, memoryview):
            data = bytes(data)
        return json.loads(data)
