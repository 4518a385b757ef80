"""Helpers shared by the integration and CLI tests: bounded waits and process checks."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll ``predicate`` until it returns something truthy; fail saying ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def assert_all_gone(pids: Iterable[int], timeout: float = 10.0) -> None:
    """Every pid must exit within ``timeout``; kill and fail otherwise."""
    pids = list(pids)
    try:
        wait_for(lambda: not any(pid_alive(p) for p in pids), timeout, f"processes {pids} to exit")
    except AssertionError:
        alive = [p for p in pids if pid_alive(p)]
        for pid in alive:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        raise AssertionError(f"processes left behind: {alive}") from None


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (e.g. the controller's task scheduler)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def describe(obj: Any) -> str:
    return repr(obj)[:200]
