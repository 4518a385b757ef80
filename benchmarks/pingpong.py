"""The CPU cost of one message round trip between two Python processes, with nothing else.

    python benchmarks/pingpong.py [--n 20000] [--frames 7] [--url tcp://127.0.0.1:5611]

A DEALER in this process sends an N-frame message to a DEALER in a child process,
which sends it straight back; prints the median wall time per round trip and
the CPU time each side spent per round trip (user + system, zmq's IO thread
included). This is the floor under every hop of taskyard's hwm=1 path: each
load-balanced task makes two such round trips (client <-> scheduler,
scheduler <-> engine), so four sides pay it at least once.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from typing import Any

import zmq


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _echo(url: str, out: Any) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(url)
    started = _cpu()
    count = 0
    while True:
        frames = sock.recv_multipart()
        if frames[0] == b"stop":
            break
        sock.send_multipart(frames)
        count += 1
    out.put((_cpu() - started, count))
    sock.close(linger=0)
    ctx.term()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--frames", type=int, default=7)
    p.add_argument("--url", default="tcp://127.0.0.1:5611")
    args = p.parse_args()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.bind(args.url)
    out: Any = mp.get_context("spawn").Queue()
    child = mp.get_context("spawn").Process(target=_echo, args=(args.url, out))
    child.start()
    try:
        message = [b"x" * 50] * args.frames
        for _ in range(1000):  # warm up
            sock.send_multipart(message)
            sock.recv_multipart()
        started_cpu, times = _cpu(), []
        for _ in range(args.n):
            t = time.perf_counter()
            sock.send_multipart(message)
            sock.recv_multipart()
            times.append(time.perf_counter() - t)
        ours = (_cpu() - started_cpu) / args.n
        sock.send_multipart([b"stop"])
        theirs, count = out.get(timeout=60)
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
        sock.close(linger=0)
        ctx.term()
    times.sort()
    print(f"{args.frames}-frame round trip over {args.url}: median {times[len(times) // 2] * 1e6:.0f} us")
    print(f"CPU per round trip: sender {ours * 1e6:.0f} us, echoer {theirs / count * 1e6:.0f} us")


if __name__ == "__main__":
    main()
