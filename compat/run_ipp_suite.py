"""Run ipyparallel 9.2's own client tests against taskyard, and report what passes.

The test modules are read from an installed ipyparallel (in a separate venv,
as the benchmarks' peers are: ``benchmarks/peers_venv.py``), copied into a
temporary directory next to ``compat/shim/ipyparallel``, a stand-in package
whose names are taskyard's, and run by this interpreter (the one taskyard
runs in) with pytest. Nothing of ipyparallel is imported or kept in this
repository: its tests are the measure, the report is the result.

Usage::

    python compat/run_ipp_suite.py                   # makes/reuses the peers venv
    python compat/run_ipp_suite.py --ipp-site /path/to/site-packages -k lbview
    python compat/run_ipp_suite.py --modules test_lbview test_asyncresult

It writes ``compat/reports/<UTC time>.md`` (per module: passed, failed,
errors, skipped; every failure with its first error line) and prints the
summary. Each test is bounded (pytest-timeout), and every process the
fixtures start is stopped at the end of its module.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: ipyparallel's test modules about the client API that taskyard keeps.
MODULES = (
    "test_asyncresult",
    "test_lbview",
    "test_view",
    "test_dependency",
    "test_executor",
    "test_joblib",
    "test_magics",
    "test_client",
    "test_remotefunction",
)


def find_ipp_site(explicit: str | None, venv: str) -> Path:
    """The site-packages that holds ipyparallel's tests."""
    if explicit:
        return Path(explicit)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import peers_venv  # type: ignore[import-not-found]

    python = peers_venv.ensure(Path(venv))
    out = subprocess.run(
        [str(python), "-c", "import ipyparallel, os; print(os.path.dirname(os.path.dirname(ipyparallel.__file__)))"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(out.stdout.strip())


def prepare(workdir: Path, ipp_site: Path, modules: list[str]) -> Path:
    """The stand-in package with ipyparallel's test modules inside it."""
    package = workdir / "ipyparallel"
    shutil.copytree(HERE / "shim" / "ipyparallel", package)
    source = ipp_site / "ipyparallel" / "tests"
    for name in modules:
        shutil.copy(source / f"{name}.py", package / "tests" / f"{name}.py")
    return package / "tests"


def summarize(junit: Path) -> tuple[dict[str, dict[str, int]], list[tuple[str, str]]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"passed": 0, "failed": 0, "error": 0, "skipped": 0})
    failures: list[tuple[str, str]] = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        classname = case.get("classname") or case.get("name") or "?"  # a module that failed to import has no class
        parts = classname.split(".")
        module = parts[2] if len(parts) >= 3 else classname
        name = f"{'.'.join(parts[2:]) or classname}::{case.get('name')}" if case.get("classname") else module
        outcome = "passed"
        message = ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if child.tag == "failure" else "error"
                message = (child.get("message") or child.text or "").strip().splitlines()[0:1]
                message = message[0][:200] if message else ""
            elif child.tag == "skipped":
                outcome = "skipped"
                message = (child.get("message") or "")[:200]
        counts[module][outcome] += 1
        if outcome in ("failed", "error"):
            failures.append((name, message))
    return counts, failures


def report(
    counts: dict[str, dict[str, int]], failures: list[tuple[str, str]], seconds: float, interrupted: list[str]
) -> str:
    total = {k: sum(c[k] for c in counts.values()) for k in ("passed", "failed", "error", "skipped")}
    ran = total["passed"] + total["failed"] + total["error"]
    lines = [
        f"# ipyparallel 9.2's client tests against taskyard ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"`python compat/run_ipp_suite.py`: {total['passed']} of {ran} passed "
        f"({total['skipped']} skipped by the tests themselves) in {seconds:.0f} s.",
        "",
        "| module | passed | failed | errors | skipped |",
        "|---|---|---|---|---|",
    ]
    for module in sorted(counts):
        c = counts[module]
        lines.append(f"| {module} | {c['passed']} | {c['failed']} | {c['error']} | {c['skipped']} |")
    if interrupted:
        lines += ["", f"Stopped early (the tests after the stop did not run): {', '.join(sorted(set(interrupted)))}."]
    lines += ["", "## What failed", ""]
    lines += [f"- `{name}`: {message}" for name, message in failures] or ["Nothing."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ipp-site", help="site-packages of an environment with ipyparallel 9.2 installed")
    parser.add_argument("--peers-venv", default=str(ROOT / "benchmarks" / ".peers-venv"), help="venv with the peers")
    parser.add_argument("--modules", nargs="+", default=list(MODULES), help="ipyparallel test modules to run")
    parser.add_argument("-k", help="pytest -k expression")
    parser.add_argument("--timeout", type=int, default=60, help="seconds per test")
    parser.add_argument("--no-report", action="store_true", help="print the summary only")
    args = parser.parse_args(argv)
    ipp_site = find_ipp_site(args.ipp_site, args.peers_venv)
    with tempfile.TemporaryDirectory(prefix="taskyard-ipp-suite-") as tmp:
        workdir = Path(tmp)
        tests = prepare(workdir, ipp_site, args.modules)
        env = dict(os.environ)
        env["TASKYARD_DIR"] = str(workdir / "taskyard")
        env["PYTHONPATH"] = os.pathsep.join([str(workdir), str(ROOT), env.get("PYTHONPATH", "")])
        started = time.monotonic()
        counts: dict[str, dict[str, int]] = {}
        failures: list[tuple[str, str]] = []
        interrupted: list[str] = []
        # One pytest per module: a module that crashes its process (a test that
        # raises KeyboardInterrupt, say) cannot take the others' results with it.
        for module in args.modules:
            junit = workdir / f"junit-{module}.xml"
            command = [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-q",
                f"--timeout={args.timeout}",
                f"--junitxml={junit}",
                "-o",
                "filterwarnings=",
                "--rootdir",
                str(workdir),
                str(tests / f"{module}.py"),
            ]
            if args.k:
                command += ["-k", args.k]
            code = subprocess.run(command, cwd=workdir, env=env, check=False).returncode
            if code == 2:  # pytest's "interrupted": the tests after the stop did not run
                interrupted.append(module)
            if junit.exists():
                more_counts, more_failures = summarize(junit)
                counts.update(more_counts)
                failures += more_failures
            else:
                interrupted.append(module)
        seconds = time.monotonic() - started
    text = report(counts, failures, seconds, interrupted)
    if not args.no_report:
        out = HERE / "reports" / time.strftime("%Y%m%dT%H%M%SZ.md", time.gmtime())
        out.parent.mkdir(exist_ok=True)
        out.write_text(text)
        print(f"report: {out}")  # noqa: T201 - a command-line tool
    print(text.split("## What failed")[0])  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
