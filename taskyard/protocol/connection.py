"""Profile directories and connection files.

A controller writes two JSON files into ``<profile_dir>/security/``:
``ipcontroller-client.json`` (what clients need) and ``ipcontroller-engine.json``
(what engines need). Both carry the key, so both are written atomically with
mode 0600. Field names follow ipyparallel's where they mean the same thing
(``key``, ``signature_scheme``, ``interface``, ``location``, ``registration``
and one port per channel); taskyard adds ``features`` (what the task channel
supports, which clients check instead of scheme names), ``cluster_id`` and
``controller_pid``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from taskyard.error import ConfigError

CLIENT_FILE = "ipcontroller-client.json"
ENGINE_FILE = "ipcontroller-engine.json"


def taskyard_dir() -> Path:
    """The root of all profiles: ``$TASKYARD_DIR`` or ``~/.taskyard``."""
    env = os.environ.get("TASKYARD_DIR")
    return Path(env).expanduser() if env else Path.home() / ".taskyard"


def profile_dir(profile: str = "default", profile_dir: str | os.PathLike[str] | None = None) -> Path:
    """The profile directory: ``profile_dir`` if given, else ``<taskyard_dir>/profile_<profile>``."""
    if profile_dir:
        return Path(profile_dir).expanduser()
    return taskyard_dir() / f"profile_{profile}"


def connection_file(
    kind: str,
    profile: str = "default",
    profile_dir_: str | os.PathLike[str] | None = None,
    cluster_id: str = "",
) -> Path:
    """Path of the ``"client"`` or ``"engine"`` connection file."""
    if kind not in ("client", "engine"):
        raise ValueError(f"kind must be 'client' or 'engine', not {kind!r}")
    base = f"ipcontroller-{cluster_id}-{kind}.json" if cluster_id else f"ipcontroller-{kind}.json"
    return profile_dir(profile, profile_dir_) / "security" / base


def write_connection_file(path: Path, info: dict[str, Any]) -> None:
    """Write ``info`` to ``path`` atomically, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(info, f, indent=2, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_connection_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a connection file, with a clear error when it is missing or broken."""
    path = Path(path)
    try:
        with open(path) as f:
            info = json.load(f)
    except FileNotFoundError:
        raise ConfigError(
            f"connection file {path} not found: is a controller running for this profile? "
            "(start one with `ipcontroller` or `ipcluster start`)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read connection file {path}: {exc}") from None
    if not isinstance(info, dict) or "key" not in info or "registration" not in info:
        raise ConfigError(f"connection file {path} lacks 'key' or 'registration'")
    return info


def url(info: dict[str, Any], channel: str) -> str:
    """The ``tcp://host:port`` address of ``channel`` in a connection file."""
    try:
        port = int(info[channel])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"connection file has no port for channel {channel!r}") from None
    location = info.get("location") or "127.0.0.1"
    interface = str(info.get("interface", "tcp://127.0.0.1"))
    transport = interface.split("://", 1)[0] if "://" in interface else "tcp"
    if location in ("0.0.0.0", "*", ""):
        location = "127.0.0.1"
    return f"{transport}://{location}:{port}"
