"""Run ipyparallel 9.2's own examples against taskyard, with only the import changed.

The examples (``docs/source/examples`` of ipyparallel's release 9.2.0: notebooks
and scripts) come from its source distribution on PyPI, checked against its
sha256 and cached in ``compat/.cache``. Each is copied into a temporary
directory and its imports rewritten (``import ipyparallel as ipp`` becomes
``import taskyard as ipp``, ``from ipyparallel.x import y`` becomes
``from taskyard.x import y``); nothing else changes. Scripts run as
``python script.py`` in their own directory; notebooks run top to bottom on a
real Jupyter kernel (nbclient) in theirs. A taskyard cluster of four engines
runs for the examples that connect with ``ipp.Client()``; those that start
their own ``ipp.Cluster`` do so. Everything lives in a temporary
``TASKYARD_DIR``, and every cluster left in it is stopped at the end.

Usage::

    python compat/run_ipp_examples.py                  # all of them
    python compat/run_ipp_examples.py "Futures.ipynb" dependencies.py
    python compat/run_ipp_examples.py --sdist path/to/ipyparallel-9.2.0.tar.gz

The same examples also run, unchanged, on ipyparallel 9.2 itself (in the
benchmarks' peers venv, or ``--peer-python``), so the report tells an
example taskyard breaks from one that no longer runs anywhere (an API of
networkx or numpy that has moved on, a widget library not installed):
``--no-peer`` skips that.

It writes ``compat/reports/examples-<UTC time>.md``: per example, how it went
on ipyparallel and on taskyard (passed, or failed with the first error: the
cell or the script's last line of stderr) or why it was not run (what it
needs that this machine cannot give, or that it is a module other examples
import), and prints the summary.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"

SDIST_URL = (
    "https://files.pythonhosted.org/packages/3d/05/"
    "f60bd7d99c1eace2d887e8d3c9cdef6b195826bcec866366fae8755e373f/ipyparallel-9.2.0.tar.gz"
)
SDIST_SHA256 = "2b31bb4e94708e7ffb4ee6501d7f5f664df7e1c4c572e91e9e0d12484c6a6910"
EXAMPLES = "ipyparallel-9.2.0/docs/source/examples"

#: Examples that are modules the others import, or tools that run until stopped: not run on their own.
NOT_PROGRAMS = {
    "interengine/communicator.py": "a module interengine.py imports",
    "interengine/bintree.py": "a module bintree_script.py imports",
    "wave2D/RectPartitioner.py": "a module parallelwave.py imports",
    "wave2D/communicator.py": "a module parallelwave.py imports",
    "wave2D/wavesolver.py": "a module parallelwave.py imports",
    "rmt/rmtkernel.py": "a module rmt.ipynb imports",
    "pi/pidigits.py": "a module parallelpi.py imports",
    "daVinci Word Count/wordfreq.py": "a module pwordfreq.py imports",
    "task_mod.py": "a module task_profiler.py imports",
    "iopubwatcher.py": "a monitor that runs until it is stopped",
    "rmt/rmt.ipy": "the IPython-script copy of rmt.ipynb",
}

#: Examples that need what this machine cannot give (or what taskyard has not built yet).
NEEDS = {
    "fetchparse.py": "the internet: it crawls a web site",
    "daVinci Word Count/pwordfreq.py": "the internet: it downloads the text",
    "pi/parallelpi.py": "the internet: it downloads files of pi's digits",
    "wave2D/parallelwave-mpi.py": "MPI engines (ipcluster --engines=MPI): issue 16",
    "Using MPI with IPython Parallel.ipynb": "MPI engines: issue 16",
    "Monitoring an MPI Simulation - 1.ipynb": "MPI engines: issue 16",
    "Monitoring an MPI Simulation - 2.ipynb": "MPI engines: issue 16",
    "broadcast/MPI Broadcast.ipynb": "MPI engines: issue 16",
    "broadcast/Broadcast view.ipynb": "an MPI cluster in profile 'mpi' (issue 16), and BroadcastView",
    "broadcast/memmap Broadcast.ipynb": "an MPI cluster in profile 'mpi' (issue 16), and BroadcastView",
}

#: Arguments a script needs to run briefly (its own defaults run for minutes).
ARGS: dict[str, list[str]] = {
    "wave2D/parallelwave.py": ["--grid", "40", "40", "--partition", "2", "2", "--tstop", "0.2"],
}

_IMPORT_AS = re.compile(r"^(\s*)import ipyparallel as (\w+)", re.M)
_IMPORT = re.compile(r"^(\s*)import ipyparallel\s*$", re.M)
_FROM = re.compile(r"^(\s*)from ipyparallel((?:\.[\w.]+)?) import", re.M)


def change_import(source: str) -> str:
    """``source`` with ipyparallel's imports made taskyard's; nothing else changes."""
    source = _IMPORT_AS.sub(r"\1import taskyard as \2", source)
    source = _IMPORT.sub(r"\1import taskyard as ipyparallel", source)
    return _FROM.sub(r"\1from taskyard\2 import", source)


def fetch_sdist(explicit: str | None) -> Path:
    """ipyparallel 9.2.0's source distribution, downloaded once and checked."""
    path = Path(explicit) if explicit else CACHE / "ipyparallel-9.2.0.tar.gz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"downloading {SDIST_URL}")  # noqa: T201 - a command-line tool
        with urllib.request.urlopen(SDIST_URL, timeout=120) as response:  # noqa: S310 - a fixed https URL
            data = response.read()
        path.write_bytes(data)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise SystemExit(f"{path}: sha256 {digest} is not ipyparallel 9.2.0's {SDIST_SHA256}")
    return path


