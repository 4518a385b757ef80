"""The functions the benchmarks run remotely.

They are made inside a function so that cloudpickle ships them by value: the
engines and workers never need to import anything from ``benchmarks/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def make_noop() -> Callable[..., None]:
    def noop(*args: Any) -> None:
        return None

    return noop


def make_echo() -> Callable[[Any], Any]:
    def echo(x: Any) -> Any:
        return x

    return echo


def make_busy() -> Callable[[float], float]:
    def busy(duration: float) -> float:
        """Spin for ``duration`` seconds; return the time actually spent."""
        import time

        start = time.perf_counter()
        end = start + duration
        now = start
        while now < end:
            now = time.perf_counter()
        return now - start

    return busy
