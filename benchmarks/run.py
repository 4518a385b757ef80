"""Run the taskyard benchmark suite (and, with --peers, the same workloads on ipyparallel and dask).

    python benchmarks/run.py [--quick] [--peers] [--scale]

Each system and scheme runs in its own subprocess (``driver.py``, or
``peers/*.py`` in the peers venv), one after the other, so the processes of one
never load the machine while another is measured. Results go to
``benchmarks/reports/<timestamp>.json`` and ``.md``; the markdown is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import machine
import peers_venv
import psutil
import report

HERE = Path(__file__).resolve().parent
SCHEMES = ("leastload", "lru", "plainrandom", "twobin", "weighted", "leastload-hwm0", "pure")
CLUSTER_WORK = "apply,map,rtt"
FULL_WORK = "apply,map,rtt,dag,payload,metg"
FLOOR = ("pyzmq floor", "monitored_queue")
SCALE = ("taskyard", "scale")


def sizes(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        return {
            "n": 1000,
            "rtt_n": 200,
            "dag_nodes": 1000,
            "dag_edges": 4000,
            "repeats": 1,
            "metg_wall": 0.3,
            "startup_repeats": 1,
            "timeout": 60,
            "job_timeout": 300,
        }
    return {
        "n": 10_000,
        "rtt_n": 1000,
        "dag_nodes": 1000,
        "dag_edges": 4000,
        "repeats": 5,
        "metg_wall": 1.0,
        "startup_repeats": 3,
        "timeout": 120,
        "job_timeout": 900,
    }


def driver_args(size: dict[str, Any], workloads: str) -> list[str]:
    return [
        f"--workloads={workloads}",
        f"--n={size['n']}",
        f"--rtt-n={size['rtt_n']}",
        f"--dag-nodes={size['dag_nodes']}",
        f"--dag-edges={size['dag_edges']}",
        f"--repeats={size['repeats']}",
        f"--metg-wall={size['metg_wall']}",
        f"--startup-repeats={size['startup_repeats']}",
        f"--timeout={size['timeout']}",
    ]


Job = tuple[tuple[str, str], list[str]]


def jobs(args: argparse.Namespace, size: dict[str, Any], peers_python: Path | None) -> list[Job]:
    """((system, variant), argv) for every subprocess, in the order they run."""
    ty = [sys.executable, str(HERE / "driver.py"), "--system=taskyard"]
    floor = [sys.executable, str(HERE / "zmq_floor.py"), f"--n={size['n']}", f"--rtt-n={size['rtt_n']}"]
    out: list[Job] = [(FLOOR, floor)]
    out.append((("taskyard", "leastload"), [*ty, "--scheme=leastload", *driver_args(size, FULL_WORK)]))
    ipp = dask = []
    if peers_python is not None:
        ipp = [str(peers_python), str(HERE / "peers" / "ipyparallel_bench.py")]
        dask = [str(peers_python), str(HERE / "peers" / "dask_bench.py")]
        out.append((report.IPP, [*ipp, "--scheme=leastload", *driver_args(size, FULL_WORK)]))
        out.append((report.DASK, [*dask, *driver_args(size, FULL_WORK)]))
        out.append((("ipyparallel", "pure"), [*ipp, "--scheme=pure", *driver_args(size, CLUSTER_WORK)]))
        if "leastload-hwm0" in args.schemes:
            hwm0 = [*ipp, "--scheme=leastload-hwm0", *driver_args(size, CLUSTER_WORK)]
            out.append((("ipyparallel", "leastload-hwm0"), hwm0))
    for scheme in args.schemes:
        if scheme != "leastload":
            out.append((("taskyard", scheme), [*ty, f"--scheme={scheme}", *driver_args(size, CLUSTER_WORK)]))
    out.append((("taskyard", "leastload"), [*ty, "--scheme=leastload", *driver_args(size, "startup")]))
    if peers_python is not None:
        out.append((report.IPP, [*ipp, "--scheme=leastload", *driver_args(size, "startup")]))
        out.append((report.DASK, [*dask, *driver_args(size, "startup")]))
    if args.scale:
        scale = [
            sys.executable,
            str(HERE / "scale.py"),
            f"--engines={args.scale_engines}",
            f"--tasks={args.scale_tasks}",
            f"--total={args.scale_total}",
            f"--timeout={size['timeout']}",
        ]
        out.append((SCALE, scale))
    return out


def kill_leftovers(pidfile: Path) -> list[int]:
    """Kill (by PID, checking the start time against PID reuse) what a job left running."""
    try:
        keys = json.loads(pidfile.read_text())
    except (OSError, ValueError):
        return []
    killed = []
    for pid, created in keys:
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - created) > 0.01:
                continue
            proc.kill()
            killed.append(pid)
        except psutil.NoSuchProcess:
            continue
    return killed


def run_job(label: str, argv: list[str], timeout: float, workdir: Path) -> dict[str, Any]:
    pidfile = workdir / f"pids-{label.replace(' ', '-')}.json"
    print(f"== {label}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen([*argv, f"--pidfile={pidfile}"], stdout=subprocess.PIPE, text=True, cwd=HERE)
    try:
        stdout, _ = proc.communicate(timeout=timeout)
        failure = None if proc.returncode == 0 else f"exited with code {proc.returncode}"
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            stdout, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, _ = proc.communicate(timeout=30)
        failure = f"timed out after {timeout:.0f} s"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        leftovers = kill_leftovers(pidfile)
    if leftovers:
        print(f"   killed leftover processes {leftovers}", file=sys.stderr)
    print(f"   {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    for line in reversed(stdout.splitlines()):
        if line.startswith("BENCH-JSON "):
            out = json.loads(line[len("BENCH-JSON ") :])
            if failure:
                out.setdefault("errors", {})["job"] = failure
            return out
    return {"results": {}, "errors": {"job": failure or "printed no BENCH-JSON line"}}


def merge(rows: list[dict[str, Any]], key: tuple[str, str], out: dict[str, Any]) -> None:
    row = report.find(rows, key)
    if row is None:
        row = {"system": key[0], "variant": key[1], "results": {}, "errors": {}}
        rows.append(row)
    row["results"].update(out.get("results", {}))
    row["errors"].update(out.get("errors", {}))


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes (1,000 tasks), for development")
    p.add_argument("--peers", action="store_true", help="also run ipyparallel and dask (in benchmarks/.peers-venv)")
    p.add_argument(
        "--schemes",
        default=",".join(SCHEMES),
        help="taskyard schemes for throughput and round trip",
    )
    p.add_argument("--scale", action="store_true", help="also run the 100-engine scale test (slow, optional)")
    p.add_argument("--scale-engines", type=int, default=100)
    p.add_argument("--scale-tasks", type=int, default=100_000)
    p.add_argument("--scale-total", type=int, default=1_000_000)
    p.add_argument("--scale-timeout", type=float, default=3600.0, help="bound on the whole scale job (s)")
    p.add_argument("--peers-venv", type=Path, default=HERE / ".peers-venv")
    p.add_argument("--out-dir", type=Path, default=HERE / "reports")
    args = p.parse_args(argv)
    args.schemes = [s for s in args.schemes.split(",") if s]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    size = sizes(args)
    workdir = Path(tempfile.mkdtemp(prefix="taskyard-bench-"))
    # Every cluster of the run lives here, never in the user's home.
    os.environ["TASKYARD_DIR"] = str(workdir / "taskyard")
    os.environ["IPYTHONDIR"] = str(workdir / "ipython")
    started_at = dt.datetime.now(dt.timezone.utc)
    info = {
        "command": "python benchmarks/run.py " + shlex.join(sys.argv[1:] if argv is None else argv),
        "started_at": started_at.isoformat(timespec="seconds"),
        "machine": machine.describe(HERE.parent),
        "sizes": size,
    }
    rows: list[dict[str, Any]] = []
    try:
        peers_python = peers_venv.ensure(args.peers_venv) if args.peers else None
        if peers_python is not None:
            info["peer_versions"] = machine.peer_versions(peers_python)
        for key, job_argv in jobs(args, size, peers_python):
            job_timeout = args.scale_timeout if key == SCALE else size["job_timeout"]
            out = run_job(" ".join(key), job_argv, job_timeout, workdir)
            if key == SCALE:
                info["scale"] = out
            else:
                merge(rows, key, out)
        if "pure" not in args.schemes:
            rows.append({"system": "taskyard", "variant": "pure", "status": "not run", "results": {}, "errors": {}})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    info["rows"] = rows
    info["ratios"] = report.ratios(rows)
    info["targets"] = report.targets(rows, info.get("scale"))
    info["load_average_at_end"] = list(os.getloadavg())
    info["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ") + ("-quick" if args.quick else "")
    (args.out_dir / f"{stamp}.json").write_text(json.dumps(info, indent=1) + "\n")
    text = report.markdown(info)
    (args.out_dir / f"{stamp}.md").write_text(text)
    print(text)
    print(f"written: {args.out_dir / stamp}.json and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
