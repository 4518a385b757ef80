"""The task scheduler's decisions, as a sans-IO state machine.

Theory of operation
-------------------
:class:`TaskSchedulerState` takes events and returns actions. It owns no socket,
clock, logger or random source: every event carries ``now`` (monotonic
seconds) and the routing scheme draws from the ``rng`` it was given. The shell
(``TaskScheduler``) decodes frames, calls one event method, and carries out the
returned actions in order.

Events: :meth:`~TaskSchedulerState.add_engine`, :meth:`~TaskSchedulerState.remove_engine`,
:meth:`~TaskSchedulerState.submit`, :meth:`~TaskSchedulerState.finish`,
:meth:`~TaskSchedulerState.unmet`, :meth:`~TaskSchedulerState.tick`,
:meth:`~TaskSchedulerState.external_result`, :meth:`~TaskSchedulerState.external_unknown`.
Actions (:mod:`.scheduler_actions`): ``Send``, ``Fail``, ``Deliver``, ``QueryHub``.

An unfinished task is WAITING (its dependencies are not met yet), READY (it may
run and is queued for an engine slot) or RUNNING (sent, no reply yet). A
finished task leaves the core; its outcome (success, engine) goes into the
*finished window*.

Cost per event is O(1) amortized in the number of tasks (it is O(engines) to
pick an engine, as in every scheme):

- *Reverse dependencies.* ``_dependents[dep_id]`` lists the tasks waiting on
  ``dep_id``; when it finishes the list is popped and each task's counters
  (:class:`.scheduler_task.DependencyProgress`) move by one. Nothing rescans the
  waiting tasks, and no set of finished ids is copied or intersected.
- *Ready queues.* A READY task that any engine may run sits in one FIFO deque; a
  restricted one (targets, blacklist, follow) sits in the deque of each engine
  that may run it. Each entry carries the task's ``ready_seq``; entries of tasks
  that moved on are skipped lazily. When a slot frees on engine E the oldest
  valid head of the shared deque and of E's deque runs, so tasks go FIFO in the
  order they became ready (a task re-queued after ``unmet`` or a retry joins the
  back). Invariant: no READY task has an eligible engine with a free slot.
- *Cascades* (a failure making dependents impossible, whose failure makes theirs
  impossible...) go through a work list, not recursion.
- *Timeouts* sit in a heap with lazy deletion, compacted when mostly stale.

Bounded memory: the outcomes of the most recent ``finished_window`` finished
tasks (scheduled here or reported through ``external_result``) are kept, oldest
evicted first. A dependency on an id neither unfinished here nor in the window
- a direct-view task, or one finished long ago - is resolved by asking the hub:
the core emits ``QueryHub`` once per unknown id and the task waits until the
shell reports the answer with ``external_result`` or ``external_unknown``. A
single dict of ids would grow forever in a long-lived controller; the window
keeps the common case (dependencies on recent tasks) local.

Rules: ``after`` holds a task back until met; ``follow`` sends it to the engine
where its ids ran (all=True: the one engine where all ran; all=False: any of
them). Impossible dependencies fail at once with ``ImpossibleDependency``: an
unreachable ``after``/``follow``, follow ids (all=True) on several engines, or
on a dead engine, or no live engine left that targets and blacklist allow -
unless there are no engines at all, when tasks wait for one. Depending on itself
or on an id the hub does not know is ``InvalidDependency``. A task still
unassigned at ``submitted + timeout`` fails with ``DependencyTimeout``. A failed
run with retries left runs again elsewhere (its engine is excluded); a task
waiting for such a retry that no engine can take ends with ``Deliver`` of the
failure the shell kept. A task on an engine that dies is retried while retries
allow, else fails with ``EngineError``.
"""

from __future__ import annotations

import heapq
import random
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from taskyard.controller.scheduler_actions import Action, Deliver, Fail, QueryHub, Send, TaskSpec
from taskyard.controller.scheduler_invariants import check_invariants
from taskyard.controller.scheduler_task import ScheduledTask, TaskState, Verdict
from taskyard.error import ConfigError
from taskyard.schemes import get_scheme

