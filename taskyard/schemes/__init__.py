"""Routing schemes: how the task scheduler picks an engine for a task.

A scheme is a tiny pure function ``scheme(loads, rng) -> index``. The scheduler
core calls it with the engines that may take the task right now (they are
eligible for it and below the high-water mark), listed **least recently used
first**: ``loads[0]`` belongs to the engine that was given a task longest ago.
``loads[i]`` is how many tasks engine ``i`` has outstanding. The scheme returns
an index into ``loads``; ``loads`` is never empty. Randomness comes only from
the ``rng`` argument, so a seeded :class:`random.Random` makes every choice
reproducible.

The schemes, by the name ``--scheme`` takes:

``lru``
    Least recently used: always index 0. Close to round-robin; fair in the
    number of tasks, blind to how long they run.
``plainrandom``
    Uniformly random.
``twobin``
    Draw two candidates uniformly at random (with replacement) and take the less
    recently used of the two, i.e. the smaller index. Usually better than plain
    random for very little work.
``leastload`` (the default)
    Fewest outstanding tasks; among equals the least recently used.
``weighted``
    Draw two candidates at random, each with probability proportional to the
    inverse load ``1 / (1 + load)``, and take the less loaded of the two (the
    less recently used among equals).
``pure``
    Not a function: the controller runs a C-level ZeroMQ queue instead of a
    Python scheduler. It has no dependencies, retries or targets. It is a valid
    ``--scheme`` choice (see :data:`ALL_SCHEMES`) but :func:`get_scheme` refuses
    it, because there is no Python scheduler to give it to.

Adding a scheme means writing one function and adding it to :data:`SCHEMES`.

Examples
--------
>>> import random
>>> get_scheme("leastload")([2, 0, 1, 0], random.Random(0))
1
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from taskyard.error import ConfigError

__all__ = [
    "ALL_SCHEMES",
    "PYTHON_SCHEMES",
    "SCHEMES",
    "Scheme",
    "get_scheme",
    "leastload",
    "lru",
    "plainrandom",
    "twobin",
    "weighted",
]

Scheme = Callable[[Sequence[int], random.Random], int]
"""``(loads, rng) -> index``: the type every routing scheme has."""


def lru(loads: Sequence[int], rng: random.Random) -> int:
    """Pick the least recently used engine.

    Parameters
    ----------
    loads : sequence of int
        Outstanding tasks per candidate, least recently used first.
    rng : random.Random
        Unused; present so that every scheme has the same signature.

    Returns
    -------
    int
        Always ``0``.
    """
    return 0


def plainrandom(loads: Sequence[int], rng: random.Random) -> int:
    """Pick a candidate uniformly at random.

    Parameters
    ----------
    loads : sequence of int
        Outstanding tasks per candidate, least recently used first.
    rng : random.Random
        The source of randomness.

    Returns
    -------
    int
        An index into ``loads``.
    """
    return rng.randrange(len(loads))


def twobin(loads: Sequence[int], rng: random.Random) -> int:
    """Draw two candidates at random and pick the less recently used one.

    Parameters
    ----------
    loads : sequence of int
        Outstanding tasks per candidate, least recently used first.
    rng : random.Random
        The source of randomness.

    Returns
    -------
    int
        The smaller of two uniformly drawn indices.
    """
    n = len(loads)
    return min(rng.randrange(n), rng.randrange(n))


def leastload(loads: Sequence[int], rng: random.Random) -> int:
    """Pick the candidate with the fewest outstanding tasks.

    Parameters
    ----------
    loads : sequence of int
        Outstanding tasks per candidate, least recently used first.
    rng : random.Random
        Unused; present so that every scheme has the same signature.

    Returns
    -------
    int
        The index of the smallest load; the smallest such index on ties, which
        is the least recently used of the least loaded engines.
    """
    best = 0
    for index in range(1, len(loads)):
        if loads[index] < loads[best]:
            best = index
    return best


def weighted(loads: Sequence[int], rng: random.Random) -> int:
    """Draw two candidates weighted by inverse load and pick the less loaded.

    Parameters
    ----------
    loads : sequence of int
        Outstanding tasks per candidate, least recently used first.
    rng : random.Random
        The source of randomness.

    Returns
    -------
    int
        The less loaded of two indices, each drawn with probability
        proportional to ``1 / (1 + load)``; the smaller index on ties.
    """
    weights = [1.0 / (1 + load) for load in loads]
    first, second = rng.choices(range(len(loads)), weights=weights, k=2)
    if loads[second] < loads[first] or (loads[second] == loads[first] and second < first):
        return second
    return first


SCHEMES: Final[Mapping[str, Scheme]] = {
    "lru": lru,
    "plainrandom": plainrandom,
    "twobin": twobin,
    "leastload": leastload,
    "weighted": weighted,
}
"""The Python routing schemes by name."""

PYTHON_SCHEMES: Final[tuple[str, ...]] = tuple(SCHEMES)
"""Names of the schemes that run in the Python task scheduler."""

ALL_SCHEMES: Final[tuple[str, ...]] = (*PYTHON_SCHEMES, "pure")
"""Every valid ``--scheme`` value, ``pure`` included."""


def get_scheme(name: str) -> Scheme:
    """Return the routing function called ``name``.

    Parameters
    ----------
    name : str
        One of :data:`PYTHON_SCHEMES`.

    Returns
    -------
    Scheme
        The routing function.

    Raises
    ------
    ConfigError
        If ``name`` is ``"pure"`` (it has no Python scheduler) or is not a scheme
        at all. The message lists every valid choice.
    """
    choices = ", ".join(ALL_SCHEMES)
    if name == "pure":
        raise ConfigError(
            "scheme 'pure' has no Python scheduler: it is a ZeroMQ queue the controller "
            f"starts instead; Python schemes are {', '.join(PYTHON_SCHEMES)}"
        )
    try:
        return SCHEMES[name]
    except KeyError:
        raise ConfigError(f"unknown scheme {name!r}; choose one of: {choices}") from None
