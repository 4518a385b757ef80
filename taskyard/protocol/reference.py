"""``Reference``: an argument that names a value in the engine's namespace."""

from __future__ import annotations

import builtins
from typing import Any


class Reference:
    """A placeholder for a value in the engine's namespace.

    Pass ``Reference("a")`` as an argument (or keyword argument, or inside a
    list, tuple or dict argument) to ``apply`` and the engine hands the
    function its own value of ``a``. The name may be an expression evaluated
    in that namespace (``Reference("g[0]")``, ``Reference("a.b")``), and a
    Reference may be the function itself (``view.apply(Reference("f"), 5)``),
    as in ipyparallel.

    Examples
    --------
    >>> dv["a"] = 5                                    # doctest: +SKIP
    >>> dv.apply_sync(lambda x: x * 2, Reference("a"))  # doctest: +SKIP
    [10, 10]
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name.strip():
            raise TypeError(f"Reference needs a variable name or an expression, not {name!r}")
        try:
            compile(name, "<Reference>", "eval")
        except SyntaxError:
            raise TypeError(f"Reference needs a variable name or an expression, not {name!r}") from None
        self.name = name

    def __repr__(self) -> str:
        return f"Reference({self.name!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Reference, (self.name,))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{self!r} is called on the engine, where it names a function; it cannot be called here")

    def resolve(self, namespace: dict[str, Any]) -> Any:
        """The value in ``namespace``: the name's, or the expression's."""
        if self.name.isidentifier():
            if self.name in namespace:
                return namespace[self.name]
            if hasattr(builtins, self.name):
                return getattr(builtins, self.name)
            raise NameError(f"name {self.name!r} is not defined on the engine")
        return eval(self.name, namespace)  # noqa: S307 - the user's own expression, on the user's engine


def resolve_references(value: Any, namespace: dict[str, Any]) -> Any:
    """``value`` with each Reference in it replaced by its value in ``namespace``:
    the value itself, or the items of a list, tuple or dict (of any depth)."""
    kind = type(value)
    if kind is Reference:
        return value.resolve(namespace)
    if kind is list or kind is tuple:
        items = [resolve_references(item, namespace) for item in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return kind(items)
    if kind is dict:
        resolved = {key: resolve_references(item, namespace) for key, item in value.items()}
        if all(resolved[key] is item for key, item in value.items()):
            return value
        return resolved
    return value
