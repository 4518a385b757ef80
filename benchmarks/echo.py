"""Echo one numpy array through one engine, N times, with chosen controller options.

    python benchmarks/echo.py [--mb 128] [--n 10] [-- --IPController.max_record_mb=0 ...]

Prints each round trip in seconds and the median MB/s. Arguments after ``--``
go to ``ipcontroller``; use it to see what a setting does to large transfers
(e.g. whether the hub keeps results: ``--IPController.max_record_mb``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from tasks import make_echo

import taskyard as ty


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=int, default=128, help="array size in MB (10^6 bytes)")
    p.add_argument("--n", type=int, default=10, help="round trips")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("controller_args", nargs="*", help="options for ipcontroller (after --)")
    args = p.parse_args()
    echo = make_echo()
    array = np.random.default_rng(1).integers(0, 255, args.mb * 1_000_000, dtype=np.uint8)
    with ty.Cluster(n=1, controller_args=args.controller_args, log_level="WARN") as rc:
        rc.wait_for_engines(1, timeout=args.timeout)
        view = rc[rc.ids[0]]
        view.apply_sync(echo, np.zeros(10))  # the engine's numpy import is not a transfer
        times = []
        for _ in range(args.n):
            start = time.perf_counter()
            back = view.apply_async(echo, array).get(args.timeout)
            times.append(time.perf_counter() - start)
            assert back.nbytes == array.nbytes and back[-1] == array[-1]
            del back
    print("round trips (s):", " ".join(f"{t:.3f}" for t in times))
    print(f"median: {args.mb / statistics.median(times):.0f} MB/s ({' '.join(args.controller_args) or 'defaults'})")


if __name__ == "__main__":
    main()
