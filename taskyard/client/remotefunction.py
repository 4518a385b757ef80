"""``@view.remote()`` and ``@view.parallel()``: functions that run through a view."""

from __future__ import annotations

import functools
import warnings
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
        # Says what it is in help() and in a notebook's "?", as ipyparallel's does.
        self.__doc__ = f"{type(self).__name__} wrapping {getattr(f, '__name__', f)!s}:\n\n{f.__doc__ or ''}".rstrip()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.view.temp_flags(**self.flags):
            return self.view._really_apply(self.func, args, kwargs, block=self.block)


class ParallelFunction(RemoteFunction):
    """A function that runs on pieces of its (sequence) arguments, in parallel.

    As in ipyparallel, calling it splits the sequences into contiguous blocks
    (``dist="b"``, the only distribution) and calls the function once per
    block, with the block itself: one block per engine on a DirectView, blocks
    of ``chunksize`` items (default 1) on a LoadBalancedView. The items of the
    returned blocks are joined into one list. ``f.map(*seqs)`` instead calls
    the function on each item, like :meth:`View.map`.
    """

    def __init__(
        self,
        view: View,
        f: Callable[..., Any],
        dist: str = "b",
        block: bool | None = None,
        chunksize: int | None = None,
        ordered: bool = True,
        return_exceptions: bool = False,
        **flags: Any,
    ) -> None:
        if dist != "b":
            raise ValueError(f"unknown distribution {dist!r}; only 'b' (blocks) is supported")
        super().__init__(view, f, block, **flags)
        self.dist = dist
        self.chunksize = chunksize
        self.ordered = ordered
        self.return_exceptions = return_exceptions

    def _map_options(self) -> dict[str, Any]:
        """The map arguments this function carries, for the kind of view it runs on."""
        from taskyard.client.view import LoadBalancedView  # view imports this module

        options: dict[str, Any] = {"return_exceptions": self.return_exceptions}
        if isinstance(self.view, LoadBalancedView):
            options["ordered"] = self.ordered
            if self.chunksize:
                options["chunksize"] = self.chunksize
        elif self.chunksize:
            warnings.warn("chunksize is ignored unless load balancing (on a DirectView)", UserWarning, stacklevel=3)
        return options

    def __call__(self, *sequences: Any, **kwargs: Any) -> Any:
        with self.view.temp_flags(**self.flags):
            return self.view.map(
                self.func, *sequences, block=self.block, _per_chunk=True, **{**self._map_options(), **kwargs}
            )

    def map(self, *sequences: Any, **kwargs: Any) -> Any:
        with self.view.temp_flags(**self.flags):
            return self.view.map(self.func, *sequences, block=self.block, **{**self._map_options(), **kwargs})
