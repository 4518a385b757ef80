"""The task scheduler's notes to the hub: when they go out (:class:`HoldBack`), and how they are signed.

Notes to the hub and replies to clients travel packed as batches (see
:mod:`taskyard.protocol.batch`). A batch of notes goes as
``[SIGNED_NOTES, mac, b"batch", layout, blob, big frames...]``: one MAC
(:meth:`~taskyard.protocol.session.Session.sign_frames`) over the layout and the
joined small frames vouches for the notes the scheduler writes itself (copies of
requests' headers, :data:`SCHEDULER_NOTES`), which so need no signature each.
The engines' replies among the notes keep their own signatures, and the hub
checks those one by one, as before: the scheduler does not verify replies.
"""

from __future__ import annotations

#: The first frame of a signed batch of notes.
SIGNED_NOTES = b"notes"
#: Notes the scheduler writes itself, unsigned inside a signed batch.
SCHEDULER_NOTES = frozenset({b"task-sent", b"task-in"})


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
