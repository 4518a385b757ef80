"""Routing schemes: pinned choices under a seeded RNG, and their rules."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from taskyard.error import ConfigError
from taskyard.schemes import (
    ALL_SCHEMES,
    PYTHON_SCHEMES,
    SCHEMES,
    get_scheme,
    leastload,
    lru,
    plainrandom,
    twobin,
    weighted,
)

LOADS = [3, 0, 2, 0, 1]

# Pinned so that a change in how a scheme draws from the RNG is noticed: the
# same seed must give the same routing from one release to the next.
PINNED = {
    "lru": [0] * 12,
    "plainrandom": [0, 0, 2, 1, 1, 1, 0, 4, 0, 4, 3, 0],
    "twobin": [0, 1, 1, 0, 0, 0, 0, 1, 4, 0, 1, 1],
    "leastload": [1] * 12,
    "weighted": [3, 1, 3, 1, 2, 1, 1, 3, 1, 3, 3, 1],
}


@pytest.mark.parametrize("name", PYTHON_SCHEMES)
def test_pinned_choices(name: str) -> None:
    rng = random.Random(42)
    scheme = SCHEMES[name]
    assert [scheme(LOADS, rng) for _ in range(12)] == PINNED[name]


@pytest.mark.parametrize("name", PYTHON_SCHEMES)
def test_single_candidate(name: str) -> None:
    assert SCHEMES[name]([7], random.Random(1)) == 0


@pytest.mark.parametrize("name", PYTHON_SCHEMES)
def test_always_in_range(name: str) -> None:
    rng = random.Random(3)
    for _ in range(500):
        loads = [rng.randrange(5) for _ in range(rng.randrange(1, 9))]
        assert 0 <= SCHEMES[name](loads, rng) < len(loads)


def test_lru_ignores_load() -> None:
    assert lru([9, 0, 0], random.Random(0)) == 0


def test_leastload_breaks_ties_by_lru() -> None:
    rng = random.Random(0)
    assert leastload([2, 1, 1, 3], rng) == 1
    assert leastload([0, 0, 0], rng) == 0
    assert leastload([5, 4, 3, 2, 1], rng) == 4


def test_plainrandom_is_uniform_enough() -> None:
    rng = random.Random(5)
    counts = Counter(plainrandom([0, 0, 0, 0], rng) for _ in range(4000))
    assert set(counts) == {0, 1, 2, 3}
    assert all(800 < n < 1200 for n in counts.values())


def test_twobin_favours_less_recently_used() -> None:
    rng = random.Random(5)
    counts = Counter(twobin([0, 0, 0, 0], rng) for _ in range(4000))
    # min of two uniform draws over 4: P(0)=7/16, P(3)=1/16
    assert counts[0] > counts[1] > counts[2] > counts[3] > 0


def test_weighted_favours_less_loaded() -> None:
    rng = random.Random(5)
    counts = Counter(weighted([10, 0, 10, 0], rng) for _ in range(2000))
    assert counts[1] + counts[3] > 1900
    # among equal loads the smaller index wins the pair, so 1 beats 3
    assert counts[1] > counts[3]


def test_weighted_ties_go_to_lru() -> None:
    rng = random.Random(11)
    picks = {weighted([1, 1], rng) for _ in range(200)}
    assert picks == {0, 1}
    counts = Counter(weighted([1, 1], rng) for _ in range(2000))
    assert counts[0] > counts[1]


def test_registry_names() -> None:
    assert PYTHON_SCHEMES == ("lru", "plainrandom", "twobin", "leastload", "weighted")
    assert ALL_SCHEMES == (*PYTHON_SCHEMES, "pure")
    for name in PYTHON_SCHEMES:
        assert get_scheme(name) is SCHEMES[name]


def test_unknown_scheme_lists_choices() -> None:
    with pytest.raises(ConfigError) as info:
        get_scheme("fastest")
    message = str(info.value)
    assert "fastest" in message
    for name in ALL_SCHEMES:
        assert name in message


def test_pure_has_no_python_scheduler() -> None:
    with pytest.raises(ConfigError, match="pure") as info:
        get_scheme("pure")
    assert "no Python scheduler" in str(info.value)
    for name in PYTHON_SCHEMES:
        assert name in str(info.value)
