"""Per-task bookkeeping of the task scheduler core.

A :class:`ScheduledTask` keeps, for one unfinished task, counters instead of
sets: how many of its ``after`` and ``follow`` ids succeeded or failed so far,
and on which live engines the relevant ``follow`` ids ran. Recording one
finished dependency is O(1), and so is asking whether the task can run, must
wait, or never can (:meth:`ScheduledTask.verdict`). The rules are those of
:meth:`taskyard.dependency.Dependency.check` and ``unreachable``, counted.
"""

from __future__ import annotations

import enum
from collections.abc import Container
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from taskyard.controller.scheduler_actions import TaskSpec
from taskyard.dependency import Dependency

__all__ = ["DependencyProgress", "ScheduledTask", "TaskState", "Verdict"]


class TaskState(enum.Enum):
    """Where an unfinished task is."""

    WAITING = "waiting"  # dependencies not (yet) met
    READY = "ready"  # may run, queued for an engine slot
    RUNNING = "running"  # sent to an engine, no reply yet


class Verdict(enum.Enum):
    """What a task's dependencies allow right now."""

    WAIT = "wait"
    RUN = "run"
    IMPOSSIBLE = "impossible"


@dataclass(slots=True)
class DependencyProgress:
    """How far one Dependency is: counts of its ids that succeeded or failed."""

    total: int
    all: bool
    #: which outcomes count as done (Dependency.success / .failure)
    counts_success: bool = True
    counts_failure: bool = False
    succeeded: int = 0
    failed: int = 0

    @classmethod
    def of(cls, dependency: Dependency) -> DependencyProgress:
        return cls(len(dependency), dependency.all, dependency.success, dependency.failure)

    def record(self, success: bool) -> None:
        if success:
            self.succeeded += 1
        else:
            self.failed += 1

    def counts(self, success: bool) -> bool:
        """Whether an id that ended so counts as done."""
        return self.counts_success if success else self.counts_failure

    @property
    def unresolved(self) -> int:
        return self.total - self.succeeded - self.failed

    def is_met(self) -> bool:
        if self.total == 0:
            return True
        done = (self.succeeded if self.counts_success else 0) + (self.failed if self.counts_failure else 0)
        return done == self.total if self.all else done >= 1

    def why_lost(self) -> str:
        """What made it unreachable, in words."""
        if not self.counts_success and self.succeeded:
            return "succeeded where only failures count"
        return "failed"

    def is_unreachable(self) -> bool:
        if self.total == 0:
            return False
        lost = (0 if self.counts_success else self.succeeded) + (0 if self.counts_failure else self.failed)
        return lost >= 1 if self.all else lost == self.total


_NO_ENGINES: frozenset[int] = frozenset()
_NO_DEPENDENCY = Dependency()
_NO_PROGRESS = DependencyProgress(0, True)


@dataclass(slots=True, eq=False)
class ScheduledTask:
    """One unfinished task and everything the core knows about it."""

    spec: TaskSpec
    after_ids: Dependency
    follow_ids: Dependency
    after: DependencyProgress
    follow: DependencyProgress
    targets: frozenset[int] | None
    retries_left: int
    deadline_at: float | None
    state: TaskState = TaskState.WAITING
    # Engines it must not go to again. Both sets start as one shared empty
    # frozenset and are replaced, never mutated: most tasks never need either,
    # and 100,000 queued tasks should not carry 200,000 empty sets.
    blacklist: AbstractSet[int] = _NO_ENGINES
    # Live engines where a relevant follow id ran (one whose outcome counts, see
    # DependencyProgress.counts). With all=True more than one of them makes it impossible.
    follow_engines: AbstractSet[int] = _NO_ENGINES
    # all=True follow only: a relevant follow id ran nowhere or on a dead engine.
    follow_lost: bool = False
    engine_id: int | None = None  # while RUNNING
    last_engine_id: int | None = None
    ready_seq: int = -1  # identifies the current queue entries while READY
    # How to end the task if it cannot be placed while waiting for a retry:
    # forward the kept failure reply, or fail with the recorded error.
    has_failed_reply: bool = False
    fallback_error: tuple[str, str] | None = None

    @classmethod
    def from_spec(cls, spec: TaskSpec, now: float) -> ScheduledTask:
        # Tasks without dependencies share one empty Dependency and one progress
        # record: neither is ever changed (progress is recorded only for ids in the set).
        after_ids = spec.after if spec.after else _NO_DEPENDENCY
        follow_ids = spec.follow if spec.follow else _NO_DEPENDENCY
        timeout = spec.timeout
        return cls(
            spec=spec,
            after_ids=after_ids,
            follow_ids=follow_ids,
            after=DependencyProgress.of(after_ids) if after_ids else _NO_PROGRESS,
            follow=DependencyProgress.of(follow_ids) if follow_ids else _NO_PROGRESS,
            targets=frozenset(spec.targets) if spec.targets is not None else None,
            retries_left=max(0, spec.retries),
            deadline_at=now + timeout if timeout else None,
        )

    @property
    def task_id(self) -> str:
        return self.spec.task_id

    @property
    def is_restricted(self) -> bool:
        """Whether some live engine may be unable to run it."""
        return self.targets is not None or bool(self.blacklist) or self.follow.total > 0

    def may_run_on(self, engine_id: int) -> bool:
        if self.targets is not None and engine_id not in self.targets:
            return False
        if engine_id in self.blacklist:
            return False
        return self.follow.total == 0 or engine_id in self.follow_engines

    def resolve(self, dep_id: str, success: bool, engine_id: int | None, live: Container[int]) -> int | None:
        """Count a finished dependency; return the engine newly added to the follow set."""
        if dep_id in self.after_ids:
            self.after.record(success)
        if dep_id not in self.follow_ids:
            return None
        self.follow.record(success)
        if not self.follow.counts(success):
            return None
        if engine_id is None or engine_id not in live:
            if self.follow.all:
                self.follow_lost = True
            return None
        if engine_id in self.follow_engines:
            return None
        self.follow_engines = {*self.follow_engines, engine_id}
        return engine_id

    def exclude(self, engine_id: int) -> None:
        """Never send this task to ``engine_id`` again."""
        if engine_id not in self.blacklist:
            self.blacklist = {*self.blacklist, engine_id}

    def lose_engine(self, engine_id: int) -> None:
        """An engine in the follow set died."""
        self.follow_engines = self.follow_engines - {engine_id}
        if self.follow.all:
            self.follow_lost = True

    def verdict(self) -> tuple[Verdict, str]:
        """Whether the dependencies let the task run now, later, or never (and why not)."""
        if self.after.is_unreachable():
            return Verdict.IMPOSSIBLE, f"an 'after' dependency {self.after.why_lost()}, so it can never be met"
        follow_met = True
        if self.follow.total:
            if self.follow.is_unreachable():
                return Verdict.IMPOSSIBLE, f"a 'follow' dependency {self.follow.why_lost()}, so it can never be met"
            if self.follow.all:
                if self.follow_lost:
                    return Verdict.IMPOSSIBLE, "a 'follow' dependency ran on an engine that is gone"
                if len(self.follow_engines) > 1:
                    return Verdict.IMPOSSIBLE, "'follow' dependencies (all=True) ran on more than one engine"
                follow_met = self.follow.is_met()
            elif not self.follow_engines:
                if self.follow.unresolved == 0:
                    return Verdict.IMPOSSIBLE, "no 'follow' dependency ran on an engine that is still alive"
                follow_met = False
        if follow_met and self.after.is_met():
            return Verdict.RUN, ""
        return Verdict.WAIT, ""
