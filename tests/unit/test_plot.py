"""taskyard.plot draws what the metadata says (headless Agg backend, no cluster)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
nx = pytest.importorskip("networkx")

from taskyard import plot  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def md(engine: int, start: float, end: float, status: str = "ok") -> dict[str, object]:
    return {
        "engine_id": engine,
        "started": T0 + timedelta(seconds=start),
        "completed": T0 + timedelta(seconds=end),
        "status": status,
    }


def test_timeline_draws_one_bar_per_task_on_its_engine_row() -> None:
    ax = plot.timeline([md(0, 0, 1), md(1, 0.5, 2), md(0, 1, 1.5, "error")])
    bars = ax.patches
    assert len(bars) == 3
    assert [(b.get_x(), b.get_width(), b.get_y() + b.get_height() / 2) for b in bars] == [
        (0.0, 1.0, 0.0),
        (0.5, 1.5, 1.0),
        (1.0, 0.5, 0.0),
    ]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["engine 0", "engine 1"]


def test_timeline_without_finished_tasks_is_an_error() -> None:
    with pytest.raises(ValueError, match="no finished tasks"):
        plot.timeline([{"engine_id": 0, "started": None, "completed": None}])


def test_dag_places_nodes_by_start_time() -> None:
    graph = nx.DiGraph([(0, 1), (0, 2)])
    ax = plot.dag(graph, {0: md(0, 0, 1), 1: md(1, 1, 2), 2: md(0, 1.5, 3)})
    offsets = ax.collections[-1].get_offsets()
    assert [float(x) for x, _ in offsets] == [0.0, 1.0, 1.5]
