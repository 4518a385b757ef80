"""Noticing a silent controller from the client, without sockets.

Theory of operation
-------------------
The controller notices a silent engine by heartbeats; the client notices a
silent controller the same way, but only while it waits for something. While
requests are pending, any message from the controller (a reply, output, a
notification) counts as a sign of life. After ``probe_period`` seconds of
silence the client sends a cheap ``ping_request`` on the registration channel
(the hub answers it at once), and again every ``probe_period`` seconds; after
``timeout`` seconds without a word, the controller is lost and every pending
request fails with :class:`~taskyard.error.ControllerLost`.

A healthy controller running long tasks answers every probe, so tasks may run
for as long as they like. Silence while nothing is pending counts for nothing.
With the defaults (probe after 2 s, lost after 10 s, as an engine's heartbeat
bound) a killed controller is noticed within about 10 s of the last message.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Default seconds of silence (with requests pending) before the client probes the controller.
PROBE_PERIOD = 2.0
#: Default seconds of silence (with requests pending) after which the controller is lost.
CONTROLLER_TIMEOUT = 10.0


@dataclass
class ControllerWatchState:
    """When to probe the controller, and when to give it up.

    Examples
    --------
    >>> watch = ControllerWatchState(probe_period=2.0, timeout=5.0)
    >>> [watch.tick(now, has_pending=True) for now in (1.0, 2.0, 3.0, 4.0, 5.0)]
    [None, 'probe', None, 'probe', 'lost']
    >>> watch.heard(5.5)
    >>> watch.tick(6.0, has_pending=True) is None
    True
    """

    probe_period: float = PROBE_PERIOD
    timeout: float = CONTROLLER_TIMEOUT
    heard_at: float = 0.0
    probed_at: float | None = None

    def heard(self, now: float) -> None:
        """Something arrived from the controller."""
        self.heard_at = now
        self.probed_at = None

    def tick(self, now: float, has_pending: bool) -> str | None:
        """``"probe"`` (send a probe now), ``"lost"`` (fail what is pending) or None."""
        if not has_pending:
            self.heard(now)  # silence while waiting for nothing proves nothing
            return None
        silent = now - self.heard_at
        if silent >= self.timeout:
            self.heard(now)  # watch afresh whatever is sent next
            return "lost"
        if silent >= self.probe_period and (self.probed_at is None or now - self.probed_at >= self.probe_period):
            self.probed_at = now
            return "probe"
        return None

    def next_tick_in(self) -> float:
        """Seconds the shell may sleep before the next :meth:`tick` is due."""
        return min(self.probe_period, self.timeout) / 2
