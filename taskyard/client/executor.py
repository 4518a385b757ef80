"""A :class:`concurrent.futures.Executor` over a View.

``view.executor`` (or ``rc.executor()``, on a LoadBalancedView) gives code
written for the standard library's executors a cluster to run on::

    ex = rc.executor()
    futures = [ex.submit(pow, 2, i) for i in range(10)]
    for fut in concurrent.futures.as_completed(futures):
        print(fut.result())

The futures are the view's AsyncResults (which are
:class:`concurrent.futures.Future` objects), so ``wait``/``as_completed`` work
on them. ``shutdown`` waits for outstanding work; it does not stop engines.
"""

from __future__ import annotations

import concurrent.futures
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskyard.client.asyncresult import AsyncResult
    from taskyard.client.view import View


class ViewExecutor(concurrent.futures.Executor):
    """Submit calls through ``view``; each future is an AsyncResult."""

    def __init__(self, view: View) -> None:
        self.view = view
        self._shutdown = False
        self._maps: list[Any] = []

    @property
    def _max_workers(self) -> int:
        return len(self.view)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> AsyncResult:
        """Run ``fn(*args, **kwargs)`` through the view (``view.apply_async``)."""
        if self._shutdown:
            raise RuntimeError("cannot submit to an executor after shutdown")
        return self.view.apply_async(fn, *args, **kwargs)

    def map(
        self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: float | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        """Results of ``fn`` over ``iterables``, in order, as they arrive (``view.imap``)."""
        if self._shutdown:
            raise RuntimeError("cannot map on an executor after shutdown")
        if timeout is not None:
            warnings.warn("ViewExecutor.map ignores timeout", stacklevel=2)
        kwargs.pop("chunksize", None)  # one task per item: imap does not batch
        results = self.view.imap(fn, *iterables, **kwargs)
        if hasattr(results, "send_rest"):
            self._maps.append(results)
        return results

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; with ``wait``, send the rest of every ``map`` and wait for all of it.

        Engines keep running.
        """
        self._shutdown = True
        if cancel_futures:
            self.view.abort()
        if wait:
            for results in self._maps:  # a lazy map's remaining inputs are part of the work
                results.send_rest()
            self._maps.clear()
            self.view.wait()
