"""``taskyard controller|engine|cluster`` and ``python -m taskyard``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import taskyard as ty

BIN = Path(sys.executable).parent


def taskyard(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    path = BIN / "taskyard"
    if not path.exists():
        pytest.fail(f"taskyard is not installed next to {sys.executable}: install the package (pip install .)")
    env = dict(os.environ, TASKYARD_DIR=str(tmp_path / "ty"))
    return subprocess.run([str(path), *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = taskyard(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("controller", "engine", "cluster"):
        assert command in result.stdout


def test_unknown_command_fails_with_a_suggestion(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "taskyard", "clustr"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "did you mean cluster?" in result.stderr


def test_refusals_apply_through_taskyard(tmp_path: Path) -> None:
    result = taskyard(tmp_path, "cluster", "start", "--engines=MPI")
    assert result.returncode != 0
    assert "--engines is not supported" in result.stderr


def test_cluster_start_and_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKYARD_DIR", str(tmp_path / "ty"))
    started = taskyard(tmp_path, "cluster", "start", "-n", "1", "--daemonize", "--profile=cli", timeout=90)
    try:
        assert started.returncode == 0, started.stderr
        with ty.Client(profile="cli", timeout=10) as rc:
            rc.wait_for_engines(1, timeout=30, interactive=False)
            assert rc[:].apply_sync(lambda: 3) == [3]
    finally:
        stopped = taskyard(tmp_path, "cluster", "stop", "--profile=cli", timeout=60)
    assert stopped.returncode == 0, stopped.stderr
