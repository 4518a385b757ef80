"""When an engine sends the replies it held for a batch from the pure queue (sans-IO: no sockets, no clock).

A client's batch of requests reaches one engine whole (see
:mod:`taskyard.protocol.batch`). While its tasks are quick, their replies wait
for company and leave together: one message, one wake-up of the client and the
hub, instead of one per task. A reply waits at most ``hold`` seconds after the
first held one, and only while tasks stay quick: after a task that took
``quick`` seconds or more, everything held goes at once. A reply can so wait
for the task after it in its batch; a slow task's own reply never waits.
"""

from __future__ import annotations


class ReplyHoldState:
    """Whether held replies must go now."""

    def __init__(self, hold: float = 0.005, quick: float = 0.001) -> None:
        self.hold = hold
        self.quick = quick
        #: when the first held reply was held; None while nothing is held
        self.since: float | None = None

    def held(self, now: float) -> None:
        """A reply was held."""
        if self.since is None:
            self.since = now

    def is_due(self, now: float, task_seconds: float) -> bool:
        """After a task that took ``task_seconds``: must what is held go now?"""
        return self.since is not None and (task_seconds >= self.quick or now - self.since >= self.hold)

    def sent(self) -> None:
        self.since = None
