"""The benchmark suite's pure parts: report formatting, target verdicts, METG interpolation, the DAG.

No cluster: rows are made up.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import ab  # noqa: E402
import dag_graph  # noqa: E402
import report  # noqa: E402
import workloads  # noqa: E402


def row(system: str, variant: str, tasks_per_s: float, cpu: float, rtt: float, dag_s: float, mb_s: float) -> dict:
    return {
        "system": system,
        "variant": variant,
        "results": {
            "apply": {"tasks_per_s": tasks_per_s, "cpu_us_per_task": cpu, "cpu_us_per_task_by_role": {"client": cpu}},
            "map": {"tasks_per_s": tasks_per_s, "cpu_us_per_task": cpu},
            "rtt": {"median_ms": rtt, "p99_ms": 2 * rtt},
            "dag": {"wall_s": dag_s},
            "payload": {"128MB": {"mb_per_s": mb_s}},
            "startup": {"median_s": 1.0},
        },
        "errors": {},
    }


ROWS = [
    row("taskyard", "leastload", 4000, 250, 0.8, 0.5, 500),
    row("ipyparallel", "leastload", 300, 5000, 5.0, 4.0, 400),
    row("dask", "distributed", 1000, 3000, 10.0, 0.9, 600),
    {"system": "taskyard", "variant": "pure", "status": "not implemented", "results": {}, "errors": {}},
]


def verdicts() -> dict[str, str]:
    return {t["target"]: t["verdict"] for t in report.targets(ROWS)}


def test_targets_met_and_missed() -> None:
    v = verdicts()
    assert v["apply throughput ≥ 10× ipyparallel"] == "met"
    assert v["apply throughput ≥ 3× dask"] == "met"
    assert v["CPU ≤ 300 µs/task (apply)"] == "met"
    assert v["median round trip ≤ 1 ms"] == "met"
    assert v["DAG ≥ 5× faster than ipyparallel"] == "met"
    assert v["DAG ≥ 2× faster than dask"] == "missed"
    assert v["128 MB echo ≥ dask"] == "missed"
    assert v["cluster ready ≤ 1.5 s"] == "met"


def test_targets_without_peers_are_not_applicable() -> None:
    only_ours = report.targets(ROWS[:1])
    by_name = {t["target"]: t["verdict"] for t in only_ours}
    assert by_name["apply throughput ≥ 10× ipyparallel"] == "n/a"
    assert by_name["CPU ≤ 300 µs/task (apply)"] == "met"


def scale_run(scheduler_mb: list[float], per_batch: int = 100_000) -> dict:
    batches = [
        {"tasks_done": per_batch * (i + 1), "rss_mb_after": {"scheduler": mb, "controller": 100.0}}
        for i, mb in enumerate(scheduler_mb)
    ]
    return {"results": {"batches": batches}}


def test_pure_against_the_floor_and_flat_memory() -> None:
    rows = [
        *ROWS[:3],
        row("taskyard", "pure", 12_000, 150, 0.5, 0.0, 0.0),
        row("pyzmq floor", "monitored_queue", 20_000, 50, 0.3, 0.0, 0.0),
    ]
    flat = scale_run([300, 180, 190, 195, 190, 192, 196, 194, 193, 195])
    growing = scale_run([300, 180, 200, 220, 240, 260, 280, 300, 320, 340])
    by_name = {t["target"]: t for t in report.targets(rows, flat)}
    assert by_name["pure ≥ 50% of the raw floor (apply)"]["value"] == pytest.approx(0.6)
    assert by_name["pure ≥ 50% of the raw floor (apply)"]["verdict"] == "met"
    name = "flat scheduler memory over 1,000,000 tasks (RSS last / middle batch)"
    assert by_name[name]["verdict"] == "met"
    assert {t["target"]: t for t in report.targets(rows, growing)}[name]["verdict"] == "missed"
    # fewer than 1,000,000 tasks, or no scale run: not applicable
    assert {t["target"]: t for t in report.targets(rows, scale_run([300, 180, 190]))}[name]["verdict"] == "n/a"
    assert {t["target"]: t for t in report.targets(rows)}[name]["verdict"] == "n/a"


def test_ratios_say_how_much_better() -> None:
    ratios = report.ratios(ROWS)
    vs_ipp = next(r for r in ratios if r["vs"] == "ipyparallel-leastload")
    assert vs_ipp["apply tasks/s"] == pytest.approx(4000 / 300)
    assert vs_ipp["DAG wall (theirs/ours)"] == pytest.approx(8.0)
    assert all(r["taskyard"] != "pure" for r in ratios)


def test_markdown_has_every_section_and_row() -> None:
    text = report.markdown(
        {
            "rows": ROWS,
            "machine": {
                "cpu_model": "Test CPU",
                "logical_cores": 2,
                "memory_gb": 1.0,
                "python": "3.11",
                "pyzmq": "27",
                "libzmq": "4.3.5",
                "taskyard_commit": "0123456789abcdef",
                "load_average_at_start": [0, 0, 0],
            },
            "started_at": "now",
            "command": "python benchmarks/run.py --quick",
            "sizes": {},
            "ratios": report.ratios(ROWS),
            "targets": report.targets(ROWS),
        }
    )
    for needle in ("## Results", "## Targets", "## Ratios", "not implemented", "| dask | distributed |", "4,000"):
        assert needle in text
    assert "none" in text.split("## Failures")[1]


def test_fmt() -> None:
    assert report.fmt(None) == "–"
    assert report.fmt(12345.6) == "12,346"
    assert report.fmt(1.23456) == "1.23"


def test_metg_interpolates_between_the_last_two_steps() -> None:
    curve = [
        {"duration_ms": 4.0, "efficiency": 0.9},
        {"duration_ms": 2.0, "efficiency": 0.7},
        {"duration_ms": 1.0, "efficiency": 0.3},
    ]
    assert workloads._interpolate_metg(curve) == pytest.approx(2.0 / 2**0.5)
    assert workloads._interpolate_metg(curve[:2]) == 2.0
    assert workloads._interpolate_metg([{"duration_ms": 4.0, "efficiency": 0.2}]) is None


def test_random_dag_is_reproducible_and_topological() -> None:
    parents = dag_graph.random_dag(1000, 4000, seed=1)
    assert parents == dag_graph.random_dag(1000, 4000, seed=1)
    assert sum(len(p) for p in parents) == 4000
    assert all(p < node for node, ps in enumerate(parents) for p in ps)


def test_ab_takes_medians_of_each_side_and_the_right_headline() -> None:
    runs = [
        {"tasks_per_s": 100.0, "cpu_us_per_task": 300.0, "cpu_us_per_task_by_role": {"client": 50.0, "engine": 90.0}},
        {"tasks_per_s": 300.0, "cpu_us_per_task": 200.0, "cpu_us_per_task_by_role": {"client": 70.0}},
        {"tasks_per_s": 200.0, "cpu_us_per_task": 250.0, "cpu_us_per_task_by_role": {"client": 60.0, "engine": 80.0}},
    ]
    summary = ab.summarize(runs)
    assert summary["runs"] == 3 and summary["headline"] == 200.0 and summary["cpu_us_per_task"] == 250.0
    assert summary["by_role"] == {"client": 60.0, "engine": 80.0}, "a role missing from a run counts as 0 there"
    assert ab.headline({"median_ms": 0.6, "p99_ms": 0.9}) == 0.6


def test_scale_table_shows_memory_after_idleness() -> None:
    run = scale_run([300, 180])
    for batch in run["results"]["batches"]:
        batch.update({"tasks_per_s": 3000.0, "submit_s": 5.0, "peak_rss_mb": {"scheduler": 310.0}})
    run["results"].update({"engines": 4, "start_s": 1.0, "rss_mb_after_idle": {"scheduler": 42.0}})
    lines = report.scale_table(run)
    assert any("after the last batch and 2.5 s idle: scheduler 42" in line for line in lines)
    assert lines[-1].startswith("| 200,000 |")  # the batches' table follows
