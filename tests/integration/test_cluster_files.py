"""How clients find clusters: connection files, connection info, and clusters' own files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zmq

import taskyard as ty
from taskyard.error import ConfigError
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
