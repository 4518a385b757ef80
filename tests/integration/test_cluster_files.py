"""How clients find clusters: connection files, connection info, and clusters' own files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

import taskyard as ty
from taskyard.error import ConfigError
from tests.helpers import assert_all_gone, wait_for
from tests.integration.conftest import ClusterHandle


def test_missing_file_names_the_file_it_looked_for(
    taskyard_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "no-ipython"))
    with pytest.raises(ConfigError) as info:
        ty.Client(profile="nothere", timeout=0)
    expected = taskyard_dir / "profile_nothere" / "security" / "ipcontroller-client.json"
    assert str(expected) in str(info.value)
    assert "ipyparallel" not in str(info.value)


def test_missing_file_mentions_a_running_ipyparallel_cluster(
    taskyard_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ipython = tmp_path / "ipython"
    security = ipython / "profile_default" / "security"
    security.mkdir(parents=True)
    (security / "ipcontroller-client.json").write_text("{}")
    monkeypatch.setenv("IPYTHONDIR", str(ipython))
    with pytest.raises(ConfigError, match="ipyparallel") as info:
        ty.Client(timeout=0)
    assert str(security / "ipcontroller-client.json") in str(info.value)
    assert "ipcluster stop" in str(info.value)


def test_connection_info_as_a_dict(cluster: ClusterHandle) -> None:
    info = json.loads(Path(cluster.cluster.client_file).read_text())
    with ty.Client(info, timeout=10) as rc:
        rc.wait_for_engines(2, timeout=10, interactive=False)
        assert rc[:].apply_sync(lambda: 7) == [7, 7]
        assert rc.url_file is None


def test_connection_info_as_a_path_positional(cluster: ClusterHandle) -> None:
    with ty.Client(cluster.cluster.client_file, timeout=10) as rc:
        rc.wait_for_engines(2, timeout=10, interactive=False)
        assert len(rc.ids) == 2


def test_context_is_used_and_left_open(cluster: ClusterHandle) -> None:
    context = zmq.Context()
    try:
        rc = ty.Client(url_file=cluster.cluster.client_file, context=context, debug=True, timeout=10)
        assert rc.context is context
        assert rc.debug is True
        rc.close()
        assert not context.closed
    finally:
        context.term()


def test_client_of_a_cluster(taskyard_dir: Path) -> None:
    cluster = ty.Cluster(n=1, profile_dir=taskyard_dir / "profile_c", log_level="DEBUG")
    cluster.start_cluster_sync(timeout=30)
    try:
        with ty.Client(cluster=cluster, timeout=10) as rc:
            rc.wait_for_engines(1, timeout=10, interactive=False)
            assert len(rc.ids) == 1
    finally:
        cluster.stop_cluster_sync()


def test_cluster_n_defaults_to_cpu_count() -> None:
    assert ty.Cluster().n == (os.cpu_count() or 1)


def test_cluster_file_lets_a_second_python_attach(taskyard_dir: Path) -> None:
    cluster = ty.Cluster(profile_dir=taskyard_dir / "profile_share", cluster_id="share", log_level="DEBUG")
    assert cluster.shutdown_atexit is True
    rc = cluster.start_and_connect_sync(1, timeout=30)
    pids = cluster._launcher.pids()
    try:
        assert cluster.cluster_file.exists()
        other = ty.Cluster.from_file(profile_dir=taskyard_dir / "profile_share", cluster_id="share")
        assert other.is_running and other.shutdown_atexit is False
        assert other.to_dict()["cluster"]["controller_pid"] == cluster._launcher.controller.pid  # type: ignore[union-attr]
        with other.connect_client_sync(timeout=10) as rc2:
            rc2.wait_for_engines(1, timeout=10, interactive=False)
            assert rc2[:].apply_sync(lambda: 5) == [5]
        again = ty.Cluster.from_dict(json.loads(json.dumps(cluster.to_dict())))
        assert again.client_file == cluster.client_file
        cluster.stop_engines_sync()
        assert cluster._launcher.engines == []
        rc.close()
    finally:
        cluster.stop_cluster_sync()
    assert not cluster.cluster_file.exists()
    assert_all_gone(pids)
    with pytest.raises(ConfigError, match="not found"):
        ty.Cluster.from_file(profile_dir=taskyard_dir / "profile_share", cluster_id="share")


def test_shutdown_atexit_is_settable(taskyard_dir: Path) -> None:
    cluster = ty.Cluster(n=1, profile_dir=taskyard_dir / "profile_x", shutdown_atexit=False)
    cluster.start_controller_sync(timeout=30)
    try:
        assert cluster._finalizer is not None and cluster._finalizer.atexit is False
        cluster.shutdown_atexit = True
        assert cluster._finalizer.atexit is True
    finally:
        cluster.stop_cluster_sync()


def test_ipcluster_list_shows_running_clusters_and_skips_stale_files(taskyard_dir: Path) -> None:
    stale = taskyard_dir / "profile_old" / "security" / "cluster-gone.json"
    stale.parent.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(10)
    stale.write_text(json.dumps({"cluster": {"cluster_id": "gone", "controller_pid": dead.pid, "engine_pids": []}}))
    cluster = ty.Cluster(n=1, profile_dir=taskyard_dir / "profile_listed", cluster_id="listed")
    cluster.start_cluster_sync(timeout=30)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "taskyard", "cluster", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        controller = cluster._launcher.controller
        assert controller is not None
        pid = controller.pid
    finally:
        cluster.stop_cluster_sync()
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert rows == [["listed", "listed", "1", str(pid)]]


def test_stop_engine_stops_that_engine_only(taskyard_dir: Path) -> None:
    cluster = ty.Cluster(n=2, profile_dir=taskyard_dir / "profile_one", log_level="DEBUG")
    rc = cluster.start_and_connect_sync(timeout=30)
    pids = cluster._launcher.pids()
    try:
        first, second = rc.ids
        victim_pid = rc[first].apply_sync(os.getpid)
        cluster.stop_engine_sync(first)
        assert victim_pid not in [p.pid for p in cluster._launcher.engines]
        assert_all_gone([victim_pid])
        deadline = time.monotonic() + 15
        while first in rc.ids and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rc.ids == [second]
        assert rc[second].apply_sync(lambda: 7) == 7
        assert json.loads(cluster.cluster_file.read_text())["cluster"]["engine_pids"] == [
            p.pid for p in cluster._launcher.engines
        ]
        with pytest.raises(KeyError, match="no live engine 99"):
            cluster.stop_engine_sync(99)
        rc.close()
    finally:
        cluster.stop_cluster_sync()
    assert_all_gone(pids)


def test_engine_sets_stop_alone_and_restart_engines(taskyard_dir: Path) -> None:
    cluster = ty.Cluster(n=1, cluster_id="sets")
    try:
        cluster.start_controller_sync()
        first = cluster.start_engines_sync(2)
        second = cluster.start_engines_sync(1)
        assert first != second
        rc = cluster.connect_client_sync()
        rc.wait_for_engines(3, timeout=30)
        cluster.stop_engines_sync(first)  # the other set keeps running
        wait_for(lambda: len(rc.ids) == 1, 20, "the first set's engines to unregister")
        with pytest.raises(KeyError, match="no engine set"):
            cluster.stop_engines_sync(first)
        cluster.restart_engines_sync()
        wait_for(lambda: len(rc.ids) == 1 and rc.ids != [2], 20, "a fresh engine instead of engine 2")
        assert rc[:].apply_sync(lambda: 1) == [1]
    finally:
        cluster.stop_cluster_sync()


def test_cluster_manager_loads_the_running_clusters(taskyard_dir: Path) -> None:
    first, second = ty.Cluster(n=1, cluster_id=""), ty.Cluster(n=1, cluster_id="two", profile="other")
    try:
        first.start_cluster_sync()
        second.start_cluster_sync()
        manager = ty.ClusterManager()
        clusters = manager.load_clusters()
        assert sorted(clusters) == ["default:", "other:two"]
        assert manager.load_clusters(profile="other") is manager.clusters
        clusters["other:two"].stop_cluster_sync()
        assert sorted(ty.ClusterManager().load_clusters()) == ["default:"]
        assert sorted(manager.load_clusters()) == ["default:"]  # the stopped one is forgotten
    finally:
        first.stop_cluster_sync()
        second.stop_cluster_sync()
