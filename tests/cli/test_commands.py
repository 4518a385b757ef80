"""The command-line tools, driven as README.rst drives them."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import taskyard as ty
from tests.helpers import assert_all_gone, children_of, pid_alive, wait_for

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def command(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable}: install the package (pip install .)")
    return str(path)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = dict(os.environ)
    environment["TASKYARD_DIR"] = str(tmp_path / "taskyard")
    return environment


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    pids = [p.pid for p in started]
    for p in started:
        pids.extend(children_of(p.pid))
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in started:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        for stream in (p.stdout, p.stderr):
            if stream is not None:
                stream.close()
    assert_all_gone(pids)


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("name", ["ipcontroller", "ipengine", "ipcluster"])
def test_help(name: str, env: dict[str, str]) -> None:
    result = run([command(name), "--help"], env)
    assert result.returncode == 0, result.stderr
    assert "--profile" in result.stdout


def test_controller_help_lists_its_options(env: dict[str, str]) -> None:
    out = run([command("ipcontroller"), "--help"], env).stdout
    for flag in ("--ip", "--scheme", "--hwm", "--ping", "--profile-dir", "--cluster-id", "--log-level"):
        assert flag in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--scheme=bogus"], "leastload"),
        (["--log-level=LOUD"], "DEBUG"),
        (["--hwm=-1"], "hwm"),
        (["--ping=0"], "ping"),
    ],
)
def test_bad_values_exit_non_zero_listing_choices(args: list[str], expected: str, env: dict[str, str]) -> None:
    started = time.monotonic()
    result = run([command("ipcontroller"), *args], env, timeout=30)
    assert result.returncode != 0
    assert expected in result.stderr
    assert time.monotonic() - started < 20
    assert not (Path(env["TASKYARD_DIR"]) / "profile_default" / "security" / "ipcontroller-client.json").exists()


def test_engine_without_controller_fails_clearly(env: dict[str, str]) -> None:
    result = run([command("ipengine"), "--IPEngine.wait_for_url_file=0.2"], env)
    assert result.returncode != 0
    assert "Error:" in result.stderr and "ipcontroller" in result.stderr


def test_controller_then_two_engines_with_no_flags(env: dict[str, str], procs: list[subprocess.Popen[str]]) -> None:
    profile = Path(env["TASKYARD_DIR"]) / "profile_default"
    client_file = profile / "security" / "ipcontroller-client.json"
    controller = subprocess.Popen([command("ipcontroller")], env=env, text=True, stderr=subprocess.DEVNULL)
    procs.append(controller)
    wait_for(client_file.exists, 20, "the client connection file")
    for name in ("ipcontroller-client.json", "ipcontroller-engine.json"):
        mode = stat.S_IMODE((profile / "security" / name).stat().st_mode)
        assert mode == 0o600, oct(mode)
    info = json.loads(client_file.read_text())
    for field in (
        "key",
        "signature_scheme",
        "interface",
        "registration",
        "mux",
        "control",
        "task",
        "iopub",
        "notification",
    ):
        assert field in info
    assert info["interface"] == "tcp://127.0.0.1"
    for _ in range(2):
        procs.append(subprocess.Popen([command("ipengine")], env=env, text=True, stderr=subprocess.DEVNULL))
    with ty.Client(url_file=client_file, timeout=20) as rc:
        rc.wait_for_engines(2, timeout=20, interactive=False)
        assert rc.ids == [0, 1]
        assert rc[:].apply_sync(lambda: "ok") == ["ok", "ok"]
        assert rc.load_balanced_view().map_sync(lambda x: -x, range(4)) == [0, -1, -2, -3]
    controller.send_signal(signal.SIGINT)
    assert controller.wait(15) == 0
    assert not client_file.exists()
    # Engines notice the controller is gone and exit by themselves.
    for engine in procs[1:]:
        assert engine.wait(30) == 0


def test_ipcluster_start_daemonize_and_stop(env: dict[str, str]) -> None:
    started = time.monotonic()
    result = run([command("ipcluster"), "start", "-n", "2", "--daemonize"], env)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "ready" in result.stdout
    profile = Path(env["TASKYARD_DIR"]) / "profile_default"
    pid_info = json.loads((profile / "pid" / "ipcluster.json").read_text())
    pids = [pid_info["pid"], *pid_info["pids"]]
    try:
        assert all(pid_alive(p) for p in pids)
        with ty.Client(profile_dir=str(profile), timeout=10) as rc:
            assert len(rc.ids) == 2
            assert sorted(rc[:].apply_sync(os.getpid)) == sorted(pid_info["pids"][1:])
        # Start-up is reported in the benchmarks, not asserted; this only catches a hang.
        assert elapsed < 30
        again = run([command("ipcluster"), "start", "-n", "1", "--daemonize"], env)
        assert again.returncode != 0 and "already running" in again.stderr
    finally:
        stop = run([command("ipcluster"), "stop"], env)
    assert stop.returncode == 0, stop.stderr
    assert_all_gone(pids)
    assert not (profile / "security" / "ipcontroller-client.json").exists()
    missing = run([command("ipcluster"), "stop"], env)
    assert missing.returncode != 0 and "no cluster" in missing.stderr


def test_ipcluster_foreground_stops_on_sigint(env: dict[str, str], procs: list[subprocess.Popen[str]]) -> None:
    cluster = subprocess.Popen(
        [command("ipcluster"), "start", "-n", "1", "--cluster-id=fg"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    procs.append(cluster)
    assert cluster.stdout is not None
    line = cluster.stdout.readline()
    assert "cluster ready" in line
    client_file = Path(env["TASKYARD_DIR"]) / "profile_default" / "security" / "ipcontroller-fg-client.json"
    with ty.Client(url_file=client_file, timeout=10) as rc:
        assert rc[0].apply_sync(lambda: 5) == 5
    children = children_of(cluster.pid)
    # The cluster file ty.Cluster writes: a notebook attaches with from_file, `ipcluster list` shows it once.
    cluster_file = client_file.parent / "cluster-fg.json"
    attached = ty.Cluster.from_file(profile_dir=client_file.parent.parent, cluster_id="fg")
    assert attached.is_running and attached.client_file == str(client_file)
    assert sorted([attached.to_dict()["cluster"]["controller_pid"], *attached.to_dict()["cluster"]["engine_pids"]]) == sorted(children)
    with attached.connect_client_sync(timeout=10) as rc:
        assert rc[:].apply_sync(lambda: 6) == [6]
    listing = run([command("ipcluster"), "list"], env)
    assert [line.split()[:3] for line in listing.stdout.splitlines()[1:]] == [["default", "fg", "1"]]
    cluster.send_signal(signal.SIGINT)
    assert cluster.wait(20) == 0
    assert_all_gone(children)
    assert not client_file.exists()
    assert not cluster_file.exists()


def test_readme_demo(env: dict[str, str]) -> None:
    """The README's first command, minus creating the venv."""
    readme = (REPO / "README.rst").read_text()
    assert "ipcluster start -n 2 --daemonize && python examples/demo.py && ipcluster stop" in readme
    assert ".venv/bin/pip install '.[test]' && .venv/bin/python -m pytest" in readme
    assert run([command("ipcluster"), "start", "-n", "2", "--daemonize"], env).returncode == 0
    try:
        demo = run([sys.executable, str(REPO / "examples" / "demo.py")], env, timeout=120)
    finally:
        assert run([command("ipcluster"), "stop"], env).returncode == 0
    assert demo.returncode == 0, demo.stderr
    assert "demo finished" in demo.stdout
    assert "started after its dependency finished: True" in demo.stdout
