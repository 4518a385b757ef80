"""Optional scale test (``run.py --scale``): many engines on one controller, many queued tasks.

1. start ``--engines`` (default 100) engines on one controller; time it;
2. submit ``--tasks`` (default 100,000) no-ops at once, so they queue in the
   scheduler; the peak RSS of controller and scheduler while they drain, and
   the throughput;
3. keep going in batches of ``--tasks`` until ``--total`` (default 1,000,000)
   tasks have run, purging results between batches: RSS per role after each
   batch shows whether the controller's memory stays bounded; once more after
   the last batch and 2.5 s of idleness, when the processes have given memory back.

Slow (minutes) and memory-hungry (≈ 60 MB per engine): not part of the default run.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Any

import procstats
from ipp_like import IppLikeSystem

MARKER = "BENCH-JSON "
#: Seconds idle after the last batch before RSS is read once more (trims wait for one second of idleness).
IDLE_WAIT = 2.5


class PeakRss:
    """Samples RSS per role in a thread; keeps the maximum of each."""

    def __init__(self, system: Any, period: float = 0.5) -> None:
        self.system = system
        self.period = period
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            for role, rss in procstats.rss_by_role(procstats.snapshot(self.system.classify)).items():
                self.peak[role] = max(self.peak.get(role, 0), rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(10)


def _rss_mb(system: Any) -> dict[str, float]:
    return {role: rss / 1e6 for role, rss in sorted(procstats.rss_by_role(procstats.snapshot(system.classify)).items())}


def run(engines: int, tasks: int, total: int, timeout: float, pidfile: str | None, out: dict[str, Any]) -> None:
    """Fills ``out`` as it goes, so a run stopped half-way still reports what it measured."""
    system = IppLikeSystem("taskyard", None, engines=engines)
    out.update({"engines": engines, "tasks": tasks, "total": total, "batches": []})
    try:
        started = time.perf_counter()
        system.start(timeout=max(timeout, 600))
        out["start_s"] = time.perf_counter() - started
        if pidfile:
            with open(pidfile, "w") as f:
                json.dump(procstats.pids(procstats.snapshot(system.classify)), f)
        out["rss_mb_idle"] = _rss_mb(system)
        batches = out["batches"]
        done = 0
        while done < total:
            n = min(tasks, total - done)
            with PeakRss(system) as peak:
                started = time.perf_counter()
                handles = [system.submit_noop() for _ in range(n)]
                submitted = time.perf_counter() - started
                system.wait_all(handles, timeout)
                wall = time.perf_counter() - started
            del handles
            system.release()
            done += n
            batches.append(
                {
                    "tasks_done": done,
                    "submit_s": submitted,
                    "tasks_per_s": n / wall,
                    "peak_rss_mb": {role: rss / 1e6 for role, rss in sorted(peak.peak.items())},
                    "rss_mb_after": _rss_mb(system),
                }
            )
            print(f"  scale: {done} tasks, {n / wall:.0f} tasks/s", file=sys.stderr, flush=True)
        # The controller, the scheduler and the client give memory back once idle for a second.
        time.sleep(IDLE_WAIT)
        out["rss_mb_after_idle"] = _rss_mb(system)
    finally:
        system.stop()


def main() -> None:
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"stopped by signal {signum}"))
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--engines", type=int, default=100)
    p.add_argument("--tasks", type=int, default=100_000)
    p.add_argument("--total", type=int, default=1_000_000)
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--pidfile")
    args = p.parse_args()
    result: dict[str, Any] = {"system": "taskyard", "scheme": "scale", "results": {}, "errors": {}}
    try:
        run(args.engines, args.tasks, args.total, args.timeout, args.pidfile, result["results"])
    except BaseException as exc:  # noqa: BLE001 - reported (SIGTERM included), with the batches done so far
        result["errors"]["scale"] = f"{type(exc).__name__}: {exc}"
    print(MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
