"""When an engine sends the replies it held for a batch from the pure queue (no sockets, no clock)."""

from __future__ import annotations

from taskyard.engine.reply_hold import ReplyHoldState


def test_quick_tasks_replies_wait_together_up_to_the_hold() -> None:
    hold = ReplyHoldState(hold=0.005, quick=0.001)
    assert not hold.is_due(10.0, task_seconds=5.0), "nothing held: nothing to send"
    hold.held(10.0)
    assert not hold.is_due(10.0002, task_seconds=0.0002)
    hold.held(10.0003)
    assert hold.since == 10.0, "the wait counts from the first held reply"
    assert not hold.is_due(10.0049, task_seconds=0.0002)
    assert hold.is_due(10.005, task_seconds=0.0002)
    hold.sent()
    assert hold.since is None and not hold.is_due(20.0, task_seconds=1.0)


def test_after_a_slow_task_everything_held_goes_at_once() -> None:
    hold = ReplyHoldState(hold=0.005, quick=0.001)
    hold.held(1.0)
    assert hold.is_due(1.001, task_seconds=0.001)
