"""Values that cross the boundary of the task scheduler core.

:class:`TaskSpec` is what the shell hands the core for a new task (parsed from
the request's metadata); the action classes are what the core hands back for the
shell to carry out. None of them holds a message, a socket or a buffer: the
shell keys its own copies of requests and replies by ``task_id``.
"""

from __future__ import annotations

from dataclasses import dataclass

from taskyard.dependency import Dependency

__all__ = ["Action", "Deliver", "Fail", "QueryHub", "Send", "TaskSpec"]


@dataclass
class TaskSpec:
    """A load-balanced task as the scheduler sees it.

    Parameters
    ----------
    task_id : str
        The request's msg_id.
    after : Dependency or None
        Time dependencies: run only once these are met.
    follow : Dependency or None
        Location dependencies: run only where these ran.
    targets : list of int or None
        If given, only these engines may run the task.
    timeout : float or None
        Seconds the task may stay unassigned before it fails with
        ``DependencyTimeout``; ``None`` or ``0`` means never.
    retries : int
        How many times a failed run (or a run lost with its engine) is tried
        again on another engine.
    """

    task_id: str
    after: Dependency | None = None
    follow: Dependency | None = None
    targets: list[int] | None = None
    timeout: float | None = None
    retries: int = 0


@dataclass(frozen=True, slots=True)
class Send:
    """Send the request of ``task_id`` to engine ``engine_id``.

    The shell also tells the hub the task's destination.
    """

    task_id: str
    engine_id: int


@dataclass(frozen=True, slots=True)
class Fail:
    """The scheduler fails ``task_id`` itself, without (another) engine reply.

    The shell answers the client with an error reply whose ``ename`` is the
    name of a :mod:`taskyard.error` class (``"ImpossibleDependency"``,
    ``"DependencyTimeout"``, ``"InvalidDependency"`` or ``"EngineError"``) and
    whose ``evalue`` is the explanation, and drops any reply it kept.
    """

    task_id: str
    ename: str
    evalue: str


@dataclass(frozen=True, slots=True)
class Deliver:
    """The latest engine reply for ``task_id`` is final: forward it to the client.

    Emitted for a success, for a failure with no retries left, and for a task
    waiting to be retried that no engine can take any more (then the reply to
    forward is the last failure the shell kept).
    """

    task_id: str


@dataclass(frozen=True, slots=True)
class QueryHub:
    """Ask the hub about dependency ids the scheduler does not know.

    For each id the shell later calls ``external_result`` (the hub knows it and
    it has finished), or ``external_unknown`` (the hub has never heard of it).
    """

    msg_ids: tuple[str, ...]


Action = Send | Fail | Deliver | QueryHub
"""Anything an event of :class:`~taskyard.controller.scheduler_state.TaskSchedulerState` returns."""
