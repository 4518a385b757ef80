"""Options and keywords taskyard does not implement fail loudly, naming what to do instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import taskyard as ty
from taskyard.error import UnsupportedOption
from taskyard.refusals import CLI_REFUSALS, check_argv

BIN = Path(sys.executable).parent


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = BIN / args[0]
    if not path.exists():
        pytest.fail(f"{args[0]} is not installed next to {sys.executable}: install the package (pip install .)")
    env = dict(os.environ, TASKYARD_DIR=str(tmp_path / "ty"))
    return subprocess.run([str(path), *args[1:]], capture_output=True, text=True, timeout=60, env=env, check=False)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("ipcluster", "start", "--engines=MPI"), "--engines is not supported by taskyard: launchers other than local"),
        (("ipcontroller", "--ssh=host"), "--ssh is not supported"),
        (("ipcontroller", "--reuse"), "--reuse is not supported"),
        (("ipcontroller", "--nodb"), "--nodb is not supported"),
        (("ipengine", "--location=host"), "--location is not supported"),
        (("ipcontroller", "--shceme=lru"), "unknown option --shceme; did you mean scheme?"),
        (("ipcluster", "start", "--daemonise"), "did you mean daemonize"),
        (("ipcluster", "engines"), "ipcluster engines is not supported"),
        (("ipcluster", "strat"), "did you mean start?"),
    ],
)
def test_refused_and_unknown_options_exit_nonzero_with_one_line(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    result = run(tmp_path, *args)
    assert result.returncode != 0
    assert expected in result.stderr
    assert "will have no effect" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_every_refused_option_is_named_in_its_own_error() -> None:
    for command, table in CLI_REFUSALS.items():
        for option in table:
            error = check_argv(command, [f"--{option}=x"], known=set())
            assert error is not None and f"--{option}" in error, (command, option)


def test_known_options_and_values_pass() -> None:
    assert (
        check_argv("ipcluster start", ["-n", "4", "--daemonize", "--IPClusterStart.timeout=3"], {"n", "daemonize"})
        is None
    )


@pytest.mark.parametrize("keyword", ["sshserver", "sshkey", "paramiko", "password"])
def test_client_refuses_ssh_keywords(keyword: str) -> None:
    with pytest.raises(UnsupportedOption, match=rf"Client\({keyword}=\.\.\.\) is not supported"):
        ty.Client(url_file="/nonexistent/ipcontroller-client.json", timeout=0, **{keyword: "x"})


def test_client_unknown_keyword_suggests() -> None:
    with pytest.raises(UnsupportedOption, match="did you mean profile_dir"):
        ty.Client(profile_dri="x", timeout=0)


@pytest.mark.parametrize("keyword", ["engine_launcher_class", "controller_launcher_class", "engines"])
def test_cluster_refuses_launcher_keywords(keyword: str) -> None:
    with pytest.raises(UnsupportedOption, match=rf"Cluster\({keyword}=\.\.\.\)"):
        ty.Cluster(n=1, **{keyword: "MPI"})


def test_unsupported_option_is_a_type_error_too() -> None:
    assert issubclass(UnsupportedOption, TypeError) and issubclass(UnsupportedOption, ValueError)
