"""Real clusters on loopback in a temporary TASKYARD_DIR, stopped and checked gone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import taskyard as ty
from taskyard.cluster.launcher import LocalCluster
from tests.helpers import assert_all_gone, children_of


@pytest.fixture
def taskyard_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "taskyard"
    monkeypatch.setenv("TASKYARD_DIR", str(path))
    return path


class ClusterHandle:
    """A started LocalCluster plus the clients made for it, for one test."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.clients: list[ty.Client] = []
        self.extra_pids: list[int] = []

    def client(self, **kwargs: object) -> ty.Client:
        rc = ty.Client(url_file=self.cluster.client_file, timeout=10, **kwargs)  # type: ignore[arg-type]
        self.clients.append(rc)
        return rc

    @property
    def engine_pids(self) -> list[int]:
        return [p.pid for p in self.cluster.engines]

    @property
    def controller_pid(self) -> int:
        assert self.cluster.controller is not None
        return self.cluster.controller.pid


@pytest.fixture
def make_cluster(taskyard_dir: Path) -> Iterator[Callable[..., ClusterHandle]]:
    handles: list[ClusterHandle] = []

    def make(
        n: int = 2, controller_args: tuple[str, ...] = (), engine_args: tuple[str, ...] = (), **kw: object
    ) -> ClusterHandle:
        cluster = LocalCluster(
            n,
            profile_dir=taskyard_dir / f"profile_test{len(handles)}",
            controller_args=list(controller_args),
            engine_args=list(engine_args),
            log_level="DEBUG",
            **kw,  # type: ignore[arg-type]
        )
        handle = ClusterHandle(cluster)
        handles.append(handle)
        cluster.start(timeout=30)
        handle.extra_pids = children_of(handle.controller_pid)
        return handle

    yield make
    for handle in handles:
        for rc in handle.clients:
            rc.close()
        pids = handle.cluster.pids() + handle.extra_pids
        handle.cluster.stop()
        assert_all_gone(pids)


@pytest.fixture
def cluster(make_cluster: Callable[..., ClusterHandle]) -> ClusterHandle:
    """A controller (default scheme) with two engines."""
    return make_cluster(2)


@pytest.fixture
def rc(cluster: ClusterHandle) -> ty.Client:
    client = cluster.client()
    client.wait_for_engines(2, timeout=10, interactive=False)
    return client
