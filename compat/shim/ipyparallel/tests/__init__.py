"""The fixtures ipyparallel's test modules expect, written for taskyard.

ipyparallel's suite starts one controller for the profile ``iptest`` and adds
engines as tests ask (``add_engines``); this does the same with taskyard's
:class:`~taskyard.cluster.launcher.LocalCluster`, in the ``TASKYARD_DIR`` the
runner made. Every process started is stopped at :func:`teardown`.
"""

from __future__ import annotations

import time

from taskyard import Client
from taskyard.cluster.launcher import LocalCluster

_cluster: LocalCluster | None = None


def setup() -> None:
    global _cluster
    _cluster = LocalCluster(0, profile="iptest", controller_args=["--ping=250"])
    _cluster.start(timeout=30)
    add_engines(1)


def add_engines(n: int = 1, profile: str = "iptest", total: bool = False) -> list[object]:
    """Start ``n`` engines (or up to ``n`` in all, with ``total``); wait for them."""
    assert _cluster is not None, "setup() first"
    rc = Client(profile=profile, timeout=10)
    try:
        base = len(rc)
        n = max(n - base, 0) if total else n
        before = len(_cluster.engines)
        _cluster.start_engines(n)
        new = _cluster.engines[before:]
        deadline = time.monotonic() + 30
        while len(rc) < base + n:
            if any(p.poll() is not None for p in new):
                raise RuntimeError("a test engine exited during start-up")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(rc) - base} of {n} test engines registered after 30 s")
            time.sleep(0.1)
    finally:
        rc.close()
    return list(new)


def teardown() -> None:
    global _cluster
    if _cluster is not None:
        _cluster.stop()
        _cluster = None


launchers: list[object] = []
