"""joblib on a taskyard cluster.

>>> import taskyard as ty, joblib                    # doctest: +SKIP
>>> rc = ty.Client()                                 # doctest: +SKIP
>>> rc.load_balanced_view().register_joblib_backend()  # doctest: +SKIP
>>> joblib.Parallel(backend="taskyard")(joblib.delayed(abs)(-i) for i in range(4))  # doctest: +SKIP
[0, 1, 2, 3]

:func:`register_joblib_backend` registers a backend that connects a Client to
the default cluster (``taskyard.Client()``) when joblib first uses it. Both
register under ``name`` and under ``"ipyparallel"``, so code that asks for
``backend="ipyparallel"`` runs on taskyard too. joblib is an optional extra:
``pip install taskyard[joblib]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

try:
    from joblib.parallel import AutoBatchingMixin, ParallelBackendBase, register_parallel_backend
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the joblib backend needs joblib: pip install 'taskyard[joblib]'") from exc

if TYPE_CHECKING:
    from taskyard.client.view import View

ALIAS = "ipyparallel"


class TaskyardBackend(AutoBatchingMixin, ParallelBackendBase):  # type: ignore[misc]
    """A joblib backend that runs each batch of calls as one task through a View."""

    supports_retrieve_callback = True

    def __init__(self, view: View | None = None, client_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._own_client = view is None
        self._client_kwargs = client_kwargs or {}
        self._view = view
        if view is None:
            self._view = self._connect()  # at Parallel(), so a missing cluster is reported there

    def _connect(self) -> View:
        from taskyard.client.client import Client

        client = Client(**self._client_kwargs)
        client.wait_for_engines(1)
        view: View = client.load_balanced_view()
        return view

    @property
    def view(self) -> View:
        """The view tasks go to; a Client closed by :meth:`terminate` is opened again."""
        if self._view is None:
            self._view = self._connect()
        return self._view

    def effective_n_jobs(self, n_jobs: int) -> int:
        """As many jobs at a time as the view has engines (at least one)."""
        return max(1, len(self.view))

    def submit(self, func: Callable[[], Any], callback: Callable[[Any], None] | None = None) -> Any:
        """Send ``func`` (a joblib batch) as one task; ``callback`` gets the AsyncResult when done."""
        future = self.view.apply_async(func)
        if callback is not None:
            future.add_done_callback(callback)
        return future

    def retrieve_result_callback(self, out: Any) -> Any:
        """The batch's results (or its remote error, raised)."""
        return out.result()

    def apply_async(self, func: Callable[[], Any], callback: Callable[[Any], None] | None = None) -> Any:
        """joblib before 1.5 calls this: ``callback`` gets the batch's results."""
        future = self.view.apply_async(func)
        if callback is not None:
            future.add_done_callback(lambda fut: callback(fut.result()) if fut.exception() is None else None)
        return future

    def terminate(self) -> None:
        """Close the Client this backend opened itself (a view passed in stays open)."""
        if self._own_client and self._view is not None:
            self._view.client.close()
            self._view = None


def _register(name: str, factory: Callable[..., TaskyardBackend], make_default: bool) -> None:
    register_parallel_backend(name, factory, make_default=make_default)
    if name != ALIAS:
        register_parallel_backend(ALIAS, factory)


def register_joblib_backend(name: str = "taskyard", make_default: bool = False, **client_kwargs: Any) -> None:
    """Register a joblib backend on a cluster, as ``name`` and ``"ipyparallel"``.

    joblib connects ``taskyard.Client(**client_kwargs)`` (the default cluster
    unless told, e.g. ``url_file=`` or ``profile=``) when it first runs a call,
    and closes it when done.
    """
    _register(name, lambda **kwargs: TaskyardBackend(client_kwargs=client_kwargs, **kwargs), make_default)


def register_view_backend(view: View, name: str = "taskyard", make_default: bool = False) -> None:
    """Register ``view`` as a joblib backend, as ``name`` and ``"ipyparallel"``."""
    _register(name, lambda **kwargs: TaskyardBackend(view=view, **kwargs), make_default)
