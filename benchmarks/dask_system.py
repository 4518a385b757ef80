"""dask.distributed as a system under test: a LocalCluster of 2 single-threaded worker processes.

dask's scheduler and the nannies run inside the client process (LocalCluster's
default), so the "client" role includes them. Every submit passes
``pure=False`` so that identical no-op tasks are not deduplicated.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import psutil
from tasks import make_busy, make_echo, make_noop


class DaskSystem:
    name = "dask"
    variant = "distributed"

    def __init__(self, engines: int = 2) -> None:
        self.engines = engines
        self.cluster: Any = None
        self.client: Any = None
        self.noop = make_noop()
        self.echo_fn = make_echo()
        self.busy = make_busy()
        self.workdir = tempfile.mkdtemp(prefix="dask-bench-")

    def start(self, n: int | None = None, timeout: float = 120.0) -> None:
        from distributed import Client, LocalCluster

        n = self.engines if n is None else n
        self.cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            local_directory=self.workdir,
            silence_logs=40,
        )
        self.client = Client(self.cluster, timeout=timeout)
        self.client.wait_for_workers(n, timeout=timeout)

    def stop(self) -> None:
        try:
            if self.client is not None:
                self.client.close(timeout=30)
        finally:
            self.client = None
            if self.cluster is not None:
                self.cluster.close(timeout=30)
                self.cluster = None

    def classify(self, proc: psutil.Process, parent: psutil.Process | None) -> str:
        try:
            line = " ".join(proc.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return "other"
        if "resource_tracker" in line or "forkserver" in line:
            return "other"
        return "engine" if parent is not None and parent.pid == os.getpid() else "other"

    def submit_noop(self) -> Any:
        return self.client.submit(self.noop, pure=False)

    def wait_all(self, handles: list[Any], timeout: float) -> None:
        from distributed import wait

        wait(handles, timeout=timeout)
        for future in handles:
            future.result(timeout=timeout)

    def map_noop(self, n: int, timeout: float) -> None:
        futures = self.client.map(self.noop, range(n), pure=False)
        self.wait_all(futures, timeout)

    def round_trip(self, timeout: float) -> None:
        self.client.submit(self.noop, pure=False).result(timeout=timeout)

    def submit_after(self, parents: list[Any]) -> Any:
        # dask has no ordering-only dependency: the parents' (None) results are arguments.
        return self.client.submit(self.noop, *parents, pure=False)

    def echo(self, array: Any, timeout: float) -> Any:
        worker = sorted(self.client.scheduler_info()["workers"])[0]
        return self.client.submit(self.echo_fn, array, pure=False, workers=[worker]).result(timeout=timeout)

    def map_busy(self, durations: list[float], timeout: float) -> list[float]:
        futures = self.client.map(self.busy, durations, pure=False)
        self.wait_all(futures, timeout)
        return [future.result() for future in futures]

    def release(self) -> None:
        pass
