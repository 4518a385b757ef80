"""``ty.remote(view)`` and ``ty.parallel(view)``: ipyparallel's module-level decorators,
spelled as calls on the view they take."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from taskyard.client.remotefunction import ParallelFunction, RemoteFunction

__all__ = ["remote", "parallel"]


def remote(view: Any, block: bool | None = None, **flags: Any) -> Callable[[Callable[..., Any]], RemoteFunction]:
    """Decorator: calling the function runs it through ``view``.

    The same as ``view.remote(block=block, **flags)``.

    Examples
    --------
    >>> @ty.remote(rc[:], block=True)  # doctest: +SKIP
    ... def getpid():
    ...     import os
    ...     return os.getpid()
    """
    return view.remote(block=block, **flags)  # type: ignore[no-any-return]


def parallel(
    view: Any, dist: str = "b", block: bool | None = None, ordered: bool = True, **flags: Any
) -> Callable[[Callable[..., Any]], ParallelFunction]:
    """Decorator: calling the function maps it over its arguments through ``view``.

    The same as ``view.parallel(dist=dist, block=block, ordered=ordered, **flags)``;
    ``chunksize=``, ``ordered=False`` (results in completion order) and
    ``return_exceptions=`` apply on load-balanced views, the other keywords are
    view flags.
    """
    return view.parallel(dist=dist, block=block, ordered=ordered, **flags)  # type: ignore[no-any-return]
