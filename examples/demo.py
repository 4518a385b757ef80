"""A first taste of taskyard: run with a cluster already started, e.g.

    ipcluster start -n 2 --daemonize
    python examples/demo.py
    ipcluster stop

It connects to the default profile's controller, waits for two engines, and
runs a few functions on them: directly, load-balanced, and with a dependency.
"""

from __future__ import annotations

import os
import socket
import time

import taskyard as ty


def where() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def main() -> None:
    with ty.Client(timeout=30) as rc:
        rc.wait_for_engines(2, timeout=30)
        print(f"connected to {len(rc.ids)} engines: {rc.ids}")

        dv = rc[:]
        print("each engine runs in its own process:", dv.apply_sync(where))

        dv["scale"] = 10
        print("namespaces hold pushed values:", dv.apply_sync(lambda x: x * scale, 4))  # noqa: F821

        lv = rc.load_balanced_view()
        squares = lv.map_sync(lambda x: x * x, range(10))
        print("load-balanced map:", squares)

        first = lv.apply_async(time.sleep, 0.2)
        with lv.temp_flags(after=first):
            second = lv.apply_async(where)
        second.get(timeout=30)
        waited = second.metadata.started >= first.metadata.completed
        print(f"a task with after= started after its dependency finished: {waited}")

        try:
            rc[0].apply_sync(lambda: 1 / 0)
        except ty.error.RemoteError as error:
            print(f"remote errors come back typed: {error}")
    print("demo finished")


if __name__ == "__main__":
    main()
