"""Running a task graph through the load-balanced scheduler with ``after`` dependencies.

A workflow whose steps wait on other steps is a directed acyclic graph (DAG):
each node is a task and an edge ``a -> b`` says that ``b`` may only start once
``a`` has finished. This script

1. makes a random DAG with networkx (edges only go from a lower node number to
   a higher one, so there can be no cycle),
2. submits one load-balanced task per node, in topological order so that each
   node's parents already have AsyncResults, passing those AsyncResults as the
   task's ``after`` dependency,
3. waits for every task, then checks from each result's metadata that every
   task *started* no earlier than all of its parents *completed*,
4. prints a summary and draws the run: one bar per task from its start to its
   end, on the row of the engine that ran it, with a line from each parent's
   end to each child's start. If the scheduler kept its promise, no line runs
   right to left.

Usage::

    ipcluster start -n 4 --daemonize
    python examples/dagdeps.py --nodes 64 --edges 256 --output dag.png

or, with a throwaway local cluster::

    python examples/dagdeps.py --start-cluster 4

The pieces are importable: ``random_dag``, ``run`` (build, submit and wait),
``validate`` and ``plot``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

import taskyard as ty


def random_dag(nodes: int, edges: int, seed: int | None = None) -> nx.DiGraph:
    """A random DAG on nodes ``0 .. nodes-1`` with exactly ``edges`` edges.

    Every edge goes from a lower to a higher node number, which keeps the graph
    acyclic however the edges fall.

    Parameters
    ----------
    nodes : int
        Number of nodes.
    edges : int
        Number of distinct edges; at most ``nodes * (nodes - 1) / 2``.
    seed : int, optional
        Seed for reproducible graphs.

    Examples
    --------
    >>> G = random_dag(10, 20, seed=1)
    >>> G.number_of_edges(), nx.is_directed_acyclic_graph(G)
    (20, True)
    """
    possible = nodes * (nodes - 1) // 2
    if not 0 <= edges <= possible:
        raise ValueError(f"a DAG on {nodes} nodes has between 0 and {possible} edges, not {edges}")
    rng = random.Random(seed)
    G = nx.DiGraph()
    G.add_nodes_from(range(nodes))
    while G.number_of_edges() < edges:
        a, b = sorted(rng.sample(range(nodes), 2))
        G.add_edge(a, b)
    return G


@ty.interactive
def random_wait(max_wait: float) -> float:
    """The work of one node: sleep up to ``max_wait`` seconds; returns the time slept."""
    # Marked interactive so that it travels by value: the engines need not be
    # able to import this script.
    import random
    import time

    pause = random.random() * max_wait
    time.sleep(pause)
    return pause


def submit_dag(view: ty.LoadBalancedView, G: nx.DiGraph, max_wait: float) -> dict[Any, ty.AsyncResult]:
    """Submit one task per node of ``G``, each ``after`` the tasks of its parents."""
    results: dict[Any, ty.AsyncResult] = {}
    # Topological order: a node's parents are submitted, so have msg_ids, before it.
    for node in nx.topological_sort(G):
        parents = [results[parent] for parent in G.predecessors(node)]
        with view.temp_flags(after=parents):
            results[node] = view.apply_async(random_wait, max_wait)
    return results


def run(
    client: ty.Client,
    nodes: int,
    edges: int,
    *,
    seed: int | None = None,
    max_wait: float = 0.05,
    timeout: float = 300.0,
) -> tuple[nx.DiGraph, dict[Any, ty.AsyncResult]]:
    """Build a random DAG, run it as dependent tasks and wait for all of them.

    Parameters
    ----------
    client : taskyard.Client
        A connected client; its cluster needs engines and a Python scheduler
        scheme (``pure`` has no dependencies).
    nodes, edges : int
        Size of the random DAG (see :func:`random_dag`).
    seed : int, optional
        Seed for the graph.
    max_wait : float
        Each task sleeps a random time up to this many seconds.
    timeout : float
        Seconds to wait for all the tasks.

    Returns
    -------
    (networkx.DiGraph, dict)
        The graph and the AsyncResult of each node.

    Raises
    ------
    taskyard.error.TimeoutError
        If the tasks are not all done within ``timeout``.
    taskyard.error.RemoteError or taskyard.error.UnmetDependency
        If a task failed.
    """
    G = random_dag(nodes, edges, seed)
    view = client.load_balanced_view()
    results = submit_dag(view, G, max_wait)
    deadline = time.monotonic() + timeout
    for ar in results.values():
        ar.get(timeout=max(0.0, deadline - time.monotonic()))
    return G, results


@dataclass
class Summary:
    """What :func:`validate` found: counts and times of a valid run."""

    tasks: int
    edges: int
    tasks_per_engine: dict[int, int]
    wall_time: float  # seconds from the first start to the last completion
    serial_time: float  # seconds of engine time, summed
    tightest_gap: float | None  # smallest child start minus parent completion, seconds

    def __str__(self) -> str:
        per_engine = ", ".join(f"engine {e}: {n}" for e, n in sorted(self.tasks_per_engine.items()))
        gap = "n/a" if self.tightest_gap is None else f"{self.tightest_gap * 1000:.2f} ms"
        speedup = self.serial_time / self.wall_time if self.wall_time else 0.0
        return (
            f"{self.tasks} tasks and {self.edges} dependencies ran in order\n"
            f"  {per_engine}\n"
            f"  wall time {self.wall_time:.3f} s, engine time {self.serial_time:.3f} s ({speedup:.2f}x)\n"
            f"  closest start after a parent's completion: {gap}"
        )


def validate(G: nx.DiGraph, results: Mapping[Any, ty.AsyncResult]) -> Summary:
    """Check that every task started no earlier than each of its parents completed.

    Parameters
    ----------
    G : networkx.DiGraph
        The graph the tasks were submitted from.
    results : mapping
        Node -> its finished AsyncResult.

    Returns
    -------
    Summary

    Raises
    ------
    AssertionError
        Listing the edges whose order was broken (or tasks without timestamps).
    """
    missing = [n for n in G if not results[n].ready() or results[n].metadata.started is None]
    if missing:
        raise AssertionError(f"{len(missing)} task(s) have not run: nodes {missing[:10]}")
    broken = []
    gaps = []
    for parent, child in G.edges:
        completed = results[parent].metadata.completed
        started = results[child].metadata.started
        gap = (started - completed).total_seconds()
        gaps.append(gap)
        if gap < 0:
            broken.append(f"{child} started {-gap * 1000:.3f} ms before its parent {parent} completed")
    if broken:
        raise AssertionError(f"{len(broken)} dependencies were not respected: " + "; ".join(broken[:10]))
    metadata = [results[n].metadata for n in G]
    first = min(md.started for md in metadata)
    last = max(md.completed for md in metadata)
    return Summary(
        tasks=G.number_of_nodes(),
        edges=G.number_of_edges(),
        tasks_per_engine=dict(Counter(md.engine_id for md in metadata)),
        wall_time=(last - first).total_seconds(),
        serial_time=sum((md.completed - md.started).total_seconds() for md in metadata),
        tightest_gap=min(gaps) if gaps else None,
    )


def plot(G: nx.DiGraph, results: Mapping[Any, ty.AsyncResult], output: str | Path) -> Path:
    """Draw the run (time on x, engine on y) to an image file; returns its path.

    Each task is a bar from its start to its completion on its engine's row;
    each dependency a line from the parent's completion to the child's start.
    """
    # The Agg canvas directly, not pyplot: no GUI backend, no global figure state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    metadata = {n: results[n].metadata for n in G}
    origin = min(md.started for md in metadata.values())

    def seconds(when: Any) -> float:
        return float((when - origin).total_seconds())

    engines = sorted({md.engine_id for md in metadata.values()})
    row = {engine_id: i for i, engine_id in enumerate(engines)}
    # Spread a row's tasks vertically so that the lines between them stay visible.
    jitter = random.Random(0)
    y = {n: row[md.engine_id] + jitter.uniform(-0.3, 0.3) for n, md in metadata.items()}

    figure = Figure(figsize=(10, 1.5 + 1.2 * len(engines)))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    segments = [[(seconds(metadata[a].completed), y[a]), (seconds(metadata[b].started), y[b])] for a, b in G.edges]
    axes.add_collection(LineCollection(segments, colors="tab:gray", linewidths=0.5, alpha=0.6))
    bars = [[(seconds(md.started), y[n]), (seconds(md.completed), y[n])] for n, md in metadata.items()]
    axes.add_collection(LineCollection(bars, colors="tab:blue", linewidths=3))
    axes.scatter([seconds(md.started) for md in metadata.values()], list(y.values()), s=6, color="tab:red", zorder=3)
    axes.autoscale_view()
    axes.set_yticks(range(len(engines)), [f"engine {e}" for e in engines])
    axes.set_xlabel("seconds since the first task started")
    axes.set_title(
        f"{G.number_of_nodes()} tasks, {G.number_of_edges()} dependencies: every line must run left to right"
    )
    figure.tight_layout()
    path = Path(output)
    figure.savefig(path, dpi=100)
    return path


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run a random DAG of tasks with 'after' dependencies and check it.")
    parser.add_argument("--nodes", type=int, default=32, help="tasks in the graph (default 32)")
    parser.add_argument("--edges", type=int, default=128, help="dependencies in the graph (default 128)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the random graph")
    parser.add_argument("--max-wait", type=float, default=0.05, help="longest sleep of a task, seconds (default 0.05)")
    parser.add_argument("--profile-dir", default=None, help="profile directory of a running cluster")
    parser.add_argument("--url-file", default=None, help="the client connection file of a running cluster")
    parser.add_argument("--output", default="dag.png", help="image file for the plot (default dag.png; '' for none)")
    parser.add_argument(
        "--start-cluster", type=int, default=0, metavar="N", help="start a local cluster of N engines and stop it after"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    cluster = None
    if args.start_cluster:
        from taskyard.cluster import LocalCluster

        cluster = LocalCluster(args.start_cluster, profile_dir=args.profile_dir)
        print(f"starting a cluster of {args.start_cluster} engines")
        cluster.start()
    try:
        url_file = cluster.client_file if cluster is not None else args.url_file
        with ty.Client(url_file=url_file, profile_dir=args.profile_dir) as client:
            client.wait_for_engines(1, timeout=60, interactive=False)
            print(f"submitting {args.nodes} tasks with {args.edges} dependencies to {len(client.ids)} engines")
            G, results = run(client, args.nodes, args.edges, seed=args.seed, max_wait=args.max_wait)
            summary = validate(G, results)
            print(summary)
            if args.output:
                print(f"plot written to {plot(G, results, args.output)}")
    except (ty.error.TaskyardError, AssertionError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    finally:
        if cluster is not None:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
