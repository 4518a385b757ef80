"""Starting the task scheduler process next to the hub.

``ipcontroller`` forks the scheduler *before* it creates any ZeroMQ context (a
context must not cross a fork). The two then swap addresses over a pair of
pipes: the child binds its task ports and reports them; the parent binds the
hub and sends back where the scheduler reports to (the monitor feed, the
registration socket for queries, the notification feed). The child exits when
told (SIGTERM) or when it notices its parent is gone.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
from dataclasses import dataclass
from typing import Any

from taskyard.controller.hub import Controller, ControllerConfig
from taskyard.error import ConfigError
from taskyard.protocol.catalog import TASK_FLAGS

log = logging.getLogger("taskyard.controller")

#: The load-balanced features the Python scheduler supports (clients check these).
PYTHON_SCHEDULER_FEATURES = [*TASK_FLAGS, "functional", "batch"]


@dataclass
class SchedulerProcess:
    pid: int
    to_child: int
    from_child: int

    def stop(self, timeout: float = 2.0) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            waited, _ = os.waitpid(self.pid, os.WNOHANG)
            if waited:
                return
            time.sleep(0.02)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)


def _read_json(fd: int, timeout: float) -> dict[str, Any]:
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        raise ConfigError(f"the task scheduler did not start within {timeout} s")
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 4096)
        if not chunk:
            raise ConfigError("the task scheduler exited during start-up")
        data += chunk
    return json.loads(data)  # type: ignore[no-any-return]


def _write_json(fd: int, obj: dict[str, Any]) -> None:
    os.write(fd, json.dumps(obj).encode() + b"\n")


def fork_scheduler(config: ControllerConfig) -> SchedulerProcess:
    """Fork the scheduler process; call before creating any zmq.Context."""
    parent_reads, child_writes = os.pipe()
    child_reads, parent_writes = os.pipe()
    parent_pid = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(parent_reads)
        os.close(parent_writes)
        code = 0
        try:
            _child_main(config, child_reads, child_writes, parent_pid)
        except BaseException:  # noqa: BLE001 - report and leave; never return into the parent's code
            log.exception("the task scheduler failed")
            code = 1
        finally:
            logging.shutdown()
            os._exit(code)
    os.close(child_reads)
    os.close(child_writes)
    return SchedulerProcess(pid, parent_writes, parent_reads)


def _child_main(config: ControllerConfig, from_parent: int, to_parent: int, parent_pid: int) -> None:
    from taskyard.controller.scheduler import TaskScheduler

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the controller handles Ctrl-C and stops us
    scheduler = TaskScheduler(config.key, config.signature_scheme, config.scheme, config.hwm, config.ip)
    signal.signal(signal.SIGTERM, lambda *_: scheduler.stop())
    _write_json(to_parent, {"ports": scheduler.bind()})
    urls = _read_json(from_parent, 60.0)
    scheduler.connect_hub(urls["monitor"], urls["registration"], urls["notification"])
    log.info("task scheduler running (pid %d, scheme %s, hwm %d)", os.getpid(), config.scheme, config.hwm)
    scheduler.run(parent_pid)


def attach(controller: Controller, process: SchedulerProcess, timeout: float = 30.0) -> None:
    """Wire a forked scheduler into a bound controller."""
    ports = _read_json(process.from_child, timeout)["ports"]
    controller.ports.update(ports)
    controller.task_features = list(PYTHON_SCHEDULER_FEATURES)
    local = "127.0.0.1"
    _write_json(
        process.to_child,
        {
            "monitor": f"tcp://{local}:{controller.ports['monitor']}",
            "registration": f"tcp://{local}:{controller.ports['registration']}"
            if controller.config.ip in ("0.0.0.0", "*", local)
            else f"tcp://{controller.config.ip}:{controller.ports['registration']}",
            "notification": f"tcp://{local}:{controller.ports['notification']}"
            if controller.config.ip in ("0.0.0.0", "*", local)
            else f"tcp://{controller.config.ip}:{controller.ports['notification']}",
        },
    )
    controller.on_close.append(process.stop)
