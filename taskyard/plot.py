"""Figures from task metadata: a timeline per engine and a DAG coloured by engine.

Both need matplotlib (``pip install matplotlib``); :func:`dag` also needs
networkx. They take AsyncResults (or their metadata) after the work is done.

Examples
--------
>>> ars = [lv.apply_async(time.sleep, 0.1) for _ in range(20)]   # doctest: +SKIP
>>> ty.plot.timeline(ars).figure.savefig("timeline.png")          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any


def _metadata_list(results: Iterable[Any]) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    for item in results:
        md = getattr(item, "metadata", item)
        if isinstance(md, list):
            out.extend(md)
        else:
            out.append(md)
    return out


def _seconds(when: Any, origin: datetime) -> float:
    return float((when - origin).total_seconds())


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(8, 3.5))
    return ax


def timeline(results: Iterable[Any], ax: Any = None, title: str = "tasks per engine") -> Any:
    """A Gantt chart: one row per engine, one bar per task from start to completion.

    Parameters
    ----------
    results : iterable of AsyncResult or metadata dicts
        Finished work; each needs ``engine_id``, ``started`` and ``completed``.
    ax : matplotlib Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    mds = [m for m in _metadata_list(results) if m.get("started") and m.get("completed")]
    if not mds:
        raise ValueError("no finished tasks with started/completed times to plot")
    ax = _axes(ax)
    origin = min(m["started"] for m in mds)
    engines = sorted({m.get("engine_id") for m in mds}, key=lambda e: (e is None, e))
    rows = {engine: i for i, engine in enumerate(engines)}
    colors = [f"C{i % 10}" for i in range(len(engines))]
    for md in mds:
        row = rows[md.get("engine_id")]
        start = _seconds(md["started"], origin)
        width = max(_seconds(md["completed"], md["started"]), 1e-4)
        status_ok = md.get("status") in (None, "ok")
        ax.barh(row, width, left=start, height=0.6, color=colors[row], edgecolor="black" if status_ok else "red")
    ax.set_yticks(range(len(engines)), [f"engine {e}" for e in engines])
    ax.set_xlabel("seconds since the first task started")
    ax.set_title(title)
    return ax


def dag(graph: Any, results: Mapping[Any, Any], ax: Any = None, title: str = "task DAG by engine") -> Any:
    """Draw a networkx DAG with each node at (start time, engine), coloured by engine.

    Parameters
    ----------
    graph : networkx.DiGraph
        The dependency graph; an edge ``(a, b)`` means b ran after a.
    results : mapping of node -> AsyncResult (or metadata)
        The finished task of each node.
    """
    import networkx as nx

    mds = {node: _metadata_list([result])[0] for node, result in results.items()}
    started = [md["started"] for md in mds.values() if md.get("started")]
    if not started:
        raise ValueError("no finished tasks with start times to plot")
    origin = min(started)
    ax = _axes(ax)
    engines = sorted({md.get("engine_id") for md in mds.values()}, key=lambda e: (e is None, e))
    rows = {engine: i for i, engine in enumerate(engines)}
    pos = {}
    for node in graph.nodes:
        md = mds.get(node, {})
        x = _seconds(md["started"], origin) if md.get("started") else 0.0
        pos[node] = (x, rows.get(md.get("engine_id"), -1) + 0.15 * ((hash(node) % 5) - 2) / 2)
    colors = [f"C{rows.get(mds.get(n, {}).get('engine_id'), 0) % 10}" for n in graph.nodes]
    nx.draw_networkx_edges(graph, pos, ax=ax, alpha=0.3, arrows=True, arrowsize=6)
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=colors, node_size=30)
    ax.set_yticks(range(len(engines)), [f"engine {e}" for e in engines])
    ax.set_xlabel("start time (s)")
    ax.set_title(title)
    ax.tick_params(left=True, bottom=True, labelleft=True, labelbottom=True)
    return ax
