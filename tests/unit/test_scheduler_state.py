"""The sans-IO task scheduler core, driven directly with a fake clock.

Every event goes through :class:`Core`, which calls ``validate()`` after it.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from taskyard.controller.scheduler_actions import Action, Deliver, Fail, QueryHub, Send, TaskSpec
from taskyard.controller.scheduler_state import TaskSchedulerState
from taskyard.dependency import Dependency
from taskyard.error import ConfigError


class Core:
    """A TaskSchedulerState with a clock, validated after every event."""

    def __init__(self, seed: int = 0, **options: Any) -> None:
        self.state = TaskSchedulerState(rng=random.Random(seed), **options)
        self.now = 0.0
        self.state.validate()

    def _run(self, actions: list[Action]) -> list[Action]:
        self.state.validate()
        return actions

    def engines(self, *engine_ids: int) -> list[Action]:
        actions: list[Action] = []
        for engine_id in engine_ids:
            actions += self._run(self.state.add_engine(engine_id, self.now))
        return actions

    def remove(self, engine_id: int) -> list[Action]:
        return self._run(self.state.remove_engine(engine_id, self.now))

    def submit(self, task_id: str, **spec: Any) -> list[Action]:
        return self._run(self.state.submit(TaskSpec(task_id, **spec), self.now))

    def finish(self, task_id: str, engine_id: int, success: bool = True) -> list[Action]:
        return self._run(self.state.finish(task_id, engine_id, success, self.now))

    def unmet(self, task_id: str, engine_id: int) -> list[Action]:
        return self._run(self.state.unmet(task_id, engine_id, self.now))

    def tick(self, now: float) -> list[Action]:
        self.now = now
        return self._run(self.state.tick(now))

    def external(self, msg_id: str, success: bool, engine_id: int | None = None) -> list[Action]:
        return self._run(self.state.external_result(msg_id, success, engine_id, self.now))

    def unknown(self, msg_id: str) -> list[Action]:
        return self._run(self.state.external_unknown(msg_id, self.now))


def dep(*ids: str, all: bool = True, success_only: bool = True) -> Dependency:  # noqa: A002
    return Dependency(list(ids), all=all, success_only=success_only)


def sent(actions: list[Action]) -> list[tuple[str, int]]:
    return [(a.task_id, a.engine_id) for a in actions if isinstance(a, Send)]


def failed(actions: list[Action]) -> dict[str, str]:
    return {a.task_id: a.ename for a in actions if isinstance(a, Fail)}


# ------------------------------------------------------------------ basics


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="leastload"):
        TaskSchedulerState(scheme="nope")
    with pytest.raises(ConfigError, match="pure"):
        TaskSchedulerState(scheme="pure")
    with pytest.raises(ConfigError, match="hwm"):
        TaskSchedulerState(hwm=-1)
    with pytest.raises(ConfigError, match="finished_window"):
        TaskSchedulerState(finished_window=-1)


def test_tasks_wait_without_engines_then_go_fifo() -> None:
    core = Core()
    for name in "abc":
        assert core.submit(name) == []
    assert core.state.statistics()["ready"] == 3
    assert sent(core.engines(0)) == [("a", 0)]
    # the freed engine's next task goes out before the finished task's reply
    assert core.finish("a", 0) == [Send("b", 0), Deliver("a")]
    assert core.finish("b", 0) == [Send("c", 0), Deliver("b")]
    assert core.finish("c", 0) == [Deliver("c")]
    assert core.state.queue_status() == {0: {"queue": 0, "completed": 3, "tasks": 0}, "unassigned": 0}


def test_hwm_caps_outstanding_per_engine() -> None:
    core = Core(hwm=2)
    core.engines(0, 1)
    actions = [a for i in range(6) for a in core.submit(f"t{i}")]
    assert len(sent(actions)) == 4
    assert core.state.statistics()["running"] == {0: 2, 1: 2}
    assert core.state.queue_status()["unassigned"] == 2
    assert sent(core.finish("t0", sent(actions)[0][1])) == [("t4", sent(actions)[0][1])]


def test_hwm_zero_is_unlimited() -> None:
    core = Core(hwm=0)
    for i in range(10):
        core.submit(f"t{i}")
    actions = core.engines(0)
    assert len(sent(actions)) == 10  # all queued tasks go to the only engine
    actions = core.engines(1)
    assert actions == []
    spread = [engine for i in range(10, 20) for _, engine in sent(core.submit(f"t{i}"))]
    assert spread.count(1) == 10  # leastload: engine 1 has fewer until it catches up
    assert core.state.statistics()["running"] == {0: 10, 1: 10}


def test_new_engine_is_least_recently_used() -> None:
    core = Core(scheme="lru", hwm=0)
    core.engines(0, 1)
    assert core.state.engine_ids == [1, 0]
    assert sent(core.submit("a")) == [("a", 1)]
    assert sent(core.submit("b")) == [("b", 0)]
    core.engines(2)
    assert sent(core.submit("c")) == [("c", 2)]


def test_duplicate_submit_and_stale_replies_are_ignored() -> None:
    core = Core()
    core.engines(0)
    core.submit("a")
    assert core.submit("a") == []
    assert core.finish("a", 5) == []  # wrong engine
    assert core.unmet("nope", 0) == []
    core.finish("a", 0)
    assert core.submit("a") == []  # replay of a finished request
    assert core.finish("a", 0) == []
    assert core.state.is_known("a") and not core.state.is_known("b")
    with pytest.raises(ValueError, match="already registered"):
        core.state.add_engine(0, 0.0)
    assert core.remove(7) == []


def test_fifo_among_equally_eligible_tasks() -> None:
    core = Core()
    core.engines(0)
    core.submit("blocker")
    for i in range(20):
        core.submit(f"t{i}")
    order = []
    running = "blocker"
    while running:
        actions = core.finish(running, 0)
        running = sent(actions)[0][0] if sent(actions) else ""
        order.append(running)
    assert order[:-1] == [f"t{i}" for i in range(20)]


def test_fifo_across_shared_and_restricted_queues() -> None:
    core = Core()
    core.engines(0, 1)
    assert sent(core.submit("x")) == [("x", 1)]  # the newest engine is the least recently used
    assert sent(core.submit("y")) == [("y", 0)]
    core.submit("free1")
    core.submit("only0", targets=[0])
    core.submit("free2")
    assert sent(core.finish("y", 0)) == [("free1", 0)]
    assert sent(core.finish("x", 1)) == [("free2", 1)]
    assert sent(core.finish("free1", 0)) == [("only0", 0)]


# ------------------------------------------------------------- after / follow


def test_after_waits_for_success() -> None:
    core = Core()
    core.engines(0, 1)
    core.submit("a")
    assert core.submit("b", after=dep("a")) == []
    assert core.state.statistics()["waiting"] == 1
    actions = core.finish("a", 1)
    assert actions == [Send("b", 0), Deliver("a")]
    assert sent(actions) == [("b", 0)]  # both idle; 0 was used longer ago


def test_failed_dependency_cascades_at_once() -> None:
    core = Core()
    core.engines(0)
    core.submit("a")
    core.submit("b", after=dep("a"))
    core.submit("c", after=dep("b"))
    core.submit("d", after=dep("a", success_only=False))
    core.submit("e", after=dep("c", "d", all=False))
    actions = core.finish("a", 0, success=False)
    assert actions[0] == Send("d", 0)  # the engine's next task first
    assert actions[1] == Deliver("a")
    assert failed(actions) == {"b": "ImpossibleDependency", "c": "ImpossibleDependency"}
    assert sent(actions) == [("d", 0)]
    # e needs c or d: c is impossible but d may still succeed.
    assert core.state.statistics()["waiting"] == 1
    assert sent(core.finish("d", 0)) == [("e", 0)]


def test_any_dependency_impossible_only_when_all_failed() -> None:
    core = Core()
    core.engines(0)
    core.submit("a")
    core.submit("b", after=dep("a", "x", all=False))
    core.submit("x", targets=[0])
    actions = core.finish("a", 0, success=False)
    assert failed(actions) == {}
    assert sent(actions) == [("x", 0)]
    assert failed(core.finish("x", 0, success=False)) == {"b": "ImpossibleDependency"}


def test_dependency_on_finished_task_resolves_at_submit() -> None:
    core = Core()
    core.engines(0)
    core.submit("a")
    core.finish("a", 0, success=False)
    assert failed(core.submit("b", after=dep("a"))) == {"b": "ImpossibleDependency"}
    assert sent(core.submit("c", after=dep("a", success_only=False))) == [("c", 0)]


def test_follow_runs_where_dependency_ran() -> None:
    core = Core(hwm=0)
    core.engines(0, 1, 2)
    assert sent(core.submit("a")) == [("a", 2)]
    core.submit("f", follow=dep("a"))
    assert sent(core.finish("a", 2)) == [("f", 2)]
    for i in range(5):
        assert sent(core.submit(f"g{i}", follow=dep("a"))) == [(f"g{i}", 2)]


def test_follow_waits_for_a_busy_engine() -> None:
    core = Core()
    core.engines(0, 1)
    core.submit("a")  # -> 1
    core.finish("a", 1)
    core.submit("busy", targets=[1])
    assert core.submit("f", follow=dep("a")) == []
    assert core.submit("other") == [Send("other", 0)]
    assert sent(core.finish("busy", 1)) == [("f", 1)]


def test_follow_on_more_than_one_engine_is_impossible() -> None:
    core = Core(hwm=0)
    core.engines(0, 1)
    core.submit("a", targets=[0])
    core.submit("b", targets=[1])
    core.submit("f", follow=dep("a", "b"))
    core.submit("any", follow=dep("a", "b", all=False))
    core.finish("a", 0)
    actions = core.finish("b", 1)
    assert failed(actions) == {"f": "ImpossibleDependency"}
    assert sent(core.submit("late", follow=dep("a", "b"))) == []
    assert core.state.statistics()["waiting"] == 0


def test_follow_any_uses_any_engine_where_one_ran() -> None:
    core = Core()
    core.engines(0, 1, 2)
    core.submit("a", targets=[0])
    core.submit("b", targets=[1])
    core.submit("f", follow=dep("a", "b", all=False))
    assert sent(core.finish("b", 1)) == [("f", 1)]


def test_follow_success_only_false_counts_failed_runs() -> None:
    core = Core()
    core.engines(0, 1)
    core.submit("a", targets=[0])
    core.submit("f", follow=dep("a", success_only=False))
    assert sent(core.finish("a", 0, success=False)) == [("f", 0)]
    # A dependency the scheduler failed ran nowhere: there is no place to follow it.
    core.engines(2)
    core.remove(2)
    core.submit("z", targets=[2])
    assert failed(core.submit("g", follow=dep("z", success_only=False))) == {"g": "ImpossibleDependency"}


def test_follow_dependents_of_a_dead_engine_fail() -> None:
    core = Core()
    core.engines(0, 1)
    core.submit("a", targets=[0])
    core.finish("a", 0)
    core.submit("busy", targets=[0])
    core.submit("waiting", follow=dep("a"))
    core.submit("pending", after=dep("busy"), follow=dep("a"))
    actions = core.remove(0)
    assert failed(actions) == {
        "busy": "EngineError",
        "waiting": "ImpossibleDependency",
        "pending": "ImpossibleDependency",
    }
    assert failed(core.submit("new", follow=dep("a"))) == {"new": "ImpossibleDependency"}
    assert failed(core.submit("new_any", follow=dep("a", all=False))) == {"new_any": "ImpossibleDependency"}


def test_follow_any_survives_losing_one_engine() -> None:
    core = Core()
    core.engines(0, 1, 2)
    core.submit("a", targets=[0])
    core.submit("b", targets=[1])
    core.finish("a", 0)
    core.finish("b", 1)
    core.submit("block0", targets=[0])
    core.submit("block1", targets=[1])
    assert core.submit("f", follow=dep("a", "b", all=False)) == []  # 0 and 1 are busy
    assert core.remove(0) != []  # block0 fails with its engine
    assert core.state.statistics()["ready"] == 1
    assert sent(core.finish("block1", 1)) == [("f", 1)]


def test_follow_any_waits_for_more_when_its_engine_died() -> None:
    core = Core()
    core.engines(0, 1)
    core.submit("a", targets=[0])
    core.submit("b", targets=[1])
    core.submit("busy", after=dep("a"), targets=[0])
    core.submit("f", follow=dep("a", "b", all=False))
    core.finish("a", 0)  # f may go to 0 but it is busy now
    assert core.state.statistics()["ready"] == 1
    core.remove(0)
    assert core.state.statistics()["waiting"] == 1  # back to waiting for b
    assert sent(core.finish("b", 1)) == [("f", 1)]


# ------------------------------------------------------ targets and blacklists


def test_targets_restrict_engines() -> None:
    core = Core(hwm=0)
    core.engines(0, 1, 2)
    for i in range(6):
        assert sent(core.submit(f"t{i}", targets=[0, 2]))[0][1] in (0, 2)
    assert core.state.statistics()["running"][1] == 0


def test_targets_none_alive() -> None:
    core = Core()
    assert core.submit("early", targets=[3]) == []  # no engines at all: wait
    # Engine 3 may still come (ids are handed out in order): keep waiting.
    assert core.engines(0, 1) == []
    core.remove(1)
    assert failed(core.submit("t", targets=[1])) == {"t": "ImpossibleDependency"}
    assert failed(core.submit("empty", targets=[])) == {"empty": "ImpossibleDependency"}
    assert sent(core.submit("wait3", targets=[3, 0])) == [("wait3", 0)]
    assert core.submit("q3", targets=[3, 0]) == []
    assert sent(core.engines(3)) == [("early", 3)]
    assert sent(core.finish("early", 3)) == [("q3", 3)]
    # Once engine 3 has been seen and is gone, a task only it could run is hopeless.
    core.finish("q3", 3)
    core.remove(3)
    assert failed(core.submit("late", targets=[3])) == {"late": "ImpossibleDependency"}


def test_unmet_reroutes_and_blacklists() -> None:
    core = Core(hwm=0)
    core.engines(0, 1, 2)
    assert sent(core.submit("t")) == [("t", 2)]
    assert sent(core.unmet("t", 2)) == [("t", 1)]
    assert sent(core.unmet("t", 1)) == [("t", 0)]
    actions = core.unmet("t", 0)
    assert failed(actions) == {"t": "ImpossibleDependency"}
    assert "excluded" in next(a.evalue for a in actions if isinstance(a, Fail))


def test_unmet_task_waits_for_a_slot_not_a_blacklisted_engine() -> None:
    core = Core()
    core.engines(0, 1)
    core.submit("t")  # -> 1
    core.submit("busy")  # -> 0
    assert core.unmet("t", 1) == []  # 0 is full; 1 is excluded and stays idle for t
    assert core.submit("other") == [Send("other", 1)]
    assert sent(core.finish("busy", 0)) == [("t", 0)]


def test_blacklisted_task_fails_when_the_last_allowed_engine_dies() -> None:
    core = Core()
    core.engines(0, 1)
    core.submit("t")
    core.submit("busy", targets=[0])
    core.unmet("t", 1)
    assert core.state.statistics()["ready"] == 1
    actions = core.remove(0)
    assert failed(actions) == {"busy": "EngineError", "t": "ImpossibleDependency"}


def test_unmet_with_no_engines_left_waits_for_new_engines() -> None:
    core = Core()
    core.engines(0)
    core.submit("t")
    assert failed(core.unmet("t", 0)) == {"t": "ImpossibleDependency"}
    core.submit("u")
    core.submit("v", after=dep("u"))
    core.remove(0)
    assert failed(core.state.submit(TaskSpec("w"), 0.0)) == {}


# -------------------------------------------------------------------- retries


def test_retry_on_another_engine() -> None:
    core = Core()
    core.engines(0, 1)
    core.submit("t", retries=1)
    assert core.finish("t", 1, success=False) == [Send("t", 0)]
    assert core.finish("t", 0) == [Deliver("t")]


def test_retries_exhausted_deliver_the_failure() -> None:
    core = Core()
    core.engines(0, 1, 2)
    core.submit("t", retries=2)
    core.submit("after_t", after=dep("t"))
    assert core.finish("t", 2, success=False) == [Send("t", 1)]
    assert core.finish("t", 1, success=False) == [Send("t", 0)]
    actions = core.finish("t", 0, success=False)
    assert actions == [Deliver("t"), Fail("after_t", "ImpossibleDependency", actions[1].evalue)]


def test_retry_with_no_engine_left_delivers_at_once() -> None:
    core = Core()
    core.engines(0)
    core.submit("t", retries=5)
    assert core.finish("t", 0, success=False) == [Deliver("t")]


def test_queued_retry_delivers_when_its_only_engine_dies() -> None:
    core = Core()
    core.engines(0, 1)
    core.submit("t", retries=3)  # -> 1
    core.submit("busy")  # -> 0
    assert core.finish("t", 1, success=False) == []  # waits for engine 0
    actions = core.remove(0)
    assert Deliver("t") in actions
    assert failed(actions) == {"busy": "EngineError"}


def test_engine_death_without_retries_fails_with_engine_error() -> None:
    core = Core()
    core.engines(0, 1)
    core.submit("t")
    core.submit("after_t", after=dep("t"))
    core.submit("after_t_anyway", after=dep("t", success_only=False))
    actions = core.remove(1)
    assert failed(actions) == {"t": "EngineError", "after_t": "ImpossibleDependency"}
    assert sent(actions) == [("after_t_anyway", 0)]
    assert "engine 1 died" in next(a.evalue for a in actions if isinstance(a, Fail) and a.task_id == "t")


def test_engine_death_with_retries_resubmits() -> None:
    core = Core()
    core.engines(0, 1)
    core.submit("t", retries=1)
    assert core.remove(1) == [Send("t", 0)]
    assert core.remove(0) == [Fail("t", "EngineError", "engine 0 died before it replied to task t")]


def test_engine_death_retry_waits_when_no_engines_remain() -> None:
    core = Core()
    core.engines(0)
    core.submit("t", retries=1)
    assert core.remove(0) == []
    assert core.state.queue_status() == {"unassigned": 1}
    assert core.engines(1) == [Send("t", 1)]


def test_requeued_retry_that_times_out_reports_its_engine_error() -> None:
    core = Core()
    core.engines(0, 1)
    core.submit("t", retries=1, timeout=10)
    core.submit("busy")
    core.remove(1)  # t waits for engine 0, busy
    assert core.tick(10.0) == [Fail("t", "EngineError", "engine 1 died before it replied to task t")]


# ------------------------------------------------------------------- timeouts


def test_timeout_while_waiting() -> None:
    core = Core()
    core.engines(0)
    core.submit("a")
    core.submit("b", after=dep("a"), timeout=5)
    assert core.state.next_deadline() == 5.0
    assert core.tick(4.999) == []
    actions = core.tick(5.0)
    assert failed(actions) == {"b": "DependencyTimeout"}
    assert core.state.next_deadline() is None
    assert core.finish("a", 0) == [Deliver("a")]


def test_timeout_while_queued_for_an_engine() -> None:
    core = Core()
    core.now = 100.0
    core.submit("t", timeout=2.5)
    assert core.state.next_deadline() == 102.5
    assert failed(core.tick(103.0)) == {"t": "DependencyTimeout"}


def test_no_timeout_once_assigned() -> None:
    core = Core()
    core.engines(0)
    core.submit("t", timeout=1)
    assert core.state.next_deadline() is None
    assert core.tick(50.0) == []
    assert core.finish("t", 0) == [Deliver("t")]


def test_timeout_counts_from_submission_after_unmet() -> None:
    core = Core()
    core.engines(0, 1)
    core.submit("t", timeout=10)  # -> 1
    core.submit("busy")
    core.now = 4.0
    assert core.unmet("t", 1) == []
    assert core.state.next_deadline() == 10.0
    assert failed(core.tick(10.0)) == {"t": "DependencyTimeout"}


def test_zero_timeout_means_never() -> None:
    core = Core()
    core.submit("t", timeout=0)
    assert core.state.next_deadline() is None


def test_deadline_heap_stays_small() -> None:
    core = Core()
    core.engines(0)
    for i in range(3000):
        core.state.submit(TaskSpec(f"t{i}", timeout=60), 0.0)
        core.state.finish(f"t{i}", 0, True, 0.0)
    core.state.validate()
    assert len(core.state._deadlines) <= 130  # compacted, not one entry per task ever


# ------------------------------------------------------------ ids unknown here


def test_self_dependency_is_invalid() -> None:
    core = Core()
    core.engines(0)
    assert failed(core.submit("t", after=dep("t"))) == {"t": "InvalidDependency"}
    assert failed(core.submit("u", follow=dep("u", "x"))) == {"u": "InvalidDependency"}


def test_unknown_ids_are_asked_of_the_hub_once() -> None:
    core = Core()
    core.engines(0, 1)
    assert core.submit("t", after=dep("x", "y")) == [QueryHub(("x", "y"))]
    assert core.submit("u", follow=dep("x")) == []
    assert core.state.statistics()["awaiting_hub"] == 2
    assert core.external("x", True, engine_id=0) == [Send("u", 0)]
    assert core.external("y", True) == [Send("t", 1)]
    assert core.external("y", False) == []  # already known


def test_unknown_id_makes_dependents_invalid() -> None:
    core = Core()
    core.engines(0)
    core.submit("t", after=dep("ghost"))
    core.submit("u", after=dep("ghost", "other", all=False))
    actions = core.unknown("ghost")
    assert failed(actions) == {"u": "InvalidDependency", "t": "InvalidDependency"}
    assert core.unknown("ghost") == []


def test_external_failure_resolves_dependents() -> None:
    core = Core()
    core.engines(0)
    core.submit("t", after=dep("direct"))
    assert failed(core.external("direct", False, engine_id=0)) == {"t": "ImpossibleDependency"}


def test_external_result_for_our_own_task_is_ignored() -> None:
    core = Core()
    core.engines(0)
    core.submit("a")
    assert core.external("a", False) == []
    assert core.unknown("a") == []
    assert core.finish("a", 0) == [Deliver("a")]


def test_window_eviction_falls_back_to_the_hub() -> None:
    core = Core(finished_window=2)
    core.engines(0)
    for name in "abc":
        core.submit(name)
        core.finish(name, 0)
    assert core.state.statistics()["finished_window"] == 2
    assert sent(core.submit("needs_c", after=dep("c"))) == [("needs_c", 0)]
    assert core.submit("needs_a", after=dep("a")) == [QueryHub(("a",))]
    core.finish("needs_c", 0)
    assert core.external("a", True, engine_id=0) == [Send("needs_a", 0)]


def test_zero_window_remembers_nothing() -> None:
    core = Core(finished_window=0)
    core.engines(0)
    core.submit("a")
    core.submit("b", after=dep("a"))
    assert sent(core.finish("a", 0)) == [("b", 0)]  # dependents known before the end still resolve
    core.finish("b", 0)
    assert core.submit("c", after=dep("a")) == [QueryHub(("a",))]


# --------------------------------------------------------- engines joining


def test_no_double_dispatch_when_engines_join_while_tasks_are_released() -> None:
    core = Core(hwm=2)
    core.submit("root", targets=[0])
    for i in range(30):
        core.submit(f"child{i}", after=dep("root"))
        core.submit(f"free{i}")
        core.submit(f"pinned{i}", targets=[0, 1 + i % 2])
    log = core.engines(0)
    log += core.finish("root", 0)
    log += core.engines(1)
    log += core.engines(2)
    running = {task for task, _ in sent(log)} - {"root"}
    while running:
        task = sorted(running)[0]
        engine = next(e for t, e in sent(log) if t == task)
        actions = core.finish(task, engine)
        log += actions
        running = (running - {task}) | {t for t, _ in sent(actions)}
    names = [task for task, _ in sent(log)]
    assert len(names) == len(set(names)) == 91
    pinned = [(int(task[6:]), engine) for task, engine in sent(log) if task.startswith("pinned")]
    assert all(engine in (0, 1 + i % 2) for i, engine in pinned)


# ------------------------------------------------------------- reporting


def test_statistics_and_queue_status() -> None:
    core = Core()
    core.engines(0, 1)
    core.submit("a")
    core.submit("b")
    core.submit("c")
    core.submit("d", after=dep("c"))
    core.submit("e", after=dep("nowhere"))
    assert core.state.statistics() == {
        "engines": 2,
        "waiting": 2,
        "ready": 1,
        "running": {0: 1, 1: 1},
        "finished_window": 0,
        "awaiting_hub": 1,
    }
    core.finish("a", 1)
    assert core.state.queue_status() == {
        0: {"queue": 1, "completed": 0, "tasks": 1},
        1: {"queue": 1, "completed": 1, "tasks": 1},
        "unassigned": 2,
    }


def test_abort_fails_unassigned_tasks_and_their_dependents() -> None:
    core = Core()
    core.engines(0)
    core.submit("running")
    core.submit("queued")
    core.submit("child", after=dep("queued"))
    actions = core._run(core.state.abort(["queued", "running", "nonexistent"], core.now))
    assert failed(actions) == {"queued": "TaskAborted", "child": "ImpossibleDependency"}
    # The running task is the engine's business; its reply is still delivered.
    assert core.finish("running", 0) == [Deliver("running")]


def test_target_engine_not_yet_known_to_the_scheduler_waits() -> None:
    # The client can hear of engine 1 from the hub a moment before the scheduler does.
    core = Core()
    core.engines(0)
    assert core.submit("t", targets=[1]) == []
    assert core.engines(1) == [Send("t", 1)]
    # A target that was seen and is gone is hopeless, though.
    core.finish("t", 1)
    core.remove(1)
    assert failed(core.submit("u", targets=[1])) == {"u": "ImpossibleDependency"}
