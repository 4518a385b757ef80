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