def extract(sdist: Path, into: Path) -> Path:
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(EXAMPLES + "/") and m.isfile()]
        tar.extractall(into, members=members, filter="data")
    return into / EXAMPLES


def rewrite_tree(examples: Path) -> None:
    for path in examples.rglob("*"):
        if path.suffix in (".py", ".ipy"):
            path.write_text(change_import(path.read_text()))
        elif path.suffix == ".ipynb":
            import nbformat

            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.source = change_import(cell.source)
            nbformat.write(nb, path)


@dataclass
class Outcome:
    name: str
    status: str  # "passed", "failed", "not run"
    seconds: float = 0.0
    detail: str = ""
    #: of a notebook: the cells that raised (index -> "ename: evalue"), every one of them
    cells: dict[str, str] | None = None


def run_script(path: Path, name: str, env: dict[str, str], timeout: float) -> Outcome:
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, path.name, *ARGS.get(name, [])],
            cwd=path.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(name, "failed", time.monotonic() - started, f"still running after {timeout:.0f} s")
    seconds = time.monotonic() - started
    if done.returncode == 0:
        return Outcome(name, "passed", seconds)
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return Outcome(name, "failed", seconds, lines[-1][:300] if lines else f"exit status {done.returncode}")


def run_notebook(path: Path, name: str, timeout: float) -> Outcome:
    """Every cell, on past errors (some examples raise on purpose, to show a
    remote traceback): the cells that raised are the outcome's ``cells``."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.monotonic()
    try:
        client.execute()
    except Exception as error:  # noqa: BLE001 - a timeout or a dead kernel is that notebook's failure
        detail = _one_line(f"{type(error).__name__}: {error}")
        return Outcome(name, "failed", time.monotonic() - started, detail)
    cells = {str(i): _error_of(c) for i, c in enumerate(nb.cells) if _has_error(c)}
    seconds = time.monotonic() - started
    if not cells:
        return Outcome(name, "passed", seconds, cells={})
    first = next(iter(cells))
    return Outcome(name, "failed", seconds, f"cell {first}: {cells[first]}", cells=cells)


def _error_of(cell: object) -> str:
    for output in getattr(cell, "outputs", []) or []:
        if output.get("output_type") == "error":
            evalue = str(output.get("evalue", "")).splitlines()
            return f"{output.get('ename')}: {evalue[0][:200] if evalue else ''}"
    return ""


def _has_error(cell: object) -> bool:
    return any(o.get("output_type") == "error" for o in getattr(cell, "outputs", []) or [])


def stop_clusters(profile_root: Path, ty: object) -> None:
    """Stop every cluster an example (or this runner) left running under ``profile_root``
    (``ty`` is the package that runs them: taskyard, or ipyparallel for the comparison)."""
    for cluster_file in profile_root.glob("profile_*/security/cluster-*.json"):
        try:
            ty.Cluster.from_file(cluster_file).stop_cluster_sync()  # type: ignore[attr-defined]
        except Exception as error:  # noqa: BLE001 - report and go on to the next one
            print(f"could not stop {cluster_file}: {error}")  # noqa: T201


def verdict(ours: Outcome, theirs: Outcome | None) -> str:
    """How taskyard did against ipyparallel on one example: ``same`` when it
    raised nowhere that ipyparallel did not; else what only taskyard raised."""
    if ours.status == "passed":
        return "same" if theirs is None or theirs.status == "passed" else "better"
    if theirs is None or theirs.status == "passed":
        return f"taskyard only: {ours.detail}"
    if ours.cells is not None and theirs.cells is not None:
        only = {i: e for i, e in ours.cells.items() if i not in theirs.cells}
        if not only:
            return "same"
        first = next(iter(only))
        return f"taskyard only: cell {first}: {only[first]}" + (f" (+{len(only) - 1} more)" if len(only) > 1 else "")
    return "both fail"


def report(outcomes: list[Outcome], peer: dict[str, Outcome] | None, seconds: float) -> str:
    ran = [o for o in outcomes if o.status != "not run"]
    passed = [o for o in ran if o.status == "passed"]
    lines = [
        f"# ipyparallel 9.2's examples on taskyard ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"`python compat/run_ipp_examples.py`: {len(passed)} of {len(ran)} examples ran through on taskyard "
        f"with only the import changed ({len(outcomes) - len(ran)} not run, said why) in {seconds:.0f} s.",
    ]
    if peer is not None:
        verdicts = {o.name: verdict(o, peer.get(o.name)) for o in ran}
        same = [n for n, v in verdicts.items() if v in ("same", "better")]
        lines += [
            f"Against ipyparallel 9.2 run on the same machine: {len(same)} of {len(ran)} behave the same "
            "(no cell or script fails on taskyard that runs on ipyparallel; a notebook's cells all run, "
            "past errors, so a cell that raises on purpose counts on both sides).",
        ]
    lines += [
        "",
        "| example | ipyparallel 9.2 | taskyard | compared |",
        "|---|---|---|---|",
    ]
    for o in outcomes:
        if o.status == "not run":
            lines.append(f"| `{o.name}` | | not run | {o.detail} |")
            continue
        theirs = peer.get(o.name) if peer is not None else None
        compared = verdict(o, theirs) if peer is not None else o.detail
        lines.append(f"| `{o.name}` | {_cell(theirs)} | {_cell(o)} | {compared.replace('|', '/')} |")
    if peer is not None:
        failed_there = [(o.name, peer[o.name].detail) for o in ran if peer.get(o.name) and peer[o.name].status != "passed"]
        if failed_there:
            lines += ["", "## Where ipyparallel 9.2 itself fails here", ""]
            lines += [f"- `{name}`: {_one_line(detail)}" for name, detail in failed_there]
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    """The first line of ``text`` and, for a timed-out cell, the code it ran (one line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    if "timed out" in lines[0] and "-------------------" in lines:
        start = lines.index("-------------------") + 1
        code = "; ".join(line for line in lines[start:] if line != "-------------------")
        return f"{lines[0]} The cell: `{code[:200]}`"
    return lines[0]


def _cell(outcome: Outcome | None) -> str:
    if outcome is None:
        return "?"
    if outcome.cells:
        return f"{len(outcome.cells)} cell(s) raised ({outcome.seconds:.1f} s)"
    return f"{outcome.status} ({outcome.seconds:.1f} s)"


def run_peer(python: str, names: list[str], args: argparse.Namespace, sdist: Path) -> dict[str, Outcome]:
    """The same examples on ipyparallel, in its own interpreter (this script with --as-ipyparallel)."""
    with tempfile.TemporaryDirectory(prefix="taskyard-ipp-examples-peer-") as tmp:
        out = Path(tmp) / "outcomes.json"
        command = [python, __file__, "--as-ipyparallel", "--json", str(out), "--sdist", str(sdist)]
        command += ["--timeout", str(args.timeout), "--engines", str(args.engines), *names]
        subprocess.run(command, check=False)
        if not out.exists():
            return {}
        return {d["name"]: Outcome(**d) for d in json.loads(out.read_text())}


def find_peer_python(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import peers_venv  # type: ignore[import-not-found]

        return str(peers_venv.ensure(ROOT / "benchmarks" / ".peers-venv"))
    except Exception as error:  # noqa: BLE001 - the comparison is optional
        print(f"no ipyparallel to compare with: {error}")  # noqa: T201
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="examples to run (paths inside docs/source/examples)")
    parser.add_argument("--sdist", help="ipyparallel-9.2.0.tar.gz already downloaded")
    parser.add_argument("--timeout", type=float, default=180, help="seconds per script, or per notebook cell")
    parser.add_argument("--engines", type=int, default=4, help="engines of the cluster for ipp.Client()")
    parser.add_argument("--no-report", action="store_true", help="print the summary only")
    parser.add_argument("--no-peer", action="store_true", help="do not also run the examples on ipyparallel")
    parser.add_argument("--peer-python", help="an interpreter with ipyparallel 9.2, nbclient and ipykernel")
    parser.add_argument("--as-ipyparallel", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sdist = fetch_sdist(args.sdist)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="taskyard-ipp-examples-") as tmp:
        workdir = Path(tmp)
        examples = extract(sdist, workdir / "src")
        if not args.as_ipyparallel:
            rewrite_tree(examples)
        profile_root = workdir / "profiles"  # not named "taskyard": a kernel's cwd must not shadow the package
        os.environ["TASKYARD_DIR"] = str(profile_root)
        os.environ["IPYTHONDIR"] = str(profile_root)  # ipyparallel's profiles, when it is the one running
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
        names = sorted(
            str(p.relative_to(examples)) for p in examples.rglob("*") if p.suffix in (".py", ".ipynb", ".ipy")
        )
        if args.only:
            unknown = sorted(set(args.only) - set(names))
            if unknown:
                raise SystemExit(f"no such example: {', '.join(unknown)} (there are: {', '.join(names)})")
            names = [n for n in names if n in args.only]
        if args.as_ipyparallel:
            import ipyparallel as ty  # type: ignore[import-not-found]
        else:
            import taskyard as ty

        client_file = profile_root / "profile_default" / "security" / "ipcontroller-client.json"

        def start() -> Any:
            """The cluster ipp.Client() finds (cluster_id ""), its engines registered."""
            cluster = ty.Cluster(n=args.engines, cluster_id="")
            cluster.start_cluster_sync()
            client = cluster.connect_client_sync()
            client.wait_for_engines(args.engines, timeout=60)
            client.close()
            return cluster

        cluster = start()
        outcomes: list[Outcome] = []
        try:
            for name in names:
                if not client_file.exists():  # an example stopped it (Cluster API.ipynb does, on purpose)
                    try:
                        cluster.stop_cluster_sync()
                    except Exception as error:  # noqa: BLE001 - it is gone already; say so and start another
                        print(f"  (the cluster was stopped by the last example: {error})")  # noqa: T201
                    cluster = start()
                why = NOT_PROGRAMS.get(name) or NEEDS.get(name)
                if why:
                    outcomes.append(Outcome(name, "not run", detail=why))
                    continue
                path = examples / name
                print(f"running {name}", flush=True)  # noqa: T201
                if path.suffix == ".ipynb":
                    outcome = run_notebook(path, name, args.timeout)
                else:
                    outcome = run_script(path, name, env, args.timeout)
                print(f"  {outcome.status} in {outcome.seconds:.1f} s {outcome.detail}", flush=True)  # noqa: T201
                outcomes.append(outcome)
        finally:
            cluster.stop_cluster_sync()
            stop_clusters(profile_root, ty)
    if args.json:  # the peer run: outcomes for the parent to compare
        Path(args.json).write_text(json.dumps([o.__dict__ for o in outcomes]))
        return 0
    peer = None
    if not args.no_peer:
        python = find_peer_python(args.peer_python)
        if python is not None:
            print(f"the same examples on ipyparallel ({python})", flush=True)  # noqa: T201
            peer = run_peer(python, [o.name for o in outcomes if o.status != "not run"], args, sdist)
    text = report(outcomes, peer, time.monotonic() - started)
    if not args.no_report:
        out = HERE / "reports" / time.strftime("examples-%Y%m%dT%H%M%SZ.md", time.gmtime())
        out.parent.mkdir(exist_ok=True)
        out.write_text(text)
        print(f"report: {out}")  # noqa: T201
    print(text)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
