"""Graph and functional dependencies for load-balanced tasks.

Graph dependencies say *when* and *where* a task may run in terms of other
tasks: a :class:`Dependency` is a set of msg_ids plus three switches: ``all``,
and which outcomes count as done, ``success`` and ``failure``. A task's ``after`` dependency holds it back until the set is
met; its ``follow`` dependency sends it to the engine where the set was met.
The scheduler evaluates them (see :mod:`taskyard.controller.scheduler_state`);
this module only defines the algebra and the wire form.

Functional dependencies say *which* engines can run a task. They run on the
engine, as part of the task: :func:`require`, :func:`depend` and
:class:`dependent` wrap a function so that, before it runs, it checks the engine
and raises :class:`~taskyard.error.UnmetDependency` if the engine will not do.
The scheduler then sends the task elsewhere and never back to that engine.

The names are ipyparallel's, so ``from ipyparallel import require`` becomes
``from taskyard import require``.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable, Container, Iterable, Mapping
from typing import Any

from taskyard.error import UnmetDependency

__all__ = ["Dependency", "depend", "dependent", "require"]


def _collect_ids(source: object, into: list[str]) -> None:
    """Flatten msg_id strings, objects with ``msg_ids`` and iterables of both."""
    if isinstance(source, str):
        into.append(source)
        return
    msg_ids = getattr(source, "msg_ids", None)
    if msg_ids is not None:
        # An AsyncResult (or anything shaped like one): duck-typed so that this
        # module never imports client code.
        _collect_ids(list(msg_ids), into)
        return
    if isinstance(source, (bytes, bytearray, Mapping)) or not isinstance(source, Iterable):
        raise TypeError(
            f"a dependency is a msg_id string, an AsyncResult, a Dependency or an iterable "
            f"of those, not {type(source).__name__}"
        )
    for item in source:
        _collect_ids(item, into)


class Dependency(set[str]):
    """A set of msg_ids that a task waits for, with how to read it.

    Parameters
    ----------
    dependencies : str, AsyncResult, Dependency, iterable or mapping, optional
        The msg_ids: a single msg_id, an object with a ``msg_ids`` attribute
        (an AsyncResult), another Dependency, an iterable of any of these, or
        the dict form :meth:`as_dict` produces. ``None`` means no ids.
    all : bool, optional
        True (the default): met when *every* id is done. False: met when *any*
        one is done.
    success : bool, optional
        Whether an id that succeeded counts as done (default True).
    failure : bool, optional
        Whether an id that failed counts as done (default False). An id that
        ended in a way that does not count can never count: with ``all`` one
        such id makes the dependency unreachable, without ``all`` every id must.
    success_only : bool, optional
        The older spelling: True is ``success=True, failure=False``, False is
        ``success=True, failure=True``. Given together with ``success`` or
        ``failure``, those win.

    When a switch is not given and ``dependencies`` is a single Dependency (or
    its dict form), its switches are kept; otherwise they take the defaults.

    Notes
    -----
    An empty Dependency is always met and never unreachable.

    Examples
    --------
    >>> dep = Dependency(["a", "b"], all=False)
    >>> dep.check(completed={"b"}, failed=set())
    True
    >>> Dependency(["a", "b"]).unreachable(completed=set(), failed={"a"})
    True
    >>> Dependency(["a"], success=False, failure=True).check(completed=set(), failed={"a"})
    True
    """

    all: bool
    success: bool
    failure: bool

    def __init__(
        self,
        dependencies: object = None,
        all: bool | None = None,  # noqa: A002 - ipyparallel's public name
        success: bool | None = None,
        failure: bool | None = None,
        success_only: bool | None = None,
    ) -> None:
        inherited = (True, True, False)  # all, success, failure
        if isinstance(dependencies, Mapping):
            inherited = _switches_of(dependencies)
            dependencies = dependencies.get("dependencies", [])
        elif isinstance(dependencies, Dependency):
            inherited = (dependencies.all, dependencies.success, dependencies.failure)
        ids: list[str] = []
        if dependencies is not None:
            _collect_ids(dependencies, ids)
        super().__init__(ids)
        self.all = inherited[0] if all is None else bool(all)
        self.success, self.failure = inherited[1], inherited[2]
        if success_only is not None:
            self.success_only = bool(success_only)
        if success is not None:
            self.success = bool(success)
        if failure is not None:
            self.failure = bool(failure)

    @property
    def success_only(self) -> bool:
        """True when only successes count (``success and not failure``)."""
        return self.success and not self.failure

    @success_only.setter
    def success_only(self, value: bool) -> None:
        self.success, self.failure = True, not value

    def check(self, completed: Container[str], failed: Container[str]) -> bool:
        """Whether the dependency is met.

        Parameters
        ----------
        completed : container of str
            msg_ids that finished successfully.
        failed : container of str
            msg_ids that finished with an error.

        Returns
        -------
        bool
            True if the ids done (succeeded if ``success``, failed if
            ``failure``) satisfy the dependency: all of them, or any one if
            ``all`` is False.
        """
        if not self:
            return True

        def is_done(msg_id: str) -> bool:
            return (self.success and msg_id in completed) or (self.failure and msg_id in failed)

        if self.all:
            return all(is_done(msg_id) for msg_id in self)
        return any(is_done(msg_id) for msg_id in self)

    def unreachable(self, completed: Container[str], failed: Container[str]) -> bool:
        """Whether the dependency can never be met.

        Parameters
        ----------
        completed : container of str
            msg_ids that finished successfully.
        failed : container of str
            msg_ids that finished with an error.

        Returns
        -------
        bool
            True if too many ids ended in a way that does not count (failed
            without ``failure``, succeeded without ``success``): any one of them
            if ``all``, every one of them otherwise.
        """
        if not self:
            return False

        def is_lost(msg_id: str) -> bool:
            return (not self.failure and msg_id in failed) or (not self.success and msg_id in completed)

        if self.all:
            return any(is_lost(msg_id) for msg_id in self)
        return all(is_lost(msg_id) for msg_id in self)

    def as_dict(self) -> dict[str, Any]:
        """The JSON-able wire form, read back by :meth:`from_dict`.

        Returns
        -------
        dict
            ``{"dependencies": [msg_id, ...], "all": bool, "success": bool,
            "failure": bool}``, with the ids sorted so that equal dependencies
            encode equally.
        """
        return {"dependencies": sorted(self), "all": self.all, "success": self.success, "failure": self.failure}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Dependency:
        """Build a Dependency from its wire form.

        Parameters
        ----------
        data : mapping
            As :meth:`as_dict` returns (or with the older ``success_only``);
            missing switches take their defaults.

        Returns
        -------
        Dependency

        Raises
        ------
        TypeError
            If the ids are not a list of strings or a switch is not a bool.
        """
        ids = data.get("dependencies", [])
        if not isinstance(ids, (list, tuple)) or not all(isinstance(i, str) for i in ids):
            raise TypeError(f"'dependencies' must be a list of msg_id strings, not {ids!r}")
        all_, success, failure = _switches_of(data)
        return cls(list(ids), all=all_, success=success, failure=failure)

    def __repr__(self) -> str:
        ids = ", ".join(repr(i) for i in sorted(self))
        return f"Dependency([{ids}], all={self.all}, success={self.success}, failure={self.failure})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (sorted(self), self.all, self.success, self.failure))


def _switches_of(data: Mapping[str, Any]) -> tuple[bool, bool, bool]:
    """``(all, success, failure)`` of a wire form; TypeError if one is not a bool."""
    for key in ("all", "success", "failure", "success_only"):
        if key in data and not isinstance(data[key], bool):
            raise TypeError(f"{key!r} must be a bool, not {data[key]!r}")
    success, failure = True, False
    if "success_only" in data:
        failure = not data["success_only"]
    return bool(data.get("all", True)), bool(data.get("success", success)), bool(data.get("failure", failure))


def _describe(func: object) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)


def _copy_identity(wrapper: object, f: Callable[..., Any]) -> None:
    # Not functools.update_wrapper: it would merge f.__dict__ into ours, which
    # clobbers our fields when f is itself a dependent.
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        value = getattr(f, attr, None)
        if value is not None:
            object.__setattr__(wrapper, attr, value)


class dependent:  # noqa: N801 - ipyparallel's public name
    """A function that runs only where ``check(*args, **kwargs)`` is true.

    Calling it first calls ``check(*args, **kwargs)`` on the engine; if that
    returns something falsy, it raises :class:`~taskyard.error.UnmetDependency`
    and the scheduler sends the task to another engine. Otherwise it calls
    ``f`` with the call's own arguments.

    Parameters
    ----------
    f : callable
        The task's function.
    check : callable
        The predicate, run on the engine before ``f``.
    *args, **kwargs
        Arguments for ``check``.

    Examples
    --------
    >>> import sys
    >>> def on_platform(name):
    ...     return sys.platform == name
    >>> here = dependent(lambda x: x + 1, on_platform, sys.platform)
    >>> here(1)
    2
    """

    def __init__(self, f: Callable[..., Any], check: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.f = f
        self.check = check
        self.args = args
        self.kwargs = kwargs
        _copy_identity(self, f)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.check(*self.args, **self.kwargs):
            raise UnmetDependency(f"dependency {_describe(self.check)} is not met on this engine")
        return self.f(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<dependent {_describe(self.f)} if {_describe(self.check)}>"


class depend:  # noqa: N801 - ipyparallel's public name
    """Decorator: run the function only where ``check(*args, **kwargs)`` is true.

    ``@depend(check, *args, **kwargs)`` on ``def f`` is ``dependent(f, check,
    *args, **kwargs)``.

    Parameters
    ----------
    check : callable
        The predicate, run on the engine before the decorated function.
    *args, **kwargs
        Arguments for ``check``.

    Examples
    --------
    >>> import sys
    >>> def on_platform(name):
    ...     return sys.platform == name
    >>> @depend(on_platform, "no-such-platform")
    ... def task():
    ...     return 1
    >>> task()
    Traceback (most recent call last):
    ...
    taskyard.error.UnmetDependency: dependency on_platform is not met on this engine
    """

    def __init__(self, check: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.check = check
        self.args = args
        self.kwargs = kwargs

    def __call__(self, f: Callable[..., Any]) -> dependent:
        return dependent(f, self.check, *self.args, **self.kwargs)


def _function_globals(f: object) -> dict[str, Any] | None:
    """The globals of the innermost plain function under dependent wrappers."""
    seen = 0
    while not isinstance(f, types.FunctionType) and seen < 32:
        inner = getattr(f, "f", None) or getattr(f, "__wrapped__", None)
        if inner is None:
            return None
        f = inner
        seen += 1
    return f.__globals__ if isinstance(f, types.FunctionType) else None


class _Required:
    """``f`` with modules to import and objects to inject before it runs."""

    def __init__(self, f: Callable[..., Any], modules: tuple[str, ...], objects: dict[str, Any]) -> None:
        self.f = f
        self.modules = modules
        self.objects = objects
        _copy_identity(self, f)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        namespace = _function_globals(self.f)
        for name in self.modules:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                raise UnmetDependency(f"module {name!r} is not importable on this engine: {exc}") from exc
            if namespace is not None:
                # Bind what ``import a.b`` binds: the top-level package.
                top = name.partition(".")[0]
                namespace[top] = importlib.import_module(top)
        if namespace is not None:
            namespace.update(self.objects)
        return self.f(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<require {', '.join(self.modules)} for {_describe(self.f)}>"


def require(*modules_or_objects: Any, **mapping: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: make modules and objects available to a function on the engine.

    Before the decorated function runs, each named module is imported and bound
    in the function's globals (``"numpy.linalg"`` binds ``numpy``, as ``import
    numpy.linalg`` would), and each object is injected into its globals. If a
    module cannot be imported, the call raises
    :class:`~taskyard.error.UnmetDependency`, so the scheduler tries another
    engine.

    Parameters
    ----------
    *modules_or_objects : str, module, function or class
        Module names (or module objects) to import; functions and classes are
        injected under their ``__name__``.
    **mapping
        Further objects to inject, under the given names.

    Returns
    -------
    callable
        The decorator.

    Raises
    ------
    TypeError
        If a positional argument is neither a module, a name nor something with
        a ``__name__``; pass such objects by keyword.

    Examples
    --------
    >>> @require("json")
    ... def encode(x):
    ...     return json.dumps(x)
    >>> encode([1])
    '[1]'
    """
    modules: list[str] = []
    objects: dict[str, Any] = {}
    for item in modules_or_objects:
        if isinstance(item, types.ModuleType):
            modules.append(item.__name__)
        elif isinstance(item, str):
            modules.append(item)
        elif hasattr(item, "__name__"):
            objects[item.__name__] = item
        else:
            raise TypeError(
                f"require() takes module names, modules, functions and classes by position; "
                f"pass a {type(item).__name__} by keyword"
            )
    objects.update(mapping)
    frozen_modules = tuple(modules)

    def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
        return _Required(f, frozen_modules, dict(objects))

    return decorator
