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
import atexit
import os
import weakref
from collections.abc import Sequence
from typing import Any

from taskyard.client.client import Client
from taskyard.cluster.launcher import LocalCluster
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


def _stop_quietly(launcher: LocalCluster) -> None:
    try:
        launcher.stop()
    except Exception:  # noqa: BLE001 - at interpreter exit there is nobody to tell
        pass


class Cluster:
    """A controller and ``n`` engines on this machine, owned by this object.

    Parameters
    ----------
    n : int
        Engines to start.
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

    Any other keyword (ipyparallel's ``engine_launcher_class``, ``engines``,
    ...) raises :class:`~taskyard.error.UnsupportedOption` naming it.
    """

    def __init__(
        self,
        n: int = 2,
        scheme: str | None = None,
        profile: str = "default",
        profile_dir: str | os.PathLike[str] | None = None,
        cluster_id: str | None = None,
        controller_args: Sequence[str] = (),
        engine_args: Sequence[str] = (),
        log_level: str = "INFO",
        **kwargs: Any,
    ) -> None:
        check_keywords("Cluster", kwargs, CLUSTER_REFUSALS, CLUSTER_KEYWORDS)
        self.n = n
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

    @property
    def profile_dir(self) -> str:
        return str(self._launcher.profile_dir)

    @property
    def client_file(self) -> str:
        """The client connection file of this cluster."""
        return str(self._launcher.client_file)

    @property
    def is_running(self) -> bool:
        return self._launcher.controller is not None

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<taskyard.Cluster {self.cluster_id} n={self.n} {state}>"

    # -- sync -------------------------------------------------------------

    def start_cluster_sync(self, timeout: float = 60.0) -> None:
        """Start the controller and the engines; wait until every engine is registered."""
        if self.is_running:
            return
        self._launcher.start(timeout)
        self._finalizer = weakref.finalize(self, _stop_quietly, self._launcher)
        atexit.register(self._finalizer)

    def start_controller_sync(self, timeout: float = 60.0) -> None:
        """Start only the controller (add engines with :meth:`start_engines_sync`)."""
        self._launcher.start_controller(timeout)
        self._finalizer = weakref.finalize(self, _stop_quietly, self._launcher)
        atexit.register(self._finalizer)

    def start_engines_sync(self, n: int | None = None) -> None:
        """Start ``n`` more engines (default: ``self.n``)."""
        self._launcher.start_engines(n)

    def connect_client_sync(self, timeout: float = 30.0) -> Client:
        """A Client connected to this cluster."""
        client = Client(url_file=self._launcher.client_file, timeout=timeout)
        if self._client is None:
            self._client = client
        return client

    def start_and_connect_sync(self, timeout: float = 60.0) -> Client:
        """Start the cluster and return a Client with all ``n`` engines registered."""
        self.start_cluster_sync(timeout)
        client = self.connect_client_sync()
        client.wait_for_engines(self.n, timeout=timeout, interactive=False)
        return client

    def stop_cluster_sync(self) -> None:
        """Stop every process this Cluster started (and close its client)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self._launcher.stop()
        if self._finalizer is not None:
            atexit.unregister(self._finalizer)
            self._finalizer.detach()
            self._finalizer = None

    # -- async twins ------------------------------------------------------

    async def start_cluster(self, timeout: float = 60.0) -> None:
        await asyncio.to_thread(self.start_cluster_sync, timeout)

    async def start_controller(self, timeout: float = 60.0) -> None:
        await asyncio.to_thread(self.start_controller_sync, timeout)

    async def start_engines(self, n: int | None = None) -> None:
        await asyncio.to_thread(self.start_engines_sync, n)

    async def connect_client(self, timeout: float = 30.0) -> Client:
        return await asyncio.to_thread(self.connect_client_sync, timeout)

    async def start_and_connect(self, timeout: float = 60.0) -> Client:
        return await asyncio.to_thread(self.start_and_connect_sync, timeout)

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
