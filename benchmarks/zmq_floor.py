"""The raw pyzmq floor: what the hardware and pyzmq allow, with no taskyard at all.

A Python client (DEALER) -> the C ``zmq.devices.monitored_queue`` (ROUTER <->
DEALER, with a PUB monitor that nobody reads) -> 2 Python worker processes
(DEALER) that echo every message back. Messages are 6 frames shaped like a
signed task request (~500 bytes). Throughput keeps ``WINDOW`` messages in
flight (more would overflow the ROUTER's high-water mark, which drops); the
round trip sends one and waits for it.

Run by ``run.py`` as a subprocess; ``--role queue`` and ``--role worker`` are
the processes it starts itself (stopped by PID in a ``finally``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

import procstats
import psutil
import zmq
from zmq.devices import monitored_queue

MARKER = "BENCH-JSON "
WINDOW = 500
MESSAGE = [b"<IDS|MSG>", b"s" * 64, b"h" * 300, b"{}", b"m" * 80, b"c" * 40]


def run_queue() -> None:
    ctx = zmq.Context()
    front, back, mon = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER), ctx.socket(zmq.PUB)
    ports = [s.bind_to_random_port("tcp://127.0.0.1") for s in (front, back, mon)]
    print(json.dumps(ports), flush=True)
    monitored_queue(front, back, mon, b"in", b"out")


def run_worker(url: str) -> None:
    sock = zmq.Context().socket(zmq.DEALER)
    sock.connect(url)
    while True:
        sock.send_multipart(sock.recv_multipart(copy=False), copy=False)


def _classify(proc: psutil.Process, parent: psutil.Process | None) -> str:
    if procstats.cmdline_has(proc, "--role queue"):
        return "queue"
    if procstats.cmdline_has(proc, "--role worker"):
        return "engine"
    return "other"


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError(f"the queue printed no ports within {timeout} s")
    return proc.stdout.readline()


def throughput(sock: zmq.Socket, n: int, timeout: float) -> float:
    sent = received = 0
    deadline = time.monotonic() + timeout
    start = time.perf_counter()
    while received < n:
        while sent < n and sent - received < WINDOW:
            sock.send_multipart(MESSAGE)
            sent += 1
        if not sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            raise TimeoutError(f"{received} of {n} echoes within {timeout} s")
        while received < n and sock.poll(0):
            sock.recv_multipart()
            received += 1
    return time.perf_counter() - start


def round_trips(sock: zmq.Socket, n: int, timeout: float) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        sock.send_multipart(MESSAGE)
        if not sock.poll(int(timeout * 1000)):
            raise TimeoutError(f"no echo within {timeout} s")
        sock.recv_multipart()
        times.append(time.perf_counter() - start)
    return times


def measure(n: int, rtt_n: int, timeout: float, pidfile: str | None) -> dict[str, Any]:
    me = [sys.executable, os.path.abspath(__file__)]
    procs: list[subprocess.Popen[bytes]] = []
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        queue = subprocess.Popen([*me, "--role", "queue"], stdout=subprocess.PIPE)
        procs.append(queue)
        front, back, _mon = json.loads(_read_line(queue, 30))
        for _ in range(2):
            procs.append(subprocess.Popen([*me, "--role", "worker", "--url", f"tcp://127.0.0.1:{back}"]))
        if pidfile:
            with open(pidfile, "w") as f:
                json.dump(procstats.pids(procstats.snapshot(_classify)), f)
        sock.connect(f"tcp://127.0.0.1:{front}")
        throughput(sock, 1000, min(timeout, 20.0))  # warm-up; also waits until both workers are connected
        before = procstats.snapshot(_classify)
        wall = throughput(sock, n, timeout)
        cpu = procstats.cpu_by_role(before, procstats.snapshot(_classify))
        times = sorted(round_trips(sock, rtt_n, timeout))
    finally:
        sock.close(linger=0)
        ctx.term()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    return {
        "apply": {
            "tasks": n,
            "wall_s": wall,
            "tasks_per_s": n / wall,
            "cpu_us_per_task": sum(cpu.values()) / n * 1e6,
            "cpu_us_per_task_by_role": {role: spent / n * 1e6 for role, spent in sorted(cpu.items())},
        },
        "rtt": {
            "tasks": rtt_n,
            "median_ms": statistics.median(times) * 1e3,
            "p99_ms": times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)] * 1e3,
            "mean_ms": statistics.fmean(times) * 1e3,
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--role", choices=("bench", "queue", "worker"), default="bench")
    p.add_argument("--url")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--rtt-n", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--pidfile")
    args = p.parse_args()
    if args.role == "queue":
        run_queue()
    elif args.role == "worker":
        run_worker(args.url)
    else:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"stopped by signal {signum}"))
        out = {"system": "pyzmq-floor", "scheme": "monitored_queue", "results": {}, "errors": {}}
        try:
            out["results"] = measure(args.n, args.rtt_n, args.timeout, args.pidfile)
        except Exception as exc:  # noqa: BLE001 - reported as a failure of this row
            out["errors"]["apply"] = f"{type(exc).__name__}: {exc}"
        print(MARKER + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
