"""A system under test with ipyparallel's API: taskyard itself, or ipyparallel.

Both take the same calls (``Cluster``, ``load_balanced_view``, ``apply_async``,
``map``, ``temp_flags(after=...)``), so one adapter drives both; only the
module, the scheme option and the names of the processes differ.
"""

from __future__ import annotations

import importlib
from typing import Any

import psutil
from procstats import cmdline_has
from tasks import make_busy, make_echo, make_noop


class IppLikeSystem:
    """``module`` is ``"taskyard"`` or ``"ipyparallel"``; ``scheme`` a scheme name or None."""

    def __init__(self, module: str, scheme: str | None, engines: int = 2) -> None:
        self.module_name = module
        self.mod = importlib.import_module(module)
        self.variant = scheme or "leastload"
        # "<scheme>-hwm<N>": the scheme with N outstanding tasks allowed per engine (0: no limit)
        self.hwm: int | None = None
        if scheme and "-hwm" in scheme:
            scheme, _, hwm = scheme.partition("-hwm")
            self.hwm = int(hwm)
        self.scheme = scheme
        self.engines = engines
        self.name = "taskyard" if module == "taskyard" else "ipyparallel"
        self.cluster: Any = None
        self.rc: Any = None
        self.lv: Any = None
        self.noop = make_noop()
        self.echo_fn = make_echo()
        self.busy = make_busy()

    # -- lifecycle ----------------------------------------------------------

    def _make_cluster(self, n: int) -> Any:
        if self.module_name == "taskyard":
            extra = [f"--hwm={self.hwm}"] if self.hwm is not None else []
            return self.mod.Cluster(n=n, scheme=self.scheme, controller_args=extra, log_level="WARN")
        args = [f"--scheme={self.scheme}"] if self.scheme else []
        if self.hwm is not None:
            args.append(f"--TaskScheduler.hwm={self.hwm}")
        return self.mod.Cluster(n=n, controller_args=args, log_level=30)

    def start(self, n: int | None = None, timeout: float = 120.0) -> None:
        n = self.engines if n is None else n
        self.cluster = self._make_cluster(n)
        if self.name == "ipyparallel" and self.scheme == "pure":
            # ipyparallel's client disables pure task farming for good if it ever sees
            # non-contiguous engine ids (engine 1 registered before engine 0): connect
            # only once every engine is registered.
            self.cluster.start_cluster_sync()
            probe = self.cluster.connect_client_sync()
            probe.wait_for_engines(n, timeout=timeout)
            probe.close()
            self.rc = self.cluster.connect_client_sync()
        elif self.name == "taskyard":
            self.rc = self.cluster.start_and_connect_sync(timeout=timeout)
        else:
            self.rc = self.cluster.start_and_connect_sync()
        self.rc.wait_for_engines(n, timeout=timeout)
        self.lv = self.rc.load_balanced_view()

    def stop(self) -> None:
        if self.cluster is not None:
            try:
                self.cluster.stop_cluster_sync()
            finally:
                self.cluster = None
                self.rc = None
                self.lv = None

    def classify(self, proc: psutil.Process, parent: psutil.Process | None) -> str:
        controller = ("taskyard.apps.controller", "ipyparallel.controller", "ipcontroller")
        if cmdline_has(proc, "taskyard.apps.engine", "ipyparallel.engine", "ipengine"):
            return "engine"
        if cmdline_has(proc, *controller):
            return "scheduler" if parent is not None and cmdline_has(parent, *controller) else "controller"
        if parent is not None and cmdline_has(parent, *controller):
            return "scheduler"  # ipyparallel's schedulers are multiprocessing children
        return "other"

    # -- operations -----------------------------------------------------------

    def submit_noop(self) -> Any:
        return self.lv.apply_async(self.noop)

    def wait_all(self, handles: list[Any], timeout: float) -> None:
        for ar in handles:
            ar.get(timeout)

    def map_noop(self, n: int, timeout: float) -> None:
        ar = self.lv.map(self.noop, range(n), block=False)
        ar.get(timeout)

    def round_trip(self, timeout: float) -> None:
        self.lv.apply_async(self.noop).get(timeout)

    def submit_after(self, parents: list[Any]) -> Any:
        with self.lv.temp_flags(after=parents):
            return self.lv.apply_async(self.noop)

    def echo(self, array: Any, timeout: float) -> Any:
        return self.rc[self.rc.ids[0]].apply_async(self.echo_fn, array).get(timeout)

    def map_busy(self, durations: list[float], timeout: float) -> list[float]:
        return list(self.lv.map(self.busy, durations, block=False).get(timeout))

    def release(self) -> None:
        """Forget finished results, so one workload's memory does not weigh on the next."""
        try:
            self.rc.purge_results("all")
        except Exception:  # noqa: BLE001 - purging is a courtesy, not part of a measurement
            pass
        for name in ("results", "metadata", "history"):
            store = getattr(self.rc, name, None)
            if hasattr(store, "clear"):
                store.clear()
