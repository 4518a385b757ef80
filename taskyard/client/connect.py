"""How a Client finds its controller: the connection file, or connection info given directly.

When the file is missing the error names the file it looked for and, if this
machine has a running ipyparallel cluster's files
(``~/.ipython/profile_*/security/ipcontroller-client.json``), says so: those
belong to ipyparallel, not taskyard.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from taskyard.error import ConfigError, UnsupportedOption
from taskyard.protocol import connection
from taskyard.refusals import CLIENT_REFUSALS, check_keywords

#: The keywords Client understands (for close-match suggestions).
CLIENT_KEYWORDS = (
    "connection_info",
    "url_file",
    "profile",
    "profile_dir",
    "cluster_id",
    "cluster",
    "context",
    "debug",
    "timeout",
)


def ipyparallel_client_files(ipython_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """ipyparallel's client connection files on this machine (``$IPYTHONDIR`` or ``~/.ipython``)."""
    root = Path(ipython_dir or os.environ.get("IPYTHONDIR") or Path.home() / ".ipython")
    try:
        return sorted(root.glob("profile_*/security/ipcontroller-*client.json"))
    except OSError:
        return []


def missing_file_error(path: Path) -> ConfigError:
    message = (
        f"taskyard's connection file {path} not found: is a taskyard controller running for this profile? "
        "(start one with `ipcluster start -n 4` or ty.Cluster, or give url_file=...)"
    )
    foreign = ipyparallel_client_files()
    if foreign:
        listed = ", ".join(str(p) for p in foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        message += (
            f". Found ipyparallel's connection files ({listed}): those belong to an ipyparallel cluster, "
            "which taskyard cannot connect to; stop it with ipyparallel's `ipcluster stop` and start a "
            "taskyard cluster with taskyard's `ipcluster start` (or `taskyard cluster start`)"
        )
    return ConfigError(message)


def resolve(
    connection_info: str | os.PathLike[str] | Mapping[str, Any] | None,
    url_file: str | os.PathLike[str] | None,
    profile: str | None,
    profile_dir: str | os.PathLike[str] | None,
    cluster_id: str | None,
    cluster: Any,
    timeout: float,
    extra: Mapping[str, Any],
) -> tuple[Path | None, dict[str, Any]]:
    """The connection file (None if info was given as a dict) and its contents."""
    check_keywords("Client", extra, CLIENT_REFUSALS, CLIENT_KEYWORDS)
    if isinstance(connection_info, Mapping):
        info = dict(connection_info)
        if "key" not in info or "registration" not in info:
            raise ConfigError(
                "connection_info lacks 'key' or 'registration' (give the contents of ipcontroller-client.json)"
            )
        return None, info
    if connection_info is not None and url_file is not None:
        raise UnsupportedOption("give the connection file once: as connection_info or as url_file, not both")
    url_file = connection_info if connection_info is not None else url_file
    if cluster is not None and url_file is None:
        url_file = cluster.client_file
    if url_file is not None:
        path = Path(url_file)
    else:
        path = connection.connection_file("client", profile or "default", profile_dir, cluster_id or "")
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not path.exists():
        raise missing_file_error(path)
    return path, connection.read_connection_file(path)
