"""An engine's captured output, bounded so that any amount of it still gives a reply.

Theory of operation: a request's printed text goes two ways, live on iopub
(``stream`` messages) and kept for the reply's metadata. Both ways end in
a JSON frame that receivers refuse above :data:`~taskyard.protocol.session.MAX_JSON_FRAME`
bytes, and a refused reply never resolves its request. So each stream keeps at
most :data:`MAX_CAPTURED` characters (the head) and streams at most that much,
in pieces of at most :data:`MAX_CHUNK` characters; what comes after the head is
counted, not kept, and one note saying how much was cut ends both the streamed
and the kept text. :func:`fit_reply` is the last guard: whatever else grew too
big in a reply (a huge exception message, a huge result repr, many figures) is
cut, with a note, until the reply fits.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

from taskyard.protocol import jsonutil

#: Characters of each stream (stdout, stderr) a request keeps and streams; the rest is cut.
MAX_CAPTURED = 1 << 20
#: Most characters in one iopub ``stream`` message (a JSON string may take 6 bytes a character).
MAX_CHUNK = 1 << 19
#: Seconds between iopub messages while output keeps coming.
STREAM_INTERVAL = 0.2
#: Bytes of JSON a reply's content or metadata may take (receivers refuse frames above 4 MiB).
REPLY_BUDGET = 3 << 20

Publish = Callable[[str, str], None]


def cut_note(name: str, cut: int) -> str:
    """The line that ends a stream's text once ``cut`` characters were left out."""
    return f"\n[{name} truncated: {cut:,} more characters were cut (the limit is {MAX_CAPTURED:,} per request)]\n"


class OutputCapture:
    """A text stream that keeps the first :data:`MAX_CAPTURED` characters and streams them.

    Parameters
    ----------
    name : str
        ``"stdout"`` or ``"stderr"``.
    publish : callable
        ``publish(name, text)`` sends one piece on iopub.
    """

    def __init__(self, name: str, publish: Publish) -> None:
        self.name = name
        self.publish = publish
        self.parts: list[str] = []
        self.size = 0
        self.cut = 0
        self.pending: list[str] = []
        self.pending_size = 0
        self.last_sent_at = time.monotonic()
        self.is_closed = False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = MAX_CAPTURED - self.size
        kept = text if len(text) <= room else text[: max(room, 0)]
        self.cut += len(text) - len(kept)
        if kept:
            self.parts.append(kept)
            self.size += len(kept)
            self.pending.append(kept)
            self.pending_size += len(kept)
            if self.pending_size >= MAX_CHUNK or (
                "\n" in kept and time.monotonic() - self.last_sent_at > STREAM_INTERVAL
            ):
                self.flush()
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self.pending:
            text = "".join(self.pending)
            self.pending.clear()
            self.pending_size = 0
            for start in range(0, len(text), MAX_CHUNK):
                self.publish(self.name, text[start : start + MAX_CHUNK])
        self.last_sent_at = time.monotonic()

    def close(self) -> None:
        """Send what is pending, and the note if anything was cut (once)."""
        self.flush()
        if self.cut and not self.is_closed:
            self.publish(self.name, cut_note(self.name, self.cut))
        self.is_closed = True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise io.UnsupportedOperation("captured output has no file descriptor")

    def getvalue(self) -> str:
        text = "".join(self.parts)
        return text + cut_note(self.name, self.cut) if self.cut else text

    @property
    def encoding(self) -> str:
        return "utf-8"


def _rough_size(value: Any) -> int:
    """Characters in the strings of ``value``: cheap, and a JSON encoding takes at most 6 bytes each."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(len(str(k)) + _rough_size(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(_rough_size(v) for v in value)
    return 8


def json_size(value: Any) -> int:
    """Bytes ``value`` takes as JSON (exactly, when its strings are long enough to matter)."""
    rough = _rough_size(value)
    if rough * 6 + 1024 <= REPLY_BUDGET:
        return rough
    try:
        return len(jsonutil.dumps(value))
    except (TypeError, ValueError):
        return rough * 6


def _cut_text(text: str, keep: int, what: str) -> str:
    return text[:keep] + f"\n[{what} truncated: {len(text) - keep:,} more characters were cut]\n"


def _shrink(value: Any, keep: int, what: str) -> Any:
    """``value`` with every string longer than ``keep`` characters cut, noting it."""
    if isinstance(value, str):
        return _cut_text(value, keep, what) if len(value) > keep else value
    if isinstance(value, dict):
        return {k: _shrink(v, keep, what) for k, v in value.items()}
    if isinstance(value, list):
        return [_shrink(v, keep, what) for v in value]
    return value


def fit(part: dict[str, Any], what: str, budget: int = REPLY_BUDGET) -> dict[str, Any]:
    """``part`` (a reply's content or metadata), cut until it fits ``budget`` bytes of JSON.

    Large display outputs (figures) go first, replaced by a text note; then
    every long string is cut, each time to a quarter of the length.

    Examples
    --------
    >>> fit({"status": "ok"}, "reply")
    {'status': 'ok'}
    >>> len(fit({"evalue": "x" * 10_000_000}, "reply")["evalue"]) < 1_000_000
    True
    """
    if json_size(part) <= budget:
        return part
    part = dict(part)
    outputs = part.get("outputs")
    if isinstance(outputs, list):
        fitted = []
        for output in outputs:
            if json_size(output) > budget // 8:
                size = json_size(output)
                note = f"[a display output of about {size:,} bytes was cut: too big for a reply]"
                output = {"data": {"text/plain": note}, "metadata": {}}
            fitted.append(output)
        part["outputs"] = fitted
    keep = budget // 6
    while json_size(part) > budget and keep > 64:
        part = {k: _shrink(v, keep, what if k not in ("stdout", "stderr") else k) for k, v in part.items()}
        keep //= 4
    return part
