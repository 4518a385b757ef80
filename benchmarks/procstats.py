"""CPU time and memory of a cluster, summed over its process tree, by role.

A cluster here is this process (the client) and every process descended from
it: a controller and its forked scheduler, engines, dask's worker processes.
Each process gets a role from a classifier the system under test supplies
(``"client"``, ``"controller"``, ``"scheduler"``, ``"engine"``...), so a
result says not only how much CPU a task cost but where it went.

Runs in both the taskyard venv and the peers venv: stdlib and psutil only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import psutil

Classifier = Callable[[psutil.Process, "psutil.Process | None"], str]


@dataclass(frozen=True)
class ProcSample:
    role: str
    cpu: float  # user + system seconds
    rss: int  # bytes


Snapshot = dict[tuple[int, float], ProcSample]


def tree() -> list[psutil.Process]:
    """This process and all its descendants."""
    me = psutil.Process(os.getpid())
    return [me, *me.children(recursive=True)]


def snapshot(classify: Classifier) -> Snapshot:
    """CPU and RSS of every process in the tree, keyed by (pid, create_time)."""
    out: Snapshot = {}
    me = os.getpid()
    for proc in tree():
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                key = (proc.pid, proc.create_time())
                rss = proc.memory_info().rss
                parent = proc.parent()
            role = "client" if proc.pid == me else classify(proc, parent)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        out[key] = ProcSample(role, times.user + times.system, rss)
    return out


def cpu_by_role(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds spent between two snapshots, summed per role.

    A process that appeared in between counts from zero; one that vanished
    in between is lost (its CPU cannot be read any more).
    """
    spent: dict[str, float] = {}
    for key, sample in after.items():
        start = before[key].cpu if key in before else 0.0
        spent[sample.role] = spent.get(sample.role, 0.0) + max(0.0, sample.cpu - start)
    return spent


def rss_by_role(snap: Snapshot) -> dict[str, int]:
    """Resident memory per role (bytes), summed over processes of that role."""
    rss: dict[str, int] = {}
    for sample in snap.values():
        rss[sample.role] = rss.get(sample.role, 0) + sample.rss
    return rss


def pids(snap: Snapshot) -> list[tuple[int, float]]:
    """(pid, create_time) of every process but this one, for a later clean-up."""
    return [key for key in snap if key[0] != os.getpid()]


def cmdline_has(proc: psutil.Process, *needles: str) -> bool:
    try:
        line = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return any(needle in line for needle in needles)
