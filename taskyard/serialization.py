"""ipyparallel's serialization switches, answered honestly.

taskyard always pickles functions and arguments with cloudpickle (see
:mod:`taskyard.protocol.serialize`): the client, the scheduler and every engine
must agree on one format, and the format is not a per-process switch. So
:func:`use_cloudpickle` and :func:`use_pickle` are no-ops (cloudpickle is a
superset of pickle), and :func:`use_dill` refuses with a message saying why.
"""

from __future__ import annotations

__all__ = ["use_cloudpickle", "use_dill", "use_pickle"]

_ALWAYS = "taskyard always serializes with cloudpickle on the client and on every engine"


def use_cloudpickle() -> None:
    """Serialize with cloudpickle: already the case, so this does nothing.

    Kept so that ipyparallel code calling ``ipp.use_cloudpickle()`` runs
    unchanged. Returns ``None``, as ipyparallel's does.
    """


def use_dill() -> None:
    """Not supported: taskyard cannot switch to dill.

    Raises
    ------
    NotImplementedError
        Always. cloudpickle already sends closures, lambdas and interactively
        defined functions and classes by value; register a module with
        ``cloudpickle.register_pickle_by_value(module)`` to send its code too.
    """
    raise NotImplementedError(
        f"use_dill() is not supported: {_ALWAYS}. cloudpickle already sends closures and lambdas by value; "
        "for a module the engines cannot import, call cloudpickle.register_pickle_by_value(module)"
    )


def use_pickle() -> None:
    """Serialize with pickle: cloudpickle reads and writes all that pickle does, so this does nothing.

    Kept so that ipyparallel code calling ``ipp.use_pickle()`` runs unchanged,
    like ``DirectView.use_pickle()``. Returns ``None``.
    """
