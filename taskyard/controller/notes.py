"""When the task scheduler's held-back replies and notes go out (:class:`HoldBack`).

Notes to the hub and replies to clients travel packed as batches (see
:mod:`taskyard.protocol.batch`); this module decides *when* a batch goes.
"""

from __future__ import annotations


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
