"""Turning rows of results into ratios, target verdicts and a markdown report. No IO.

A row is ``{"system", "variant", "results": {workload: {...}}, "errors": {workload: msg}}``
(``"status": "not implemented"`` for a variant that cannot run yet).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TASKYARD = ("taskyard", "leastload")
IPP = ("ipyparallel", "leastload")
DASK = ("dask", "distributed")
FLOOR = ("pyzmq floor", "monitored_queue")
PURE = ("taskyard", "pure")
#: Memory is flat if the RSS after the last scale batch is within this of the middle one's.
FLAT_TOLERANCE = 1.15
ROLES = ("client", "controller", "scheduler", "queue", "engine", "other")


def get(row: dict[str, Any] | None, *path: str) -> float | None:
    value: Any = row.get("results") if row else None
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value if isinstance(value, (int, float)) else None


def find(rows: list[dict[str, Any]], key: tuple[str, str]) -> dict[str, Any] | None:
    return next((r for r in rows if (r["system"], r["variant"]) == key), None)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _higher(*path: str) -> Callable[[dict[str, Any] | None, dict[str, Any] | None], float | None]:
    """ours / theirs, for a metric where more is better."""
    return lambda ours, theirs: _ratio(get(ours, *path), get(theirs, *path))


def _lower(*path: str) -> Callable[[dict[str, Any] | None, dict[str, Any] | None], float | None]:
    """theirs / ours, for a metric where less is better (so > 1 means we are faster)."""
    return lambda ours, theirs: _ratio(get(theirs, *path), get(ours, *path))


RATIOS = {
    "apply tasks/s": _higher("apply", "tasks_per_s"),
    "map tasks/s": _higher("map", "tasks_per_s"),
    "apply CPU/task (theirs/ours)": _lower("apply", "cpu_us_per_task"),
    "round trip median (theirs/ours)": _lower("rtt", "median_ms"),
    "DAG wall (theirs/ours)": _lower("dag", "wall_s"),
    "128MB echo MB/s": _higher("payload", "128MB", "mb_per_s"),
    "METG (theirs/ours)": _lower("metg", "metg_ms"),
    "cluster start (theirs/ours)": _lower("startup", "median_s"),
}


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every taskyard variant against ipyparallel-leastload, dask, and ipyparallel's same variant if it ran.

    Metric by metric; > 1: taskyard better.
    """
    out = []
    for row in rows:
        if row["system"] != "taskyard" or row.get("status"):
            continue
        same = ("ipyparallel", row["variant"])
        for peer_key in (IPP, DASK, *([same] if same not in (IPP, ("ipyparallel", "pure")) else [])):
            peer = find(rows, peer_key)
            if peer is None:
                continue
            values = {name: f(row, peer) for name, f in RATIOS.items()}
            out.append({"taskyard": row["variant"], "vs": "-".join(peer_key), **values})
    return out


