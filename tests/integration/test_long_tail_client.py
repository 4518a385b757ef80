"""ipyparallel's long tail on the client side, against a real cluster: top-level names,
``Client`` history and indexing, targeted purges, views with flags, waiting for engines.

Functions sent to engines are defined at module level and import what they use inside:
they travel by value (registered below), the engines never import this module.
"""

from __future__ import annotations

import sys
from typing import Any

import cloudpickle
import pytest

import taskyard as ty

# the engines may run another checkout of taskyard, without this file
cloudpickle.register_pickle_by_value(sys.modules[__name__])

TIMEOUT = 20


def sleep_then(seconds: float, value: Any = None) -> Any:
    import time

    time.sleep(seconds)
    return value


def test_an_expired_task_timeout_is_caught_as_task_timeout(rc: ty.Client) -> None:
    lv = rc.load_balanced_view()
    slow = lv.apply_async(sleep_then, 1.0, "slow")
    with lv.temp_flags(after=slow, timeout=0.2):
        impatient = lv.apply_async(sleep_then, 0, "never")
    with pytest.raises(ty.TaskTimeout) as caught:
        impatient.get(TIMEOUT)
    assert isinstance(caught.value, ty.DependencyTimeout)
    assert isinstance(caught.value, ty.KernelError)
    assert slow.get(TIMEOUT) == "slow"


def double(x: int) -> int:
    return 2 * x


def test_module_level_remote_and_parallel_decorators(rc: ty.Client) -> None:
    getpid = ty.remote(rc[:], block=True)(sleep_then)
    assert getpid(0, "x") == ["x", "x"]

    def total(xs: list[int]) -> list[int]:
        return [sum(xs)]  # one block in, one block out: the blocks are joined

    blocks = ty.parallel(rc.load_balanced_view(), block=True)(total)
    assert sum(blocks(list(range(10)))) == sum(range(10))
    assert ty.parallel(rc[:], block=True)(double).map([1, 2, 3]) == [2, 4, 6]
