"""Turning load-balanced flags into a task's wire metadata, with early errors.

Dependencies travel as :meth:`Dependency.as_dict` dicts. A controller lists the
task features it supports in its connection file; a flag it does not support
(e.g. ``after`` with the ``pure`` scheme) is refused here, before anything is
sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskyard.dependency import Dependency
from taskyard.error import TaskyardError

if TYPE_CHECKING:
    from taskyard.client.client import Client


def _as_dependency(value: Any) -> Dependency | None:
    if value is None:
        return None
    if isinstance(value, Dependency):
        return value
    if isinstance(value, str) or hasattr(value, "msg_ids"):
        return Dependency([value])
    return Dependency(value)


def task_metadata(
    client: Client,
    after: Any = None,
    follow: Any = None,
    timeout: float | None = None,
    retries: int = 0,
    targets: Any = None,
) -> dict[str, Any]:
    """The metadata of a load-balanced request carrying these flags."""
    if after is None and follow is None and not timeout and not retries and targets is None:
        return {}  # no flags, the common case: nothing to check
    metadata: dict[str, Any] = {}
    wanted: list[str] = []
    after_dep = _as_dependency(after)
    follow_dep = _as_dependency(follow)
    if after_dep:
        metadata["after"] = after_dep.as_dict()
        wanted.append("after")
    if follow_dep:
        metadata["follow"] = follow_dep.as_dict()
        wanted.append("follow")
    if timeout:
        if timeout < 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        metadata["timeout"] = float(timeout)
        wanted.append("timeout")
    if retries:
        if retries < 0:
            raise ValueError(f"retries must be at least 0, not {retries}")
        metadata["retries"] = int(retries)
        wanted.append("retries")
    if targets is not None:
        metadata["targets"] = client._resolve_targets(targets)
        wanted.append("targets")
    unsupported = [w for w in wanted if w not in client.features]
    if unsupported:
        raise TaskyardError(
            f"the controller's task scheduler ({client.task_scheme}) does not support "
            f"{', '.join(unsupported)}; restart it with another --scheme (e.g. leastload)"
        )
    return metadata
