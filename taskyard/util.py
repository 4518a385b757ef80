"""ipyparallel's ``util`` helpers that user code imports (``from ipyparallel.util import ...``)."""

from __future__ import annotations

import socket

from taskyard.client.view import interactive

__all__ = ["disambiguate_url", "interactive"]

_ANY = ("0.0.0.0", "*")


def _local_addresses() -> set[str]:
    addresses = {"127.0.0.1", "localhost"}
    try:
        addresses.update(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    return addresses


def disambiguate_url(url: str, location: str | None = None) -> str:
    """A zmq url one can connect to, for one that was bound to every interface.

    ``tcp://*:5555`` and ``tcp://0.0.0.0:5555`` become ``tcp://127.0.0.1:5555``
    when ``location`` (the host that bound it) is this machine or not given,
    else ``tcp://<location>:5555``. Other urls (a given address, ``ipc://``)
    come back unchanged.
    """
    proto, sep, rest = url.partition("://")
    if not sep or proto != "tcp" or ":" not in rest:
        return url
    host, _, port = rest.rpartition(":")
    if host not in _ANY:
        return url
    if location is None or location in _ANY or location in _local_addresses():
        host = "127.0.0.1"
    else:
        host = location
    return f"{proto}://{host}:{port}"
