"""Starting and stopping a controller and local engines as processes.

:class:`LocalCluster` is the machinery under ``ipcluster`` and ``ty.Cluster``:
it starts ``ipcontroller`` and ``n`` ``ipengine`` processes (as
``python -m taskyard.apps.<name>``, so no PATH is needed), waits until the
controller has written its connection file and the engines have registered,
and stops everything it started by PID (SIGTERM, then SIGKILL after a grace
period). Each process writes its log to ``<profile_dir>/log/``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import zmq

from taskyard.error import ConfigError, ProtocolError, TimeoutError
from taskyard.heap import glibc_tunables
from taskyard.protocol import connection
from taskyard.protocol.session import Session

log = logging.getLogger("taskyard.cluster")


#: glibc malloc settings for the controller and engines (see :func:`child_env`)
MALLOC_TUNABLES = glibc_tunables()


def child_env() -> dict[str, str]:
    """The environment for the controller and engines this launcher starts.

    On Linux, glibc is told to keep the memory of large messages for reuse
    (:data:`taskyard.heap.KEEP_SETTINGS`) unless ``GLIBC_TUNABLES`` is set already. By
    default glibc serves a large allocation (from 128 KiB up, the bound rising
    to 32 MiB as the process frees such blocks, and always above 64 MiB on a
    thread such as libzmq's I/O thread, which allocates every received
    message) from a fresh ``mmap`` and unmaps it on ``free``, so each large
    message is faulted in and zeroed anew: on the machines we measured, ~0.07
    ms per MB when the kernel has the pages at hand and up to ~3 ms per MB when
    the hypervisor must supply them, against ~0.05 ms per MB to write memory
    the process already has. With these settings large buffers come from the
    heap and go back to it; the processes give the heap back to the system
    when they are idle (:class:`taskyard.heap.HeapTrimmer`). Transparent huge
    pages (``glibc.malloc.hugetlb=1``) are not asked for: they made first
    touches cheaper, but the kernel's compaction on a huge-page fault stalled
    some transfers for tens of milliseconds. See the performance page.
    """
    env = dict(os.environ)
    if sys.platform.startswith("linux"):
        env.setdefault("GLIBC_TUNABLES", MALLOC_TUNABLES)
    return env


def cluster_file_path(profile_dir: str | os.PathLike[str], cluster_id: str) -> Path:
    """Where a running cluster describes itself: ``<profile_dir>/security/cluster-<cluster_id>.json``.

    ``ty.Cluster`` and ``ipcluster start`` both write it (``ty.Cluster.from_file``
    reads it, ``ipcluster list`` lists it) and remove it when they stop.
    """
    return Path(profile_dir) / "security" / f"cluster-{cluster_id}.json"


def write_cluster_file(path: Path, info: dict[str, Any]) -> None:
    """Write ``{"cluster": info}`` to ``path`` atomically (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"cluster": info}))
    os.replace(tmp, path)


