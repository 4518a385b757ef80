"""Profile directories and connection files, in a temporary TASKYARD_DIR."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from taskyard.error import ConfigError
from taskyard.protocol import connection
from taskyard.protocol.connection import (
    connection_file,
    profile_dir,
    read_connection_file,
    taskyard_dir,
    url,
    write_connection_file,
)

INFO = {
    "key": "abc123",
    "signature_scheme": "hmac-sha256",
    "interface": "tcp://127.0.0.1",
    "location": "127.0.0.1",
    "registration": 5555,
    "task": 5556,
    "mux": 5557,
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "taskyard-root"
    monkeypatch.setenv("TASKYARD_DIR", str(root))
    return root


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_taskyard_dir_honours_env(home: Path) -> None:
    assert taskyard_dir() == home
    assert profile_dir() == home / "profile_default"
    assert profile_dir("gpu") == home / "profile_gpu"


def test_taskyard_dir_defaults_to_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TASKYARD_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert taskyard_dir() == tmp_path / ".taskyard"
    monkeypatch.setenv("TASKYARD_DIR", "")
    assert taskyard_dir() == tmp_path / ".taskyard"


def test_explicit_profile_dir_wins(home: Path, tmp_path: Path) -> None:
    assert profile_dir("ignored", tmp_path / "mine") == tmp_path / "mine"
    assert connection_file("client", profile_dir_=tmp_path / "mine") == tmp_path / "mine" / "security" / (
        "ipcontroller-client.json"
    )


def test_connection_file_names(home: Path) -> None:
    security = home / "profile_default" / "security"
    assert connection_file("client") == security / "ipcontroller-client.json"
    assert connection_file("engine") == security / "ipcontroller-engine.json"
    assert connection_file("client", cluster_id="abc") == security / "ipcontroller-abc-client.json"
    assert connection_file("engine", "p", cluster_id="x") == home / "profile_p" / "security" / (
        "ipcontroller-x-engine.json"
    )
    assert connection.CLIENT_FILE == "ipcontroller-client.json"
    assert connection.ENGINE_FILE == "ipcontroller-engine.json"
    with pytest.raises(ValueError, match="client"):
        connection_file("hub")


def test_write_is_owner_only_and_atomic(home: Path) -> None:
    path = connection_file("client")
    write_connection_file(path, INFO)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["ipcontroller-client.json"]
    assert json.loads(path.read_text()) == INFO
    assert read_connection_file(path) == INFO


def test_rewrite_replaces_and_tightens_loose_files(home: Path) -> None:
    path = connection_file("engine")
    path.parent.mkdir(parents=True)
    os.chmod(path.parent, 0o755)
    path.write_text("{}")
    os.chmod(path, 0o644)
    write_connection_file(path, {**INFO, "key": "new"})
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert read_connection_file(path)["key"] == "new"
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_failed_write_leaves_no_temp_file_and_keeps_old(home: Path) -> None:
    path = connection_file("client")
    write_connection_file(path, INFO)
    with pytest.raises(TypeError):
        write_connection_file(path, {**INFO, "bad": object()})
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert read_connection_file(path) == INFO


def test_missing_file_is_a_config_error_saying_what_to_do(home: Path) -> None:
    path = connection_file("client")
    with pytest.raises(ConfigError) as info:
        read_connection_file(path)
    message = str(info.value)
    assert str(path) in message and "not found" in message and "ipcontroller" in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("text", ["", "{not json", "\xff", "[1, 2]", '"key"', "null"])
def test_broken_file_is_a_config_error(home: Path, text: str) -> None:
    path = home / "broken.json"
    home.mkdir()
    path.write_text(text, encoding="latin-1")
    with pytest.raises(ConfigError) as info:
        read_connection_file(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("missing", ["key", "registration"])
def test_incomplete_file_is_a_config_error(home: Path, missing: str) -> None:
    path = home / "incomplete.json"
    home.mkdir()
    path.write_text(json.dumps({k: v for k, v in INFO.items() if k != missing}))
    with pytest.raises(ConfigError, match=missing):
        read_connection_file(path)


def test_directory_instead_of_file_is_a_config_error(home: Path) -> None:
    path = home / "adir.json"
    path.mkdir(parents=True)
    with pytest.raises(ConfigError, match="cannot read"):
        read_connection_file(path)


def test_url() -> None:
    assert url(INFO, "registration") == "tcp://127.0.0.1:5555"
    assert url({**INFO, "location": "10.1.2.3"}, "task") == "tcp://10.1.2.3:5556"
    assert url({**INFO, "task": "5556"}, "task") == "tcp://127.0.0.1:5556"


@pytest.mark.parametrize("location", ["0.0.0.0", "*", "", None])
def test_url_with_wildcard_location_connects_to_loopback(location: str | None) -> None:
    info = {**INFO, "interface": "tcp://*", "location": location}
    assert url(info, "mux") == "tcp://127.0.0.1:5557"


def test_url_without_location_or_interface() -> None:
    info = {"key": "k", "registration": 1234}
    assert url(info, "registration") == "tcp://127.0.0.1:1234"


@pytest.mark.parametrize("info", [{}, {"mux": None}, {"mux": "abc"}], ids=["absent", "none", "not-int"])
def test_url_for_missing_channel_is_a_config_error(info: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="mux"):
        url(info, "mux")
