"""The pure scheme: load-balanced tasks through a C-level queue, no Python scheduler."""

from __future__ import annotations

import os
import signal
import time

import pytest

import taskyard as ty
from tests.helpers import wait_for

TIMEOUT = 20


@pytest.fixture
def pure(make_cluster):  # type: ignore[no-untyped-def]
    return make_cluster(2, controller_args=("--scheme=pure",))


@pytest.fixture
def prc(pure) -> ty.Client:  # type: ignore[no-untyped-def]
    client = pure.client()
    client.wait_for_engines(2, timeout=10, interactive=False)
    return client


def test_no_scheduler_process_and_no_features(pure, prc: ty.Client) -> None:  # type: ignore[no-untyped-def]
    assert pure.extra_pids == []  # no forked scheduler behind the controller
    assert prc.task_scheme == "pure"
    assert prc.features == []


def test_apply_and_map(prc: ty.Client) -> None:
    lv = prc.load_balanced_view()
    assert lv.apply_sync(lambda x: x * 2, 21) == 42
    assert lv.map_sync(lambda x: x + 1, range(50)) == list(range(1, 51))
    ars = [lv.apply_async(os.getpid) for _ in range(20)]
    assert len({ar.get(TIMEOUT) for ar in ars}) == 2
    assert {ar.metadata.engine_id for ar in ars} == {0, 1}


@pytest.mark.parametrize(
    ("flags", "word"),
    [
        ({"after": ["x"]}, "after"),
        ({"follow": ["x"]}, "follow"),
        ({"timeout": 5}, "timeout"),
        ({"retries": 1}, "retries"),
        ({"targets": [0]}, "targets"),
    ],
)
def test_unsupported_flags_are_refused_before_sending(prc: ty.Client, flags: dict[str, object], word: str) -> None:
    lv = prc.load_balanced_view()
    before = set(prc.outstanding)
    with pytest.raises(ty.error.TaskyardError, match=f"does not support {word}"), lv.temp_flags(**flags):
        lv.apply_async(lambda: 1)
    assert set(prc.outstanding) == before


def test_functional_dependencies_are_refused(prc: ty.Client) -> None:
    @ty.require("json")
    def f() -> int:
        return 1

    with pytest.raises(ty.error.TaskyardError, match="functional"):
        prc.load_balanced_view().apply_async(f)


def test_the_hub_records_pure_tasks(pure, prc: ty.Client) -> None:  # type: ignore[no-untyped-def]
    ar = prc.load_balanced_view().apply_async(lambda: "recorded")
    assert ar.get(TIMEOUT) == "recorded"
    other = pure.client()
    assert other.get_result(ar.msg_ids[0]).get(TIMEOUT) == "recorded"
    status = wait_for(lambda: (s := prc.queue_status()) and s[0]["tasks"] + s[1]["tasks"] == 0 and s, 10, "idle")
    assert status["unassigned"] == 0


def test_work_goes_on_when_an_engine_dies(pure, prc: ty.Client) -> None:  # type: ignore[no-untyped-def]
    lv = prc.load_balanced_view()
    pids = dict(zip(prc.ids, prc[:].apply_sync(os.getpid), strict=True))
    running = [lv.apply_async(time.sleep, 3) for _ in range(2)]
    wait_for(lambda: prc.queue_status()[0]["tasks"] == 1 and prc.queue_status()[1]["tasks"] == 1, 10, "both started")
    os.kill(pids[0], signal.SIGKILL)
    wait_for(lambda: 0 not in prc.ids, 5, "engine 0 to be unregistered")
    # The task that was running on the dead engine fails; the other one finishes.
    outcomes = []
    for ar in running:
        try:
            outcomes.append(ar.get(TIMEOUT))
        except ty.error.EngineError:
            outcomes.append("EngineError")
    assert sorted(outcomes, key=str) == ["EngineError", None]
    # New tasks all go to the engine that is left.
    results = [lv.apply_async(os.getpid) for _ in range(10)]
    assert {ar.get(TIMEOUT) for ar in results} == {pids[1]}