__all__ = ["TaskSchedulerState"]


class _Outcome(NamedTuple):
    success: bool
    engine_id: int | None


@dataclass(slots=True, eq=False)
class _EngineSlot:
    """Scheduler-side view of one live engine."""

    # Insertion-ordered, so a dying engine's tasks are handled in dispatch order.
    outstanding: dict[str, None] = field(default_factory=dict)
    completed: int = 0
    # (ready_seq, task_id) of READY restricted tasks this engine may run.
    queue: deque[tuple[int, str]] = field(default_factory=deque)


class TaskSchedulerState:
    """Sans-IO core of the load-balancing task scheduler.

    Parameters
    ----------
    scheme : str
        A routing scheme name from :data:`taskyard.schemes.PYTHON_SCHEMES`.
    hwm : int
        Most tasks outstanding on one engine; 0 means unlimited.
    rng : random.Random, optional
        Randomness for the scheme. The shell passes its own; tests pass a seeded
        one. Defaults to a fresh ``random.Random()``.
    finished_window : int
        How many finished task outcomes to remember (see the module docstring).

    Raises
    ------
    ConfigError
        For an unknown scheme, ``"pure"``, a negative ``hwm`` or window.

    Notes
    -----
    Every event method returns a list of actions and leaves the state
    consistent (:meth:`validate`). Replies and reports that no longer match
    the state (a late reply from an engine already removed, a second submit of
    a known id) are ignored: the event returns ``[]``.
    """

    def __init__(
        self,
        scheme: str = "leastload",
        hwm: int = 1,
        rng: random.Random | None = None,
        finished_window: int = 100_000,
    ) -> None:
        self._scheme = get_scheme(scheme)
        self.scheme_name = scheme
        if hwm < 0:
            raise ConfigError(f"hwm must be 0 (unlimited) or a positive number of tasks, not {hwm}")
        if finished_window < 0:
            raise ConfigError(f"finished_window must not be negative, not {finished_window}")
        self.hwm = hwm
        self.finished_window = finished_window
        self._rng = rng if rng is not None else random.Random()
        self._engines: dict[int, _EngineSlot] = {}
        self._highest_engine_id = -1
        self._lru: OrderedDict[int, None] = OrderedDict()  # least recently used first
        self._tasks: dict[str, ScheduledTask] = {}
        self._counts: dict[TaskState, int] = dict.fromkeys(TaskState, 0)
        self._finished: dict[str, _Outcome] = {}
        self._finished_order: deque[str] = deque()
        self._dependents: dict[str, list[str]] = {}
        self._awaiting_hub: set[str] = set()
        self._follow_index: dict[int, set[str]] = {}
        self._ready_any: deque[tuple[int, str]] = deque()
        self._ready_restricted: dict[str, None] = {}  # in ready_seq order
        self._deadlines: list[tuple[float, int, str]] = []
        self._seq = 0
        self._resolutions: deque[tuple[str, _Outcome]] = deque()
        self._actions: list[Action] = []

    # ------------------------------------------------------------------ events

    def add_engine(self, engine_id: int, now: float) -> list[Action]:
        """An engine registered: queued tasks it may run go to it.

        Raises
        ------
        ValueError
            If ``engine_id`` is already registered (ids are never reused).
        """
        if engine_id in self._engines:
            raise ValueError(f"engine {engine_id} is already registered with the scheduler")
        engine = self._engines[engine_id] = _EngineSlot()
        self._highest_engine_id = max(self._highest_engine_id, engine_id)
        self._lru[engine_id] = None
        self._lru.move_to_end(engine_id, last=False)  # never used: least recently used
        impossible: list[ScheduledTask] = []
        for task_id in self._ready_restricted:
            task = self._tasks[task_id]
            if task.may_run_on(engine_id):
                engine.queue.append((task.ready_seq, task_id))
            elif self._is_hopeless(task):
                impossible.append(task)
        for task in impossible:
            self._give_up(task, "ImpossibleDependency", self._why_no_engine(task))
        self._drain(engine_id)
        return self._flush()

    def remove_engine(self, engine_id: int, now: float) -> list[Action]:
        """An engine died or unregistered: its tasks are retried or fail with EngineError."""
        engine = self._engines.pop(engine_id, None)
        if engine is None:
            return []
        del self._lru[engine_id]
        for task_id in self._follow_index.pop(engine_id, ()):
            follower = self._tasks.get(task_id)
            if follower is not None:
                follower.lose_engine(engine_id)
                if follower.state is not TaskState.RUNNING:
                    self._reconsider(follower)
        if self._engines:
            for seq, task_id in engine.queue:
                task = self._tasks.get(task_id)
                if task is not None and self._is_current(task, seq) and self._is_hopeless(task):
                    self._give_up(task, "ImpossibleDependency", self._why_no_engine(task))
        for task_id in engine.outstanding:
            task = self._tasks[task_id]
            self._leave_engine(task)
            evalue = f"engine {engine_id} died before it replied to task {task_id}"
            if task.retries_left > 0:
                task.retries_left -= 1
                task.has_failed_reply = False
                task.fallback_error = ("EngineError", evalue)
                self._requeue(task)
            else:
                self._conclude(task, Fail(task_id, "EngineError", evalue), success=False)
        return self._flush()

    def submit(self, task: TaskSpec, now: float) -> list[Action]:
        """A client submitted a load-balanced task."""
        task_id = task.task_id
        if task_id in self._tasks or task_id in self._finished:
            return []
        record = ScheduledTask.from_spec(task, now)
        self._tasks[task_id] = record
        # Known now; a pending hub answer about it will be ignored.
        self._awaiting_hub.discard(task_id)
        self._counts[TaskState.WAITING] += 1
        if task_id in record.after_ids or task_id in record.follow_ids:
            self._conclude(record, Fail(task_id, "InvalidDependency", "a task cannot depend on itself"))
            return self._flush()
        if record.deadline_at is not None:
            self._push_deadline(record)
        unknown: list[str] = []
        for dep_id in record.after_ids | record.follow_ids:
            outcome = self._finished.get(dep_id)
            if outcome is not None:
                self._apply(record, dep_id, outcome)
                continue
            self._dependents.setdefault(dep_id, []).append(task_id)
            if dep_id not in self._tasks and dep_id not in self._awaiting_hub:
                self._awaiting_hub.add(dep_id)
                unknown.append(dep_id)
        if unknown:
            self._actions.append(QueryHub(tuple(sorted(unknown))))
        self._reconsider(record)
        return self._flush()

    def finish(self, task_id: str, engine_id: int, success: bool, now: float) -> list[Action]:
        """Engine ``engine_id`` replied to ``task_id`` (its dependencies were met).

        The shell keeps the reply until the task's final ``Deliver`` or ``Fail``:
        a failure being retried is delivered later if no engine can take it.
        ``Send`` actions come first: with a small ``hwm`` the engine idles until
        its next task arrives, while a client can take its reply a little later.
        """
        task = self._running(task_id, engine_id)
        if task is None:
            return []
        self._leave_engine(task)
        self._engines[engine_id].completed += 1
        if success:
            self._conclude(task, Deliver(task_id), success=True)
        elif task.retries_left > 0:
            task.retries_left -= 1
            task.exclude(engine_id)
            task.has_failed_reply = True
            task.fallback_error = None
            self._requeue(task)
        else:
            self._conclude(task, Deliver(task_id), success=False)
        self._drain(engine_id)
        actions = self._flush()
        return [a for a in actions if isinstance(a, Send)] + [a for a in actions if not isinstance(a, Send)]

    def unmet(self, task_id: str, engine_id: int, now: float) -> list[Action]:
        """Engine ``engine_id`` raised UnmetDependency for ``task_id``: never send it there again."""
        task = self._running(task_id, engine_id)
        if task is None:
            return []
        self._leave_engine(task)
        task.exclude(engine_id)
        self._requeue(task)
        self._drain(engine_id)
        return self._flush()

    def abort(self, task_ids: list[str], now: float) -> list[Action]:
        """A client aborted tasks: those not yet sent to an engine fail with TaskAborted.

        Running tasks are left alone; the engine aborts them if they are still queued there.
        """
        for task_id in task_ids:
            task = self._tasks.get(task_id)
            if task is not None and task.state is not TaskState.RUNNING:
                self._give_up(task, "TaskAborted", "aborted before it was assigned to an engine")
        return self._flush()

    def tick(self, now: float) -> list[Action]:
        """Fail unassigned tasks whose timeout has expired by ``now``."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, _, task_id = heapq.heappop(deadlines)
            task = self._tasks.get(task_id)
            if task is not None and task.state is not TaskState.RUNNING:
                evalue = f"task was not assigned within its {task.spec.timeout}s timeout"
                self._give_up(task, "DependencyTimeout", evalue)
        return self._flush()

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has work to do (``now`` units), or None."""
        deadlines = self._deadlines
        while deadlines:
            task = self._tasks.get(deadlines[0][2])
            if task is not None and task.state is not TaskState.RUNNING:
                return deadlines[0][0]
            heapq.heappop(deadlines)
        return None

    def external_result(self, msg_id: str, success: bool, engine_id: int | None, now: float) -> list[Action]:
        """The hub reports that ``msg_id``, not run by this scheduler, has finished.

        ``engine_id`` is where it ran (None if nowhere); it matters for ``follow``.
        Reports about ids the core already knows are ignored.
        """
        if msg_id in self._tasks or msg_id in self._finished:
            return []
        self._awaiting_hub.discard(msg_id)
        self._record(msg_id, _Outcome(success, engine_id))
        return self._flush()

    def external_unknown(self, msg_id: str, now: float) -> list[Action]:
        """The hub has never heard of ``msg_id``: tasks waiting on it are invalid."""
        if msg_id in self._tasks or msg_id in self._finished:
            return []
        self._awaiting_hub.discard(msg_id)
        for task_id in self._dependents.pop(msg_id, ()):
            task = self._tasks.get(task_id)
            if task is not None and task.state is not TaskState.RUNNING:
                self._give_up(task, "InvalidDependency", f"dependency {msg_id!r} is not a known task")
        return self._flush()

    # ---------------------------------------------------------------- queries

    def is_known(self, task_id: str) -> bool:
        """Whether ``task_id`` is unfinished here or in the finished window."""
        return task_id in self._tasks or task_id in self._finished

    @property
    def engine_ids(self) -> list[int]:
        """Live engines, least recently used first."""
        return list(self._lru)

    def statistics(self) -> dict[str, Any]:
        """Counts for logs and monitoring.

        Returns
        -------
        dict
            ``engines``, ``waiting``, ``ready``, ``running`` (per engine id),
            ``finished_window`` (outcomes remembered) and ``awaiting_hub``.
        """
        return {
            "engines": len(self._engines),
            "waiting": self._counts[TaskState.WAITING],
            "ready": self._counts[TaskState.READY],
            "running": {engine_id: len(e.outstanding) for engine_id, e in self._engines.items()},
            "finished_window": len(self._finished),
            "awaiting_hub": len(self._awaiting_hub),
        }

    def queue_status(self) -> dict[int | str, Any]:
        """This scheduler's part of ``Client.queue_status()``.

        Returns
        -------
        dict
            ``{engine_id: {"queue": n, "completed": n, "tasks": n}, "unassigned": n}``
            where ``queue`` and ``tasks`` count the engine's outstanding tasks,
            ``completed`` the replies it sent, and ``unassigned`` the waiting and
            ready tasks.
        """
        status: dict[int | str, Any] = {
            engine_id: {"queue": len(e.outstanding), "completed": e.completed, "tasks": len(e.outstanding)}
            for engine_id, e in self._engines.items()
        }
        status["unassigned"] = self._counts[TaskState.WAITING] + self._counts[TaskState.READY]
        return status

    # --------------------------------------------------------------- internals

    def _flush(self) -> list[Action]:
        while self._resolutions:
            dep_id, outcome = self._resolutions.popleft()
            self._awaiting_hub.discard(dep_id)
            for task_id in self._dependents.pop(dep_id, ()):
                task = self._tasks.get(task_id)
                if task is None:
                    continue
                grew = self._apply(task, dep_id, outcome)
                if task.state is not TaskState.RUNNING:
                    self._reconsider(task, eligibility_grew=grew)
        actions, self._actions = self._actions, []
        return actions

    def _apply(self, task: ScheduledTask, dep_id: str, outcome: _Outcome) -> bool:
        added = task.resolve(dep_id, outcome.success, outcome.engine_id, self._engines)
        if added is None:
            return False
        self._follow_index.setdefault(added, set()).add(task.task_id)
        return True

    def _record(self, task_id: str, outcome: _Outcome) -> None:
        self._finished[task_id] = outcome
        self._finished_order.append(task_id)
        while len(self._finished_order) > self.finished_window:
            del self._finished[self._finished_order.popleft()]
        self._resolutions.append((task_id, outcome))

    def _set_state(self, task: ScheduledTask, state: TaskState) -> None:
        self._counts[task.state] -= 1
        self._counts[state] += 1
        task.state = state

    def _running(self, task_id: str, engine_id: int) -> ScheduledTask | None:
        task = self._tasks.get(task_id)
        if task is None or task.state is not TaskState.RUNNING or task.engine_id != engine_id:
            return None
        return task

    def _leave_engine(self, task: ScheduledTask) -> None:
        engine = self._engines.get(task.engine_id) if task.engine_id is not None else None
        if engine is not None:
            del engine.outstanding[task.task_id]
        task.engine_id = None
        self._set_state(task, TaskState.WAITING)

    def _requeue(self, task: ScheduledTask) -> None:
        """Place a task again after it left an engine without finishing."""
        if task.deadline_at is not None:
            self._push_deadline(task)
        self._reconsider(task)

    def _reconsider(self, task: ScheduledTask, eligibility_grew: bool = False) -> None:
        """Act on what the task's dependencies allow now (task is not RUNNING)."""
        verdict, reason = task.verdict()
        if verdict is Verdict.IMPOSSIBLE:
            self._give_up(task, "ImpossibleDependency", reason)
        elif verdict is Verdict.WAIT:
            if task.state is TaskState.READY:
                self._ready_restricted.pop(task.task_id, None)
                self._set_state(task, TaskState.WAITING)
        elif task.state is TaskState.WAITING or eligibility_grew:
            self._make_ready(task)

    def _eligible_engines(self, task: ScheduledTask) -> list[int]:
        if not task.is_restricted:
            return list(self._lru)
        return [engine_id for engine_id in self._lru if task.may_run_on(engine_id)]

    def _is_hopeless(self, task: ScheduledTask) -> bool:
        """No live engine may run the task, and none that may is still to come.

        With no engines at all, tasks wait for one. A target id above every id
        seen so far is an engine the client already knows and the scheduler will
        hear of shortly (ids are handed out in order and never reused).
        """
        if not self._engines or self._eligible_engines(task):
            return False
        if task.targets is not None:
            return not any(t > self._highest_engine_id and t not in task.blacklist for t in task.targets)
        return True

    def _has_room(self, engine: _EngineSlot) -> bool:
        return self.hwm == 0 or len(engine.outstanding) < self.hwm

    def _make_ready(self, task: ScheduledTask) -> None:
        """Send the task to an engine with room, or queue it for one."""
        self._ready_restricted.pop(task.task_id, None)
        eligible = self._eligible_engines(task)
        if not eligible and self._is_hopeless(task):
            self._give_up(task, "ImpossibleDependency", self._why_no_engine(task))
            return
        free = [engine_id for engine_id in eligible if self._has_room(self._engines[engine_id])]
        if free:
            loads = [len(self._engines[engine_id].outstanding) for engine_id in free]
            self._dispatch(task, free[self._scheme(loads, self._rng)])
            return
        self._seq += 1
        task.ready_seq = self._seq
        if task.state is not TaskState.READY:
            self._set_state(task, TaskState.READY)
        entry = (task.ready_seq, task.task_id)
        if task.is_restricted:
            self._ready_restricted[task.task_id] = None
            for engine_id in eligible:
                self._engines[engine_id].queue.append(entry)
        else:
            self._ready_any.append(entry)

    def _why_no_engine(self, task: ScheduledTask) -> str:
        reasons = []
        if task.targets is not None:
            reasons.append(f"targets {sorted(task.targets)}")
        if task.blacklist:
            reasons.append(f"engines {sorted(task.blacklist)} excluded (unmet dependency or failed run)")
        if task.follow.total:
            reasons.append("'follow' location")
        return f"no live engine may run the task ({'; '.join(reasons) or 'none registered'})"

    def _dispatch(self, task: ScheduledTask, engine_id: int) -> None:
        self._ready_restricted.pop(task.task_id, None)
        self._set_state(task, TaskState.RUNNING)
        task.engine_id = task.last_engine_id = engine_id
        self._engines[engine_id].outstanding[task.task_id] = None
        self._lru.move_to_end(engine_id)
        self._actions.append(Send(task.task_id, engine_id))

    def _is_current(self, task: ScheduledTask, seq: int) -> bool:
        return task.state is TaskState.READY and task.ready_seq == seq

    def _head(self, queue: deque[tuple[int, str]]) -> tuple[int, str] | None:
        while queue:
            seq, task_id = queue[0]
            task = self._tasks.get(task_id)
            if task is not None and self._is_current(task, seq):
                return queue[0]
            queue.popleft()
        return None

    def _drain(self, engine_id: int) -> None:
        """Fill the free slots of one engine with the oldest tasks it may run."""
        engine = self._engines.get(engine_id)
        if engine is None:
            return
        while self._has_room(engine):
            shared, own = self._head(self._ready_any), self._head(engine.queue)
            if shared is None and own is None:
                return
            if own is None or (shared is not None and shared[0] < own[0]):
                self._ready_any.popleft()
                chosen = shared
            else:
                engine.queue.popleft()
                chosen = own
            assert chosen is not None
            self._dispatch(self._tasks[chosen[1]], engine_id)

    def _give_up(self, task: ScheduledTask, ename: str, evalue: str) -> None:
        """End an unassigned task that cannot (or can no longer) be placed."""
        if task.has_failed_reply:
            action: Action = Deliver(task.task_id)
        elif task.fallback_error is not None:
            action = Fail(task.task_id, *task.fallback_error)
        else:
            action = Fail(task.task_id, ename, evalue)
        self._conclude(task, action)

    def _conclude(self, task: ScheduledTask, action: Action, success: bool = False) -> None:
        """The task is finished: forget it, emit its final action, resolve its dependents."""
        task_id = task.task_id
        del self._tasks[task_id]
        self._counts[task.state] -= 1
        self._ready_restricted.pop(task_id, None)
        for engine_id in task.follow_engines:
            followers = self._follow_index.get(engine_id)
            if followers is not None:
                followers.discard(task_id)
                if not followers:
                    del self._follow_index[engine_id]
        self._actions.append(action)
        self._record(task_id, _Outcome(success, task.last_engine_id))

    def _push_deadline(self, task: ScheduledTask) -> None:
        assert task.deadline_at is not None
        self._seq += 1
        heapq.heappush(self._deadlines, (task.deadline_at, self._seq, task.task_id))
        if len(self._deadlines) > 64 and len(self._deadlines) > 2 * len(self._tasks):
            # Entries of finished or running tasks are dead weight; dropping them
            # keeps the heap O(unassigned tasks) at O(1) amortized cost.
            self._deadlines = [
                entry
                for entry in self._deadlines
                if (t := self._tasks.get(entry[2])) is not None and t.state is not TaskState.RUNNING
            ]
            heapq.heapify(self._deadlines)

    # ------------------------------------------------------------- invariants

    def validate(self) -> None:
        """Assert the internal invariants (for tests; O(everything)).

        Raises
        ------
        AssertionError
            Naming the broken invariant.
        """
        check_invariants(self)
