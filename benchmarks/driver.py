"""Run some workloads on one system, in this process, and print the results as JSON.

``run.py`` starts this script once per (system, scheme), with the python of the
venv the system lives in: taskyard's for taskyard, ``.peers-venv`` for
ipyparallel and dask (through the thin scripts in ``peers/``). The last line
of stdout is ``BENCH-JSON {...}``. The cluster's PIDs go to ``--pidfile`` as
soon as it is up, so the caller can kill leftovers if this process is killed.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from typing import Any

import procstats
import workloads

MARKER = "BENCH-JSON "
ALL = ("apply", "map", "rtt", "dag", "payload", "metg", "startup")


def make_system(name: str, scheme: str | None) -> Any:
    if name == "dask":
        from dask_system import DaskSystem

        return DaskSystem()
    from ipp_like import IppLikeSystem

    return IppLikeSystem(name, scheme)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def _write_pids(path: str | None, system: Any) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(procstats.pids(procstats.snapshot(system.classify)), f)


def start_system(args: argparse.Namespace, errors: dict[str, str]) -> Any:
    """A started, warmed-up system, or None; a first failure is retried once (and reported)."""
    for attempt in (1, 2):
        system = make_system(args.system, args.scheme)
        try:
            system.start()
            _write_pids(args.pidfile, system)
            workloads.warm_up(system, args.timeout)
            return system
        except Exception as exc:  # noqa: BLE001 - reported as the row's failure
            errors[f"start (attempt {attempt})"] = f"{type(exc).__name__}: {exc}"
            system.stop()
    return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    wanted = [w for w in args.workloads.split(",") if w]
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    timeout = args.timeout
    if "startup" in wanted:
        try:
            results["startup"] = workloads.startup(
                lambda: make_system(args.system, args.scheme), args.startup_repeats, 120
            )
        except Exception as exc:  # noqa: BLE001 - one failed workload must not hide the others
            errors["startup"] = f"{type(exc).__name__}: {exc}"
    cluster_work = [w for w in wanted if w != "startup"]
    if not cluster_work:
        return {"results": results, "errors": errors}
    system = start_system(args, errors)
    if system is None:
        return {"results": results, "errors": errors}
    try:
        steps = {
            "apply": lambda: workloads.apply_loop(system, args.n, timeout),
            "map": lambda: workloads.map_noop(system, args.n, timeout),
            "rtt": lambda: workloads.round_trip(system, args.rtt_n, timeout),
            "dag": lambda: workloads.dag(system, args.dag_nodes, args.dag_edges, timeout),
            "payload": lambda: workloads.payload(
                system, args.sizes, {1: args.repeats * 3, 16: args.repeats * 2, 128: args.repeats}, timeout
            ),
            "metg": lambda: workloads.metg(system, args.metg_wall, timeout, system.engines),
        }
        for name in cluster_work:
            started = time.perf_counter()
            try:
                results[name] = steps[name]()
            except Exception as exc:  # noqa: BLE001 - recorded in the report as a failure
                errors[name] = f"{type(exc).__name__}: {exc}"
            print(f"  {args.system}/{system.variant} {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    finally:
        system.stop()
    return {"results": results, "errors": errors}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--system", choices=("taskyard", "ipyparallel", "dask"), required=True)
    p.add_argument("--scheme", default=None)
    p.add_argument("--workloads", default=",".join(ALL))
    p.add_argument("--n", type=int, default=10_000, help="no-op tasks for apply and map")
    p.add_argument("--rtt-n", type=int, default=1000)
    p.add_argument("--dag-nodes", type=int, default=1000)
    p.add_argument("--dag-edges", type=int, default=4000)
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 128])
    p.add_argument("--repeats", type=int, default=3, help="echoes of the largest array (more for smaller ones)")
    p.add_argument("--metg-wall", type=float, default=1.0, help="target wall seconds per METG step")
    p.add_argument("--startup-repeats", type=int, default=3)
    p.add_argument("--timeout", type=float, default=300.0, help="bound on every single wait")
    p.add_argument("--pidfile", default=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    args = parse(sys.argv[1:] if argv is None else argv)
    out = {"system": args.system, "scheme": args.scheme, **run(args)}
    print(MARKER + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
