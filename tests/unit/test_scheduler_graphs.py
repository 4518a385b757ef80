"""The task scheduler core on whole random graphs: a property test and a size test."""

from __future__ import annotations

import random

import pytest

from taskyard.controller.scheduler_actions import Action, Deliver, Fail, QueryHub, Send, TaskSpec
from taskyard.controller.scheduler_state import TaskSchedulerState
from taskyard.dependency import Dependency


def _drive(
    state: TaskSchedulerState, rng: random.Random, deps: dict[str, Dependency], check_each_step: bool
) -> dict[str, str]:
    """Submit every task in order while finishing running ones at random.

    Checks that each task is sent once, only when its dependency is met, and
    fails only when its dependency is unreachable. Answers hub queries at once.
    """
    completed: set[str] = set()
    failures: set[str] = set()
    final: dict[str, str] = {}
    running: dict[str, int] = {}
    sends: set[str] = set()
    names = list(deps)
    next_engine = 1

    def handle(actions: list[Action]) -> None:
        # A batch's Sends come first (the engine should not idle), but they were
        # decided after the batch's outcomes: check them against those.
        actions = [a for a in actions if not isinstance(a, Send)] + [a for a in actions if isinstance(a, Send)]
        for action in actions:
            if isinstance(action, Send):
                assert action.task_id not in sends, f"{action.task_id} sent twice"
                assert deps[action.task_id].check(completed, failures), f"{action.task_id} sent too early"
                sends.add(action.task_id)
                running[action.task_id] = action.engine_id
            elif isinstance(action, Deliver):
                final[action.task_id] = "delivered"
            elif isinstance(action, Fail):
                assert action.ename == "ImpossibleDependency", action
                assert deps[action.task_id].unreachable(completed, failures), action
                failures.add(action.task_id)
                final[action.task_id] = "impossible"
            else:
                # Play the hub: ids evicted from the finished window are known there.
                assert isinstance(action, QueryHub)
                for msg_id in action.msg_ids:
                    assert msg_id in completed or msg_id in failures, f"{msg_id} queried before it finished"
                    handle(state.external_result(msg_id, msg_id in completed, None, 0.0))

    handle(state.add_engine(0, 0.0))
    submitted = 0
    while submitted < len(names) or running:
        roll = rng.random()
        if submitted < len(names) and (roll < 0.5 or not running):
            name = names[submitted]
            handle(state.submit(TaskSpec(name, after=deps[name], timeout=1e9), 0.0))
            submitted += 1
        elif roll < 0.53 and next_engine < 6:
            handle(state.add_engine(next_engine, 0.0))
            next_engine += 1
        else:
            name = rng.choice(sorted(running)) if check_each_step else next(iter(running))
            engine_id = running.pop(name)
            success = rng.random() < 0.85
            (completed if success else failures).add(name)
            handle(state.finish(name, engine_id, success, 0.0))
        if check_each_step:
            state.validate()
    state.validate()
    assert state.statistics()["waiting"] == state.statistics()["ready"] == 0
    return final


@pytest.mark.parametrize("seed", range(10))
def test_random_dag(seed: int) -> None:
    rng = random.Random(seed)
    scheme = rng.choice(["lru", "plainrandom", "twobin", "leastload", "weighted"])
    window = rng.choice([100_000, 30])
    state = TaskSchedulerState(scheme, rng.choice([0, 1, 2]), random.Random(seed), finished_window=window)
    deps: dict[str, Dependency] = {}
    for i in range(300):
        parents = rng.sample(range(i), min(i, rng.randrange(4)))
        success, failure = rng.choice([(True, False), (True, False), (True, True), (False, True)])
        deps[f"t{i}"] = Dependency([f"t{p}" for p in parents], all=rng.random() < 0.8, success=success, failure=failure)
    final = _drive(state, rng, deps, check_each_step=True)
    assert set(final) == set(deps)
    assert "impossible" in final.values() and "delivered" in final.values()


