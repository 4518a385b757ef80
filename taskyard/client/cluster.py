"""``ty.Cluster``: start a controller and engines from Python (a notebook, a script).

Examples
--------
>>> import taskyard as ty
>>> with ty.Cluster(n=2) as rc:                    # doctest: +SKIP
...     print(rc[:].apply_sync(lambda: "hello"))
['hello', 'hello']

or, keeping the cluster around::

    cluster = ty.Cluster(n=4, scheme="lru")
    rc = cluster.start_and_connect_sync()
    ...
    cluster.stop_cluster_sync()

Everything a Cluster starts is stopped when it is stopped, when it is garbage
collected, and when the interpreter exits (a notebook kernel restart included).
If the Python process is killed outright, the controller notices its parent is
gone and stops, and the engines follow it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taskyard.client.client import Client
from taskyard.cluster.launcher import LocalCluster, cluster_file_path, write_cluster_file
from taskyard.error import ConfigError
from taskyard.protocol import connection
from taskyard.refusals import CLUSTER_REFUSALS, check_keywords

#: The keywords Cluster understands (for close-match suggestions).
CLUSTER_KEYWORDS = (
    "n",
    "scheme",
    "profile",
    "profile_dir",
    "cluster_id",
    "controller_args",
    "engine_args",
    "log_level",
    "shutdown_atexit",
)


def _terminate(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each engine, then wait for it (SIGKILL after 5 s)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_quietly(launcher: LocalCluster, cluster_file: Path) -> None:
    try:
        launcher.stop()
        cluster_file.unlink(missing_ok=True)
    except Exception:  # noqa: BLE001 - at interpreter exit there is nobody to tell
        pass


class Cluster:
    """A controller and ``n`` engines on this machine, owned by this object.

    Parameters
    ----------
    n : int, optional
        Engines to start (default: ``os.cpu_count()``).
    scheme : str, optional
        The task scheduler's scheme (``--scheme``).
    profile, profile_dir : str, optional
        Where connection files and logs go (default profile ``"default"``).
    cluster_id : str, optional
        Names the cluster within the profile; default: a fresh random id, so
        several clusters can run side by side.
    controller_args, engine_args : list of str
        Extra command-line arguments for ``ipcontroller`` / ``ipengine``.
    log_level : str
        Log level of the processes (their logs are in ``<profile_dir>/log``).
    shutdown_atexit : bool
        Stop the cluster when the interpreter exits (default True). Also an attribute.

    Notes
    -----
    When it starts, the cluster writes ``<profile_dir>/security/cluster-<cluster_id>.json``
    (removed when it stops), so another Python can attach to it with
    :meth:`Cluster.from_file`; ``ipcluster list`` lists those files.

    Any other keyword (ipyparallel's ``engine_launcher_class``, ``engines``,
    ...) raises :class:`~taskyard.error.UnsupportedOption` naming it.
    """

    def __init__(
        self,
        n: int | None = None,
        scheme: str | None = None,
        profile: str = "default",
        profile_dir: str | os.PathLike[str] | None = None,
        cluster_id: str | None = None,
        controller_args: Sequence[str] = (),
        engine_args: Sequence[str] = (),
        log_level: str = "INFO",
        shutdown_atexit: bool = True,
        **kwargs: Any,
    ) -> None:
        check_keywords("Cluster", kwargs, CLUSTER_REFUSALS, CLUSTER_KEYWORDS)
        n = n if n is not None else (os.cpu_count() or 1)
        self.n = n
        self._shutdown_atexit = shutdown_atexit
        #: Set by from_dict/from_file: processes another Python started (pids only).
        self._attached: dict[str, Any] | None = None
        self.scheme = scheme
        self.cluster_id = cluster_id if cluster_id is not None else f"{os.getpid()}-{os.urandom(3).hex()}"
        args = list(controller_args)
        if scheme:
            args.append(f"--scheme={scheme}")
        self._launcher = LocalCluster(
            n,
            profile=profile,
            profile_dir=profile_dir,
            cluster_id=self.cluster_id,
            controller_args=args,
            engine_args=list(engine_args),
            log_level=log_level,
        )
        self._client: Client | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        #: engine set id -> the engine processes start_engines started under it
        self._engine_sets: dict[str, list[subprocess.Popen[bytes]]] = {}

    @property
    def profile_dir(self) -> str:
        return str(self._launcher.profile_dir)

    @property
    def shutdown_atexit(self) -> bool:
        """Whether the cluster is stopped when the interpreter exits."""
        return self._shutdown_atexit

    @shutdown_atexit.setter
    def shutdown_atexit(self, value: bool) -> None:
        self._shutdown_atexit = bool(value)
        if self._finalizer is not None:
            self._finalizer.atexit = self._shutdown_atexit

    @property
    def cluster_file(self) -> Path:
        """``<profile_dir>/security/cluster-<cluster_id>.json``, present while the cluster runs."""
        return cluster_file_path(self.profile_dir, self.cluster_id)

    def to_dict(self) -> dict[str, Any]:
        """What another Python needs to attach to this cluster (see :meth:`from_dict`)."""
        if self._attached is not None:
            return {"cluster": dict(self._attached)}
        return {"cluster": self._launcher.describe(**{"class": "taskyard.Cluster", "scheme": self.scheme})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cluster:
        """A Cluster attached to the running cluster ``data`` describes (from :meth:`to_dict`).

        It does not own the processes: it is not stopped at exit unless
        ``shutdown_atexit`` is set, but :meth:`stop_cluster_sync` stops them.
        """
        info = dict(data.get("cluster", data))
        cluster = cls(
            n=int(info.get("n") or 1),
            scheme=info.get("scheme"),
            profile_dir=info["profile_dir"],
            cluster_id=str(info.get("cluster_id", "")),
            shutdown_atexit=False,
        )
        cluster._attached = info
        return cluster

    @classmethod
    def from_file(
        cls,
        cluster_file: str | os.PathLike[str] | None = None,
        *,
        profile: str | None = None,
        profile_dir: str | os.PathLike[str] | None = None,
        cluster_id: str = "",
    ) -> Cluster:
        """Attach to a running cluster from its ``security/cluster-<cluster_id>.json``."""
        if cluster_file is None:
            directory = connection.profile_dir(profile or "default", profile_dir)
            cluster_file = cluster_file_path(directory, cluster_id)
        path = Path(cluster_file)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"cluster file {path} not found: is that cluster running? (see `ipcluster list`)"
            ) from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read cluster file {path}: {exc}") from None
        return cls.from_dict(data)

    def _write_cluster_file(self) -> None:
        write_cluster_file(self.cluster_file, self.to_dict()["cluster"])

    def _arm(self) -> None:
        self._write_cluster_file()
        if self._finalizer is None:
            self._finalizer = weakref.finalize(self, _stop_quietly, self._launcher, self.cluster_file)
        self._finalizer.atexit = self._shutdown_atexit

    @property
    def client_file(self) -> str:
        """The client connection file of this cluster."""
        if self._attached is not None:
            return str(self._attached["client_file"])
        return str(self._launcher.client_file)

    @property
    def is_running(self) -> bool:
        if self._attached is not None:  # stopped by anyone: its file is gone (the pid may linger a moment)
            return self.cluster_file.exists() and _alive(self._attached.get("controller_pid"))
        return self._launcher.controller is not None

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<taskyard.Cluster {self.cluster_id} n={self.n} {state}>"

    # -- sync -------------------------------------------------------------

    def start_cluster_sync(self, n: int | None = None, timeout: float = 60.0) -> None:
        """Start the controller and ``n`` engines (default: ``self.n``); wait until every engine is registered."""
        if self.is_running:
            return
        if n is not None:
            self.n = self._launcher.n = n
        self._launcher.start(timeout)
        self._arm()

    def start_controller_sync(self, timeout: float = 60.0) -> None:
        """Start only the controller (add engines with :meth:`start_engines_sync`)."""
        self._launcher.start_controller(timeout)
        self._arm()

    def start_engines_sync(self, n: int | None = None) -> str:
        """Start ``n`` more engines (default: ``self.n``); returns their engine set id,
        for :meth:`stop_engines_sync` (as ipyparallel's)."""
        procs = self._launcher.start_engines(n)
        engine_set_id = f"{self.cluster_id or 'engines'}-{len(self._engine_sets) + 1}"
        self._engine_sets[engine_set_id] = procs
        self._write_cluster_file()
        return engine_set_id

    def stop_engines_sync(self, engine_set_id: str | None = None) -> None:
        """Stop the engines of one engine set (from :meth:`start_engines_sync`), or
        every engine; the controller keeps running."""
        if engine_set_id is None:
            engines = list(self._launcher.engines)
            self._engine_sets.clear()
        elif engine_set_id in self._engine_sets:
            engines = self._engine_sets.pop(engine_set_id)
        else:
            raise KeyError(f"no engine set {engine_set_id!r} in this cluster (there are: {sorted(self._engine_sets)})")
        _terminate(engines)
        for proc in engines:
            if proc in self._launcher.engines:
                self._launcher.engines.remove(proc)
        if self.is_running:
            self._write_cluster_file()

    def restart_engines_sync(self) -> None:
        """Stop every engine and start as many again (they register with new ids)."""
        n = len([p for p in self._launcher.engines if p.poll() is None]) or self.n
        self.stop_engines_sync()
        self.start_engines_sync(n)

    def signal_engines_sync(self, signum: int = signal.SIGINT) -> None:
        """Send ``signum`` to every engine this cluster started (or, attached with
        :meth:`from_file`, every engine its file lists).

        ``SIGINT`` interrupts what each engine runs: that task fails with a
        ``KeyboardInterrupt`` RemoteError and the engine takes the next one, as
        ipyparallel's ``cluster.signal_engines(signal.SIGINT)`` does.
        """
        if self._attached is not None:
            pids = [int(pid) for pid in self._attached.get("engine_pids", [])]
        else:
            pids = [proc.pid for proc in self._launcher.engines if proc.poll() is None]
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signum)

    def stop_engine_sync(self, engine_id: int, timeout: float = 10.0) -> None:
        """Stop the engine with id ``engine_id`` (as in ``rc.ids``); the others keep running.

        The controller notices the engine is gone and fails its unfinished tasks
        with :class:`~taskyard.EngineError`, as for an engine that dies.
        """
        client = self._client or self.connect_client_sync()
        pids = client.engine_pids(timeout=timeout)
        if engine_id not in pids:
            raise KeyError(f"no live engine {engine_id} in this cluster (engines: {sorted(pids)})")
        pid = pids[engine_id]
        owned = [p for p in self._launcher.engines if p.pid == pid]
        if owned:
            _terminate(owned)
            self._launcher.engines.remove(owned[0])
            for procs in self._engine_sets.values():
                if owned[0] in procs:
                    procs.remove(owned[0])
        elif self._attached is not None and pid in self._attached.get("engine_pids", []):
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
            self._attached["engine_pids"] = [p for p in self._attached["engine_pids"] if p != pid]
        else:
            raise KeyError(f"engine {engine_id} (pid {pid}) was not started by this cluster")
        if self.is_running:
            self._write_cluster_file()

    def connect_client_sync(self, timeout: float = 30.0) -> Client:
        """A Client connected to this cluster."""
        client = Client(url_file=self._launcher.client_file, timeout=timeout)
        client.cluster = self  # the client keeps its cluster alive, as ipyparallel's does
        if self._client is None:
            self._client = client
        return client

    def start_and_connect_sync(self, n: int | None = None, activate: bool = False, timeout: float = 60.0) -> Client:
        """Start the cluster and return a Client with all ``n`` engines registered.

        With ``activate=True`` the ``%px`` magics are registered for the client's engines.
        """
        self.start_cluster_sync(n, timeout)
        client = self.connect_client_sync()
        client.wait_for_engines(self.n, timeout=timeout, interactive=False)
        if activate:
            client.activate()
        return client

    def stop_cluster_sync(self) -> None:
        """Stop every process this Cluster started (and close its client)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._attached is not None:
            pids = [*self._attached.get("engine_pids", []), self._attached.get("controller_pid")]
            for pid in pids:
                if _alive(pid):
                    os.kill(pid, signal.SIGTERM)
            self.cluster_file.unlink(missing_ok=True)
            return
        self._launcher.stop()
        self.cluster_file.unlink(missing_ok=True)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    # -- async twins ------------------------------------------------------

    async def start_cluster(self, n: int | None = None, timeout: float = 60.0) -> None:
        await asyncio.to_thread(self.start_cluster_sync, n, timeout)

    async def start_controller(self, timeout: float = 60.0) -> None:
        await asyncio.to_thread(self.start_controller_sync, timeout)

    async def connect_client(self, timeout: float = 30.0) -> Client:
        return await asyncio.to_thread(self.connect_client_sync, timeout)

    async def start_and_connect(self, n: int | None = None, activate: bool = False, timeout: float = 60.0) -> Client:
        return await asyncio.to_thread(self.start_and_connect_sync, n, activate, timeout)

    async def start_engines(self, n: int | None = None) -> str:
        return await asyncio.to_thread(self.start_engines_sync, n)

    async def stop_engines(self, engine_set_id: str | None = None) -> None:
        await asyncio.to_thread(self.stop_engines_sync, engine_set_id)

    async def restart_engines(self) -> None:
        await asyncio.to_thread(self.restart_engines_sync)

    async def signal_engines(self, signum: int = signal.SIGINT) -> None:
        await asyncio.to_thread(self.signal_engines_sync, signum)

    async def stop_engine(self, engine_id: int, timeout: float = 10.0) -> None:
        await asyncio.to_thread(self.stop_engine_sync, engine_id, timeout)

    async def stop_cluster(self) -> None:
        await asyncio.to_thread(self.stop_cluster_sync)

    # -- context managers -------------------------------------------------

    def __enter__(self) -> Client:
        return self.start_and_connect_sync()

    def __exit__(self, *exc: Any) -> None:
        self.stop_cluster_sync()

    async def __aenter__(self) -> Client:
        return await self.start_and_connect()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop_cluster()


class ClusterManager:
    """The running clusters of the profiles, keyed ``"<profile>:<cluster_id>"``, as
    ipyparallel's ClusterManager keeps them.

    >>> clusters = ty.ClusterManager().load_clusters()   # doctest: +SKIP
    >>> clusters["default:"].stop_cluster_sync()          # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.clusters: dict[str, Cluster] = {}

    def load_clusters(
        self,
        *,
        profile_dirs: Sequence[str | os.PathLike[str]] | None = None,
        profile_dir: str | os.PathLike[str] | None = None,
        profiles: Sequence[str] | None = None,
        profile: str | None = None,
    ) -> dict[str, Cluster]:
        """Find the running clusters (their ``security/cluster-*.json`` files) in the
        given profile directories or profiles (default: every profile in
        ``$TASKYARD_DIR``); forget the ones that have stopped. Returns :attr:`clusters`."""
        for key, cluster in list(self.clusters.items()):
            if not cluster.is_running:
                del self.clusters[key]
        if profile_dirs is not None:
            dirs = [Path(d) for d in profile_dirs]
        elif profile_dir is not None:
            dirs = [Path(profile_dir)]
        elif profiles is not None or profile is not None:
            dirs = [connection.profile_dir(name) for name in (profiles if profiles is not None else [profile or ""])]
        else:
            dirs = sorted(connection.taskyard_dir().glob("profile_*"))
        known = {str(c.cluster_file) for c in self.clusters.values()}
        for directory in dirs:
            for path in sorted(directory.glob("security/cluster-*.json")):
                if str(path) in known:
                    continue
                try:
                    cluster = Cluster.from_file(path)
                except ConfigError:
                    continue  # unreadable: not a cluster we can attach to
                if cluster.is_running:
                    self.clusters[f"{directory.name.removeprefix('profile_')}:{cluster.cluster_id}"] = cluster
        return self.clusters
