"""``Reference``: an argument that names a value in the engine's namespace."""

from __future__ import annotations

from typing import Any


class Reference:
    """A placeholder for a variable in the engine's namespace.

    Pass ``Reference("a")`` as an argument (or keyword argument) to ``apply`` and
    the engine hands the function its own value of ``a``.

    Examples
    --------
    >>> dv["a"] = 5                                    # doctest: +SKIP
    >>> dv.apply_sync(lambda x: x * 2, Reference("a"))  # doctest: +SKIP
    [10, 10]
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"Reference needs a variable name, not {name!r}")
        self.name = name

    def __repr__(self) -> str:
        return f"Reference({self.name!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Reference, (self.name,))

    def resolve(self, namespace: dict[str, Any]) -> Any:
        try:
            return namespace[self.name]
        except KeyError:
            raise NameError(f"name {self.name!r} is not defined on the engine") from None