def test_large_graph_work_is_linear() -> None:
    # 20,000 tasks: a 10,000-long chain and a 10,000-wide fan-out of one root.
    # Any per-result rescan of the waiting tasks or per-check copy of the
    # finished ids would make this take minutes instead of about a second.
    deps = {"root": Dependency()}
    for i in range(10_000):
        deps[f"fan{i}"] = Dependency(["root"])
        deps[f"chain{i}"] = Dependency([f"chain{i - 1}"] if i else [], success_only=False)
    state = TaskSchedulerState(hwm=1, rng=random.Random(0), finished_window=5_000)
    final = _drive(state, random.Random(1), deps, check_each_step=False)
    assert len(final) == 20_001


@pytest.mark.parametrize("seed", range(10))
def test_chaos_every_task_ends_exactly_once(seed: int) -> None:
    # Engines join and die, runs fail and retry, engines refuse tasks, clocks
    # move: whatever happens, the state stays valid, nothing is sent to a dead
    # engine or after its end, and every task ends exactly once.
    rng = random.Random(seed)
    state = TaskSchedulerState("leastload", rng.choice([0, 1, 2]), random.Random(seed), finished_window=25)
    live: set[int] = set()
    running: dict[str, int] = {}
    ended: dict[str, int] = {}
    outcome: dict[str, bool] = {}
    submitted: set[str] = set()
    next_engine = 0
    now = 0.0

    def handle(actions: list[Action]) -> None:
        # A batch's Sends come first (the engine should not idle), but they were
        # decided after the batch's outcomes: check them against those.
        actions = [a for a in actions if not isinstance(a, Send)] + [a for a in actions if isinstance(a, Send)]
        for action in actions:
            if isinstance(action, Send):
                assert action.engine_id in live and action.task_id not in ended
                assert action.task_id not in running, f"{action.task_id} sent twice at once"
                running[action.task_id] = action.engine_id
            elif isinstance(action, (Deliver, Fail)):
                ended[action.task_id] = ended.get(action.task_id, 0) + 1
                running.pop(action.task_id, None)
                outcome[action.task_id] = isinstance(action, Deliver) and outcome.get(action.task_id, False)
            else:
                for msg_id in action.msg_ids:
                    handle(state.external_result(msg_id, outcome.get(msg_id, False), None, now))
        state.validate()

    for i in range(250):
        roll = rng.random()
        now += rng.random()
        if roll < 0.1 or not live:
            live.add(next_engine)
            handle(state.add_engine(next_engine, now))
            next_engine += 1
        elif roll < 0.15 and live:
            engine_id = rng.choice(sorted(live))
            live.discard(engine_id)
            lost = [task for task, engine in running.items() if engine == engine_id]
            for task in lost:
                del running[task]
            handle(state.remove_engine(engine_id, now))
        elif roll < 0.55:
            parents = rng.sample(range(i), min(i, rng.randrange(3)))
            spec = TaskSpec(
                f"t{i}",
                # one draw, as before there were three kinds: only successes count,
                # both count, only failures count
                after=Dependency([f"t{p}" for p in parents], success=(r := rng.random()) < 0.95, failure=r >= 0.5),
                targets=sorted(rng.sample(range(next_engine + 2), 2)) if rng.random() < 0.2 else None,
                timeout=rng.choice([None, 5.0, 50.0]),
                retries=rng.choice([0, 0, 1, 3]),
            )
            submitted.add(spec.task_id)
            handle(state.submit(spec, now))
        elif roll < 0.65:
            handle(state.tick(now))
        elif running:
            task, engine_id = rng.choice(sorted(running.items()))
            del running[task]
            if rng.random() < 0.15:
                handle(state.unmet(task, engine_id, now))
            else:
                success = rng.random() < 0.7
                outcome[task] = success
                handle(state.finish(task, engine_id, success, now))
    # Wind down: let everything run or expire.
    while state.statistics()["waiting"] or state.statistics()["ready"] or running:
        now += 100.0
        if not live:
            live.add(next_engine)
            handle(state.add_engine(next_engine, now))
            next_engine += 1
        handle(state.tick(now))
        for task, engine_id in sorted(running.items()):
            del running[task]
            outcome[task] = True
            handle(state.finish(task, engine_id, True, now))
    assert ended == dict.fromkeys(submitted, 1)
