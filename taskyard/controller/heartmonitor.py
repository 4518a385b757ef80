"""Heartbeat bookkeeping, without sockets.

Theory of operation
-------------------
Every ``period`` seconds the controller publishes a ping carrying a beat number.
Each engine's heart (a C-level forwarding device, so it answers even while user
code holds the GIL) echoes the ping back, tagged with the engine's identity.
An engine that has answered none of the last ``max_misses`` pings is declared
dead. With the defaults (0.4 s, 3 misses) a killed or frozen engine is noticed
within 1.6 s, while a heart may answer up to 1.2 s late without a false alarm.

The shell must hand every pong that arrived to :meth:`HeartMonitorState.pong`
*before* calling :meth:`tick`, so that a busy controller never mistakes its own
backlog for dead engines.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class HeartMonitorState:
    """Tracks which hearts answered which beat.

    Examples
    --------
    >>> hearts = HeartMonitorState(max_misses=2)
    >>> hearts.add(b"e0")
    >>> ping, failed = hearts.tick()
    >>> hearts.pong(b"e0", ping)
    'beat'
    >>> hearts.tick()[1], hearts.tick()[1], hearts.tick()[1]
    ([], [], [b'e0'])
    """

    max_misses: int = 3
    beat: int = 0
    #: heart identity -> the last beat it answered
    hearts: dict[bytes, int] = field(default_factory=dict)
    bad_pongs: int = 0

    def add(self, ident: bytes) -> None:
        """Start watching ``ident``; it counts as having answered the current beat."""
        self.hearts[ident] = self.beat

    def discard(self, ident: bytes) -> None:
        self.hearts.pop(ident, None)

    def pong(self, ident: bytes, payload: bytes) -> str:
        """Record an echo. Returns ``"beat"``, ``"unknown"`` (a heart not watched
        yet, e.g. an engine still registering) or ``"bad"`` (garbage)."""
        try:
            beat = int(payload)
        except (TypeError, ValueError):
            self.bad_pongs += 1
            return "bad"
        if beat > self.beat or beat < 0:
            self.bad_pongs += 1
            return "bad"
        last = self.hearts.get(ident)
        if last is None:
            return "unknown"
        if beat > last:
            self.hearts[ident] = beat
        return "beat"

    def tick(self) -> tuple[bytes, list[bytes]]:
        """Start a new beat: returns the ping payload and the hearts that failed."""
        failed = [ident for ident, last in self.hearts.items() if self.beat - last >= self.max_misses]
        for ident in failed:
            del self.hearts[ident]
        self.beat += 1
        return str(self.beat).encode(), failed