def memory_growth(scale: dict[str, Any] | None, role: str, total: int = 1_000_000) -> float | None:
    """RSS of ``role`` after the last scale batch / after the middle one; None unless ``total`` tasks ran.

    The first half of the run is the warm-up: bounded structures (finished-task
    windows, replay windows, the hub's record store) fill up and the allocator's
    pools reach their working size. Flat memory means the second half adds
    nothing: the ratio stays near 1.
    """
    results = (scale or {}).get("results") or {}
    batches = results.get("batches") or []
    if len(batches) < 4 or batches[-1].get("tasks_done", 0) < total:
        return None
    middle, last = (b.get("rss_mb_after", {}).get(role) for b in (batches[len(batches) // 2 - 1], batches[-1]))
    return _ratio(last, middle)


def targets(rows: list[dict[str, Any]], scale: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The issue's targets (taskyard-leastload unless named), each with its value and met/missed/n/a."""
    ours, ipp, dask = find(rows, TASKYARD), find(rows, IPP), find(rows, DASK)
    pure, floor = find(rows, PURE), find(rows, FLOOR)

    def check(name: str, value: float | None, goal: float, is_max: bool = False, unit: str = "") -> dict[str, Any]:
        if value is None:
            verdict = "n/a"
        else:
            verdict = "met" if (value <= goal if is_max else value >= goal) else "missed"
        return {"target": name, "value": value, "goal": goal, "unit": unit, "verdict": verdict}

    return [
        check("apply throughput ≥ 10× ipyparallel", _higher("apply", "tasks_per_s")(ours, ipp), 10, unit="×"),
        check("map throughput ≥ 10× ipyparallel", _higher("map", "tasks_per_s")(ours, ipp), 10, unit="×"),
        check("apply throughput ≥ 3× dask", _higher("apply", "tasks_per_s")(ours, dask), 3, unit="×"),
        check("map throughput ≥ 3× dask", _higher("map", "tasks_per_s")(ours, dask), 3, unit="×"),
        check("CPU ≤ 300 µs/task (apply)", get(ours, "apply", "cpu_us_per_task"), 300, True, "µs"),
        check("CPU ≤ 300 µs/task (map)", get(ours, "map", "cpu_us_per_task"), 300, True, "µs"),
        check("median round trip ≤ 1 ms", get(ours, "rtt", "median_ms"), 1.0, True, "ms"),
        check("DAG ≥ 5× faster than ipyparallel", _lower("dag", "wall_s")(ours, ipp), 5, unit="×"),
        check("DAG ≥ 2× faster than dask", _lower("dag", "wall_s")(ours, dask), 2, unit="×"),
        check("128 MB echo ≥ dask", _higher("payload", "128MB", "mb_per_s")(ours, dask), 1, unit="×"),
        check("cluster ready ≤ 1.5 s", get(ours, "startup", "median_s"), 1.5, True, "s"),
        check("pure ≥ 50% of the raw floor (apply)", _higher("apply", "tasks_per_s")(pure, floor), 0.5, unit="×"),
        check(
            "flat scheduler memory over 1,000,000 tasks (RSS last / middle batch)",
            memory_growth(scale, "scheduler"),
            FLAT_TOLERANCE,
            True,
            "×",
        ),
        check(
            "flat hub memory over 1,000,000 tasks (RSS last / middle batch)",
            memory_growth(scale, "controller"),
            FLAT_TOLERANCE,
            True,
            "×",
        ),
    ]


# -- markdown -----------------------------------------------------------------


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


COLUMNS: list[tuple[str, tuple[str, ...]]] = [
    ("apply tasks/s", ("apply", "tasks_per_s")),
    ("apply CPU µs/task", ("apply", "cpu_us_per_task")),
    ("map tasks/s", ("map", "tasks_per_s")),
    ("map CPU µs/task", ("map", "cpu_us_per_task")),
    ("RTT median ms", ("rtt", "median_ms")),
    ("RTT p99 ms", ("rtt", "p99_ms")),
    ("DAG s", ("dag", "wall_s")),
    ("DAG CPU µs/task", ("dag", "cpu_us_per_task")),
    ("1MB MB/s", ("payload", "1MB", "mb_per_s")),
    ("16MB MB/s", ("payload", "16MB", "mb_per_s")),
    ("128MB MB/s", ("payload", "128MB", "mb_per_s")),
    ("METG(50%) ms", ("metg", "metg_ms")),
    ("start s", ("startup", "median_s")),
]


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in body]


def main_table(rows: list[dict[str, Any]]) -> list[str]:
    body = []
    for row in rows:
        if row.get("status"):
            body.append([row["system"], row["variant"], row["status"], *[""] * (len(COLUMNS) - 1)])
            continue
        body.append([row["system"], row["variant"], *[fmt(get(row, *path)) for _, path in COLUMNS]])
    return _table(["system", "scheme", *[name for name, _ in COLUMNS]], body)


def cpu_table(rows: list[dict[str, Any]], workload: str) -> list[str]:
    body = []
    for row in rows:
        by_role = (row.get("results", {}).get(workload) or {}).get("cpu_us_per_task_by_role")
        if by_role:
            body.append([row["system"], row["variant"], *[fmt(by_role.get(role)) for role in ROLES]])
    return _table(["system", "scheme", *ROLES], body)


def ratio_table(ratio_rows: list[dict[str, Any]]) -> list[str]:
    body = [[r["taskyard"], r["vs"], *[fmt(r[name]) for name in RATIOS]] for r in ratio_rows]
    return _table(["taskyard", "vs", *RATIOS], body)


def target_table(target_rows: list[dict[str, Any]]) -> list[str]:
    body = [[t["target"], fmt(t["value"]) + t["unit"] * (t["value"] is not None), t["verdict"]] for t in target_rows]
    return _table(["target (issue)", "taskyard-leastload", "verdict"], body)


def errors(rows: list[dict[str, Any]]) -> list[str]:
    return [f"- {r['system']}-{r['variant']} {w}: {msg}" for r in rows for w, msg in r.get("errors", {}).items()]


def _loads(values: list[float] | None) -> str:
    return " ".join(f"{v:.2f}" for v in values) if values else "–"


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    m = report["machine"]
    out = [
        f"# taskyard benchmarks, {report['started_at']}",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {m['cpu_model']}, {m['logical_cores']} logical cores, {m['memory_gb']} GB, "
        f"Python {m['python']}, pyzmq {m['pyzmq']} / libzmq {m['libzmq']}, taskyard {m['taskyard_commit'][:10]}"
        + (" (+ uncommitted changes)" if m.get("taskyard_uncommitted_files") else "")
        + "  ",
        f"Load average (1/5/15 min) at start / end: {_loads(m.get('load_average_at_start'))} / "
        f"{_loads(report.get('load_average_at_end'))}  ",
        *(
            [
                "Peers (own venv): "
                + ", ".join(f"{name} {version}" for name, version in report["peer_versions"].items())
                + "  "
            ]
            if report.get("peer_versions")
            else []
        ),
        f"Sizes: {report['sizes']}",
        "",
        "## Results",
        "",
        *main_table(rows),
        "",
        "## Targets",
        "",
        *target_table(report["targets"]),
        "",
        "## Ratios (> 1: taskyard better)",
        "",
        *(ratio_table(report["ratios"]) if report["ratios"] else ["(no peers in this run: use --peers)"]),
        "",
    ]
    for workload, title in (("apply", "apply loop"), ("map", "map"), ("rtt", "round trip"), ("dag", "DAG")):
        out += [f"## CPU µs per task by process role ({title})", "", *cpu_table(rows, workload), ""]
    if "scale" in report:
        out += ["## Scale (--scale)", "", *scale_table(report["scale"]), ""]
    errs = errors(rows)
    out += ["## Failures", "", *(errs or ["none"]), ""]
    return "\n".join(out)


def scale_table(scale: dict[str, Any]) -> list[str]:
    res = scale.get("results") or {}
    if not res:
        return [f"failed: {scale.get('errors')}"]
    lines = [
        f"{res['engines']} engines started in {fmt(res.get('start_s'))} s; idle RSS MB by role: "
        + ", ".join(f"{role} {fmt(mb)}" for role, mb in res.get("rss_mb_idle", {}).items()),
        "",
    ]
    if res.get("rss_mb_after_idle"):
        lines[-1:-1] = [
            "",
            "RSS MB by role after the last batch and 2.5 s idle: "
            + ", ".join(f"{role} {fmt(mb)}" for role, mb in res["rss_mb_after_idle"].items()),
        ]
    body = []
    for batch in res.get("batches", []):
        peak, after = batch["peak_rss_mb"], batch["rss_mb_after"]
        body.append(
            [f"{batch['tasks_done']:,}", fmt(batch["tasks_per_s"]), fmt(batch["submit_s"])]
            + [f"{fmt(peak.get(r))} / {fmt(after.get(r))}" for r in ("controller", "scheduler", "client")]
        )
    header = [
        "tasks done",
        "tasks/s",
        "submit s",
        *[f"{r} MB peak / after" for r in ("controller", "scheduler", "client")],
    ]
    return lines + _table(header, body)
