"""The random DAG every system runs: the same graph for a given seed, stdlib only."""

from __future__ import annotations

import random


def random_dag(nodes: int = 1000, edges: int = 4000, seed: int = 2026) -> list[list[int]]:
    """``parents[i]``: the earlier nodes node ``i`` waits for (so 0..n-1 is a topological order).

    Edges are drawn uniformly among all (earlier, later) pairs until ``edges``
    distinct ones exist (or the graph is complete).
    """
    rng = random.Random(seed)
    wanted = min(edges, nodes * (nodes - 1) // 2)
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < wanted:
        a, b = rng.randrange(nodes), rng.randrange(nodes)
        if a != b:
            chosen.add((min(a, b), max(a, b)))
    parents: list[list[int]] = [[] for _ in range(nodes)]
    for a, b in sorted(chosen):
        parents[b].append(a)
    return parents
