"""``ipyparallel.client._joblib``: taskyard's joblib backend under ipyparallel's name."""

from taskyard.client.joblib_backend import TaskyardBackend as IPythonParallelBackend  # noqa: F401
