"""The workloads, written once against a small system interface.

A system (``IppLikeSystem``, ``DaskSystem``) offers ``submit_noop``,
``wait_all``, ``map_noop``, ``round_trip``, ``submit_after``, ``echo``,
``map_busy``, ``classify`` and ``release``. Every workload returns a dict of
plain numbers (JSON-ready); CPU is measured over the whole process tree and
broken down by role (see ``procstats``). Every wait has a timeout.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import procstats
from dag_graph import random_dag

SETTLE = 0.3  # seconds for the controller to finish its bookkeeping before CPU is read


class Measure:
    """Wall time and per-role CPU of a block: ``with Measure(system) as m: ...``."""

    def __init__(self, system: Any) -> None:
        self.system = system

    def __enter__(self) -> Measure:
        self.before = procstats.snapshot(self.system.classify)
        self.started_at = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self.started_at
        if exc[0] is None:
            time.sleep(SETTLE)
        self.after = procstats.snapshot(self.system.classify)
        self.cpu = procstats.cpu_by_role(self.before, self.after)

    def per_task(self, n: int) -> dict[str, Any]:
        total = sum(self.cpu.values())
        return {
            "wall_s": self.wall,
            "tasks_per_s": n / self.wall,
            "cpu_us_per_task": total / n * 1e6,
            "cpu_us_per_task_by_role": {role: spent / n * 1e6 for role, spent in sorted(self.cpu.items())},
            "rss_mb_by_role": {role: rss / 1e6 for role, rss in sorted(procstats.rss_by_role(self.after).items())},
        }


def warm_up(system: Any, timeout: float) -> None:
    system.wait_all([system.submit_noop() for _ in range(50)], timeout)
    system.map_noop(20, timeout)
    system.release()


def apply_loop(system: Any, n: int, timeout: float) -> dict[str, Any]:
    """N no-op tasks submitted one by one, then all waited for."""
    with Measure(system) as m:
        handles = [system.submit_noop() for _ in range(n)]
        system.wait_all(handles, timeout)
    del handles
    system.release()
    return {"tasks": n, **m.per_task(n)}


def map_noop(system: Any, n: int, timeout: float) -> dict[str, Any]:
    """N no-op tasks through one ``map`` call."""
    with Measure(system) as m:
        system.map_noop(n, timeout)
    system.release()
    return {"tasks": n, **m.per_task(n)}


def round_trip(system: Any, n: int, timeout: float) -> dict[str, Any]:
    """N sequential blocking load-balanced no-ops."""
    times = []
    with Measure(system) as m:
        for _ in range(n):
            start = time.perf_counter()
            system.round_trip(timeout)
            times.append(time.perf_counter() - start)
    system.release()
    times.sort()
    p99 = times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)]
    return {
        "tasks": n,
        "median_ms": statistics.median(times) * 1e3,
        "p99_ms": p99 * 1e3,
        "mean_ms": statistics.fmean(times) * 1e3,
        "cpu_us_per_task": sum(m.cpu.values()) / n * 1e6,
        "cpu_us_per_task_by_role": {role: spent / n * 1e6 for role, spent in sorted(m.cpu.items())},
    }


def dag(system: Any, nodes: int, edges: int, timeout: float) -> dict[str, Any]:
    """A random DAG submitted in topological order, each node waiting on its parents."""
    parents = random_dag(nodes, edges)
    with Measure(system) as m:
        handles: list[Any] = []
        for node_parents in parents:
            handles.append(system.submit_after([handles[p] for p in node_parents]))
        system.wait_all(handles, timeout)
    del handles
    system.release()
    return {"nodes": nodes, "edges": sum(len(p) for p in parents), **m.per_task(nodes)}


def payload(system: Any, sizes_mb: list[int], repeats: dict[int, int], timeout: float) -> dict[str, Any]:
    """numpy arrays echoed through one engine; MB/s = array size / round-trip time (MB = 10^6 bytes)."""
    import numpy as np

    out: dict[str, Any] = {}
    system.echo(np.zeros(1000, dtype=np.uint8), timeout)  # the engine's first numpy import is not data transfer
    for size in sizes_mb:
        array = np.random.default_rng(size).integers(0, 255, size * 1_000_000, dtype=np.uint8)
        times = []
        is_intact = True
        count = repeats.get(size, 3)
        with Measure(system) as m:
            for _ in range(count):
                start = time.perf_counter()
                back = system.echo(array, timeout)
                times.append(time.perf_counter() - start)
                is_intact = is_intact and back.nbytes == array.nbytes and bool(back[-1] == array[-1])
                del back
        out[f"{size}MB"] = {
            "mb_per_s": size / statistics.median(times),
            "median_s": statistics.median(times),
            "repeats": count,
            "is_intact": is_intact,
            "cpu_s_per_echo_by_role": {role: spent / count for role, spent in sorted(m.cpu.items())},
            "rss_mb_by_role": {role: rss / 1e6 for role, rss in sorted(procstats.rss_by_role(m.after).items())},
        }
        system.release()
    return out


def metg(system: Any, target_wall: float, timeout: float, engines: int) -> dict[str, Any]:
    """METG(50%): the shortest busy-wait task at which efficiency stays >= 50%.

    Efficiency = busy time actually spent in tasks / (engines x wall time).
    At least 50 tasks per step. Durations fall by halves from 51.2 ms until efficiency drops under 50%;
    METG is interpolated (log-linearly) between the last two.
    """
    curve = []
    duration = 0.0512
    while duration >= 10e-6:
        count = max(50, min(20_000, round(engines * target_wall / duration)))
        start = time.perf_counter()
        spent = system.map_busy([duration] * count, timeout)
        wall = time.perf_counter() - start
        efficiency = sum(spent) / (engines * wall)
        curve.append({"duration_ms": duration * 1e3, "tasks": count, "wall_s": wall, "efficiency": efficiency})
        system.release()
        if efficiency < 0.5:
            break
        duration /= 2
    return {"metg_ms": _interpolate_metg(curve), "curve": curve}


def _interpolate_metg(curve: list[dict[str, float]]) -> float | None:
    above = [p for p in curve if p["efficiency"] >= 0.5]
    below = [p for p in curve if p["efficiency"] < 0.5]
    if not above:
        return None  # even the longest tasks were under 50%
    hi = min(above, key=lambda p: p["duration_ms"])
    if not below:
        return hi["duration_ms"]  # never dropped under 50%: an upper bound
    lo = below[0]
    if hi["efficiency"] == lo["efficiency"]:
        return hi["duration_ms"]
    frac = (hi["efficiency"] - 0.5) / (hi["efficiency"] - lo["efficiency"])
    return math.exp(math.log(hi["duration_ms"]) + frac * (math.log(lo["duration_ms"]) - math.log(hi["duration_ms"])))


def startup(make_system: Any, repeats: int, timeout: float) -> dict[str, Any]:
    """Seconds from nothing to a connected client with every engine registered."""
    times = []
    for _ in range(repeats):
        system = make_system()
        start = time.perf_counter()
        try:
            system.start(timeout=timeout)
            times.append(time.perf_counter() - start)
        finally:
            system.stop()
    return {"median_s": statistics.median(times), "all_s": times}
