"""``@view.remote()`` and ``@view.parallel()``: functions that run through a view."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskyard.client.view import View


class RemoteFunction:
    """Calling it calls the wrapped function remotely through ``view``."""

    def __init__(self, view: View, f: Callable[..., Any], block: bool | None = None, **flags: Any) -> None:
        self.view = view
        self.func = f
        self.block = block
        self.flags = flags
        functools.update_wrapper(self, f)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.view.temp_flags(**self.flags):
            return self.view._really_apply(self.func, args, kwargs, block=self.block)


class ParallelFunction(RemoteFunction):
    """Calling it maps the wrapped function over its (sequence) arguments.

    ``dist="b"`` (the only distribution) splits the sequences into contiguous
    blocks. ``f.map(*seqs)`` is the same as calling it.
    """

    def __init__(
        self, view: View, f: Callable[..., Any], dist: str = "b", block: bool | None = None, **flags: Any
    ) -> None:
        if dist != "b":
            raise ValueError(f"unknown distribution {dist!r}; only 'b' (blocks) is supported")
        super().__init__(view, f, block, **flags)
        self.dist = dist

    def __call__(self, *sequences: Any, **kwargs: Any) -> Any:
        with self.view.temp_flags(**self.flags):
            return self.view.map(self.func, *sequences, block=self.block, **kwargs)

    def map(self, *sequences: Any, **kwargs: Any) -> Any:
        return self(*sequences, **kwargs)