class LocalCluster:
    """A controller and engines on this machine.

    Parameters
    ----------
    n : int
        Engines to start.
    profile, profile_dir, cluster_id :
        Where the connection files go (see :func:`taskyard.protocol.connection.profile_dir`).
    controller_args, engine_args : list of str
        Extra command-line arguments, e.g. ``["--scheme=lru"]``.
    """

    def __init__(
        self,
        n: int = 2,
        profile: str = "default",
        profile_dir: str | os.PathLike[str] | None = None,
        cluster_id: str = "",
        controller_args: Sequence[str] = (),
        engine_args: Sequence[str] = (),
        log_level: str = "INFO",
    ) -> None:
        if n < 0:
            raise ConfigError(f"the number of engines must be at least 0, not {n}")
        self.n = n
        self.profile_dir = connection.profile_dir(profile, profile_dir)
        self.cluster_id = cluster_id
        self.controller_args = list(controller_args)
        self.engine_args = list(engine_args)
        self.log_level = log_level
        self.controller: subprocess.Popen[bytes] | None = None
        self.engines: list[subprocess.Popen[bytes]] = []
        self._logs: list[Any] = []

    @property
    def client_file(self) -> Path:
        return connection.connection_file("client", profile_dir_=self.profile_dir, cluster_id=self.cluster_id)

    @property
    def engine_file(self) -> Path:
        return connection.connection_file("engine", profile_dir_=self.profile_dir, cluster_id=self.cluster_id)

    def _common_args(self) -> list[str]:
        args = [f"--profile-dir={self.profile_dir}", f"--log-level={self.log_level}"]
        if self.cluster_id:
            args.append(f"--cluster-id={self.cluster_id}")
        return args

    def _spawn(self, app: str, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log_dir = self.profile_dir / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        logfile = open(log_dir / log_name, "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(logfile)
        return subprocess.Popen(
            [sys.executable, "-m", f"taskyard.apps.{app}", *self._common_args(), *args],
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=child_env(),
        )

    def start_controller(self, timeout: float = 30.0) -> None:
        """Start the controller and wait for its connection files."""
        for path in (self.client_file, self.engine_file):
            path.unlink(missing_ok=True)
        suffix = f"-{self.cluster_id}" if self.cluster_id else ""
        # The controller stops by itself if this process dies without stopping it
        # (a killed notebook kernel, test run or ipcluster); its engines follow.
        owner = [f"--IPController.watch_pid={os.getpid()}"]
        self.controller = self._spawn("controller", [*owner, *self.controller_args], f"ipcontroller{suffix}.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.controller.poll() is not None:
                raise ConfigError(
                    f"the controller exited with code {self.controller.returncode}; see {self.profile_dir / 'log'}"
                )
            if self.client_file.exists() and self.engine_file.exists():
                try:
                    info = connection.read_connection_file(self.client_file)
                except ConfigError:
                    info = {}
                if info.get("controller_pid") == self.controller.pid:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"the controller wrote no connection file within {timeout} s")

    def start_engines(self, n: int | None = None) -> list[subprocess.Popen[bytes]]:
        """Start ``n`` more engines (default: ``self.n``); returns their processes."""
        n = self.n if n is None else n
        suffix = f"-{self.cluster_id}" if self.cluster_id else ""
        started = []
        for _ in range(n):
            index = len(self.engines)
            self.engines.append(self._spawn("engine", self.engine_args, f"ipengine{suffix}-{index}.log"))
            started.append(self.engines[-1])
        return started

    def wait_for_engines(self, n: int | None = None, timeout: float = 60.0) -> list[int]:
        """Wait until ``n`` engines are registered; returns their ids."""
        n = self.n if n is None else n
        deadline = time.monotonic() + timeout
        info = connection.read_connection_file(self.client_file)
        ids: list[int] = []
        with HubQuery(info) as hub:
            while time.monotonic() < deadline:
                dead = [p for p in self.engines if p.poll() is not None]
                if len(self.engines) - len(dead) < n:
                    codes = [p.returncode for p in dead]
                    raise ConfigError(f"engines exited (codes {codes}); see {self.profile_dir / 'log'}")
                ids = hub.engine_ids(timeout=max(0.1, deadline - time.monotonic()))
                if len(ids) >= n:
                    return ids
                time.sleep(0.02)
        raise TimeoutError(f"{len(ids)} of {n} engines registered within {timeout} s")

    def start(self, timeout: float = 60.0) -> None:
        """Start the controller and the engines and wait for them all."""
        try:
            self.start_controller(timeout)
            self.start_engines()
            self.wait_for_engines(self.n, timeout)
        except BaseException:
            self.stop()
            raise

    def describe(self, **extra: Any) -> dict[str, Any]:
        """What another process needs to attach to this cluster (the cluster file's content)."""
        return {
            **extra,
            "n": self.n,
            "profile_dir": str(self.profile_dir),
            "cluster_id": self.cluster_id,
            "client_file": str(self.client_file),
            "controller_pid": self.controller.pid if self.controller is not None else None,
            "engine_pids": [p.pid for p in self.engines],
        }

    def pids(self) -> list[int]:
        procs = [self.controller, *self.engines] if self.controller else list(self.engines)
        return [p.pid for p in procs if p is not None]

    def stop(self, grace: float = 5.0) -> None:
        """Stop engines, then the controller: SIGTERM, then SIGKILL after ``grace`` seconds."""
        procs = [*self.engines, *([self.controller] if self.controller else [])]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for logfile in self._logs:
            logfile.close()
        self._logs.clear()
        self.engines.clear()
        self.controller = None
        for path in (self.client_file, self.engine_file):
            path.unlink(missing_ok=True)

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class HubQuery:
    """A minimal synchronous connection to the hub, for launchers (no client thread)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.session = Session(info["key"], info.get("signature_scheme", "hmac-sha256"), username="launcher")
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(connection.url(info, "registration"))

    def request(self, msg_type: str, content: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        sent = self.session.send_new(self.socket, msg_type, content)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.socket.poll(max(1, int((deadline - time.monotonic()) * 1000))):
                break
            try:
                reply = self.session.deserialize(self.socket.recv_multipart())
            except ProtocolError:
                continue
            if reply.parent_id == sent.msg_id:
                return reply.content
        raise TimeoutError(f"the controller did not answer {msg_type} within {timeout} s")

    def engine_ids(self, timeout: float = 5.0) -> list[int]:
        content = self.request("connection_request", {}, min(timeout, 5.0))
        return sorted(int(k) for k in content.get("engines", {}))

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()

    def __enter__(self) -> HubQuery:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
