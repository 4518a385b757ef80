"""Invariants of the task scheduler core, checked by ``TaskSchedulerState.validate()``.

Kept apart from the core so that the decision code stays short; tests call
``validate()`` after every event, so these checks may cost O(everything).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskyard.controller.scheduler_task import ScheduledTask, TaskState, Verdict

if TYPE_CHECKING:
    from taskyard.controller.scheduler_state import TaskSchedulerState

__all__ = ["check_invariants"]


def check_invariants(state: TaskSchedulerState) -> None:
    """Assert every invariant of ``state``; the message names the broken one."""
    counts = dict.fromkeys(TaskState, 0)
    for task_id, task in state._tasks.items():
        counts[task.state] += 1
        assert task.task_id == task_id
        assert task_id not in state._finished, f"{task_id} is both unfinished and finished"
        if task.state is TaskState.RUNNING:
            assert task.engine_id in state._engines, f"{task_id} runs on a dead engine"
            assert task_id in state._engines[task.engine_id].outstanding
        else:
            assert task.engine_id is None
        if task.state is TaskState.READY:
            _check_ready(state, task)
        if task.state is TaskState.WAITING:
            verdict, _ = task.verdict()
            assert verdict is Verdict.WAIT, f"{task_id} waits but its verdict is {verdict}"
        for engine_id in task.follow_engines:
            assert engine_id in state._engines, f"{task_id} follows dead engine {engine_id}"
            assert task_id in state._follow_index[engine_id]
    assert counts == state._counts, f"state counts {state._counts} != actual {counts}"
    running = 0
    for engine_id, engine in state._engines.items():
        for task_id in engine.outstanding:
            task = state._tasks[task_id]
            assert task.state is TaskState.RUNNING and task.engine_id == engine_id
        running += len(engine.outstanding)
        assert state.hwm == 0 or len(engine.outstanding) <= state.hwm, f"engine {engine_id} over hwm"
    assert running == state._counts[TaskState.RUNNING]
    assert set(state._lru) == set(state._engines)
    assert len(state._finished) == len(state._finished_order) <= state.finished_window
    assert set(state._finished) == set(state._finished_order)
    for dep_id in state._dependents:
        assert dep_id not in state._finished, f"dependents of finished {dep_id} were not resolved"
        assert dep_id in state._tasks or dep_id in state._awaiting_hub, f"nobody will resolve {dep_id}"
    for dep_id in state._awaiting_hub:
        assert dep_id not in state._tasks and dep_id not in state._finished
    for engine_id, followers in state._follow_index.items():
        assert engine_id in state._engines and followers
        for task_id in followers:
            assert engine_id in state._tasks[task_id].follow_engines
    for task_id in state._ready_restricted:
        assert state._tasks[task_id].state is TaskState.READY and state._tasks[task_id].is_restricted
    timed = {task_id for _, _, task_id in state._deadlines}
    for task_id, task in state._tasks.items():
        if task.deadline_at is not None and task.state is not TaskState.RUNNING:
            assert task_id in timed, f"{task_id} has a timeout but no deadline entry"
    assert not state._resolutions and not state._actions


def _check_ready(state: TaskSchedulerState, task: ScheduledTask) -> None:
    task_id = task.task_id
    entry = (task.ready_seq, task_id)
    eligible = state._eligible_engines(task)
    assert eligible or not state._is_hopeless(task), f"{task_id} is ready but no live engine may ever run it"
    for engine_id in eligible:
        assert not state._has_room(state._engines[engine_id]), f"{task_id} queued while {engine_id} idles"
    if task.is_restricted:
        assert task_id in state._ready_restricted
        for engine_id in eligible:
            assert entry in state._engines[engine_id].queue, f"{task_id} missing from {engine_id}'s queue"
    else:
        assert entry in state._ready_any, f"{task_id} missing from the shared queue"
