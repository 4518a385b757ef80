"""Compare two commits of taskyard on one workload, runs interleaved: A, B, A, B, ...

On a shared virtual machine the same code can run 20% faster or slower from
one quarter of an hour to the next, so two runs made minutes apart say little
about a change. This checks each commit out into a temporary git worktree, runs
``driver.py`` on one workload alternately from each (``PYTHONPATH`` points the
cluster's processes at the worktree's ``taskyard``), and reports the median of
each side. It prints one line per run, then the medians::

    python benchmarks/ab.py HEAD~1 HEAD --rounds 5
    python benchmarks/ab.py 1acd3da main --scheme pure --workload apply
    python benchmarks/ab.py HEAD~1 HEAD --workload rtt --workloads apply,map,rtt

Use the python of the venv where taskyard's dependencies are installed. The
worktrees are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MARKER = "BENCH-JSON "


def headline(result: dict[str, Any]) -> float:
    """The number a workload is judged by: tasks/s, or the median round trip in ms."""
    if "tasks_per_s" in result:
        return float(result["tasks_per_s"])
    return float(result["median_ms"])


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over runs of one side: the headline, CPU µs per task, and CPU per role."""
    roles = sorted({role for run in runs for role in run["cpu_us_per_task_by_role"]})
    return {
        "runs": len(runs),
        "headline": statistics.median(headline(run) for run in runs),
        "cpu_us_per_task": statistics.median(run["cpu_us_per_task"] for run in runs),
        "by_role": {
            role: statistics.median(run["cpu_us_per_task_by_role"].get(role, 0.0) for run in runs) for role in roles
        },
    }


def run_once(worktree: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, str(HERE / "driver.py"), "--system", "taskyard", "--scheme", args.scheme]
    command += ["--workloads", args.workloads or args.workload]
    env = {**os.environ, "PYTHONPATH": str(worktree)}
    done = subprocess.run(command, cwd=HERE, env=env, capture_output=True, text=True, timeout=args.timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise RuntimeError(f"driver.py printed no result (exit {done.returncode}):\n{done.stderr[-2000:]}")
    report = json.loads(lines[-1][len(MARKER) :])
    if args.workload not in report["results"]:
        raise RuntimeError(f"no {args.workload!r} result; errors: {report.get('errors')}")
    result: dict[str, Any] = report["results"][args.workload]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="a commit (anything git rev-parse takes)")
    parser.add_argument("b", help="the other commit")
    parser.add_argument("--rounds", type=int, default=4, help="runs of each side (default 4)")
    parser.add_argument("--scheme", default="leastload", help="e.g. leastload, pure, leastload-hwm0")
    parser.add_argument("--workload", default="apply", help="the workload compared: apply, map or rtt")
    parser.add_argument("--workloads", default="", help="what driver.py runs (default: just --workload)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per driver run")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    repo = HERE.parent
    sides: dict[str, list[dict[str, Any]]] = {args.a: [], args.b: []}
    with tempfile.TemporaryDirectory(prefix="taskyard-ab-") as tmp:
        trees = {}
        for name in sides:
            tree = Path(tmp) / f"tree-{len(trees)}"
            subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), name], check=True)
            trees[name] = tree
        try:
            for round_ in range(1, args.rounds + 1):
                for name, tree in trees.items():
                    result = run_once(tree, args)
                    sides[name].append(result)
                    print(f"round {round_} {name}: {headline(result):,.3f} at {result['cpu_us_per_task']:.0f} µs/task")
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], check=False)
    for name, runs in sides.items():
        summary = summarize(runs)
        roles = ", ".join(f"{role} {cpu:.0f}" for role, cpu in summary["by_role"].items())
        print(f"{name}: median {summary['headline']:,.3f}, {summary['cpu_us_per_task']:.0f} µs/task ({roles})")


if __name__ == "__main__":
    main()
