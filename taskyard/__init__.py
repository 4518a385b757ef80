"""taskyard: IPython-style parallel computing over ZeroMQ.

Start a controller and engines (``ipcluster start -n 4``), then::

    import taskyard as ty
    rc = ty.Client()
    rc.wait_for_engines(4)
    rc[:].apply_sync(lambda: 42)
    rc.load_balanced_view().map_sync(pow, range(10), [2] * 10)

The names follow ipyparallel's, so ``import ipyparallel as ipp`` becomes
``import taskyard as ty``.
"""

from taskyard.heap import keep_large_buffers

# Before anything starts a thread (libzmq's I/O threads): glibc settings so that
# large messages reuse the memory of earlier ones; TASKYARD_KEEP_BUFFERS=0 opts out.
keep_large_buffers()

# ruff: noqa: E402 - the imports below come after the malloc settings
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION  # ipyparallel re-exports these

from taskyard import error, plot
from taskyard.client import AsyncMapResult, AsyncResult, Client, Cluster, DirectView, LoadBalancedView, interactive
from taskyard.client.cluster import ClusterManager
from taskyard.client.decorators import parallel, remote
from taskyard.client.executor import ViewExecutor
from taskyard.client.hubresult import AsyncHubResult
from taskyard.dependency import Dependency, depend, dependent, require
from taskyard.error import (
    CompositeError,
    DependencyTimeout,
    EngineError,
    ImpossibleDependency,
    InvalidDependency,
    KernelError,
    NoEnginesRegistered,
    RemoteError,
    TaskAborted,
    TaskTimeout,
    TimeoutError,
    UnmetDependency,
    UnsupportedOption,
)
from taskyard.protocol.reference import Reference
from taskyard.serialization import use_cloudpickle, use_dill, use_pickle


def register_joblib_backend(name: str = "taskyard", make_default: bool = False, **client_kwargs: object) -> None:
    """Register joblib backends on a cluster (see :mod:`taskyard.client.joblib_backend`); joblib is imported here, not at ``import taskyard``."""
    from taskyard.client.joblib_backend import register_joblib_backend as register

    register(name, make_default, **client_kwargs)



__version__ = "0.1.0"

__all__ = [
    "UnsupportedOption",
    "ViewExecutor",
    "register_joblib_backend",
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "AsyncHubResult",
    "AsyncMapResult",
    "AsyncResult",
    "Client",
    "Cluster",
    "ClusterManager",
    "CompositeError",
    "Dependency",
    "DependencyTimeout",
    "DirectView",
    "EngineError",
    "ImpossibleDependency",
    "InvalidDependency",
    "KernelError",
    "LoadBalancedView",
    "NoEnginesRegistered",
    "Reference",
    "RemoteError",
    "TaskAborted",
    "TaskTimeout",
    "TimeoutError",
    "UnmetDependency",
    "depend",
    "dependent",
    "error",
    "interactive",
    "parallel",
    "remote",
    "use_cloudpickle",
    "use_dill",
    "use_pickle",
    "plot",
    "require",
    "__version__",
]
