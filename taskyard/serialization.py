"""ipyparallel's serialization switches, answered honestly.

taskyard always pickles functions and arguments with cloudpickle (see
:mod:`taskyard.protocol.serialize`): the client, the scheduler and every engine
must agree on one format, and the format is not a per-process switch. So
:func:`use_cloudpickle` is a no-op, and :func:`use_dill` / :func:`use_pickle`
refuse with a message saying why, instead of silently doing nothing.
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
    """Not supported: taskyard cannot switch back to the standard library's pickle.

    Raises
    ------
    NotImplementedError
        Always; nothing needs reverting, since :func:`use_dill` never switches.
    """
    raise NotImplementedError(f"use_pickle() is not supported: {_ALWAYS}; there is no other serializer to revert from")
