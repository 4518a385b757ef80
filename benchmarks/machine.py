"""What the numbers were measured on: CPU, cores, memory, Python, pyzmq/libzmq, commit."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import zmq


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit(repo: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def _dirty_files(repo: Path) -> list[str]:
    """Files of the package that differ from the commit (others may be editing the tree)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "taskyard"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line[3:] for line in out.stdout.splitlines()]


def describe(repo: Path) -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "pyzmq": zmq.pyzmq_version(),
        "libzmq": zmq.zmq_version(),
        "taskyard_commit": _git_commit(repo),
        "taskyard_uncommitted_files": _dirty_files(repo),
        "load_average_at_start": list(os.getloadavg()),
    }


PEER_VERSIONS = (
    "import json, sys, zmq, ipyparallel, dask, distributed, numpy;"
    "print(json.dumps({'python': sys.version.split()[0], 'pyzmq': zmq.pyzmq_version(), 'libzmq': zmq.zmq_version(),"
    "'ipyparallel': ipyparallel.__version__, 'dask': dask.__version__, 'distributed': distributed.__version__,"
    "'numpy': numpy.__version__}))"
)


def peer_versions(python: Path) -> dict[str, Any]:
    import json

    out = subprocess.run([str(python), "-c", PEER_VERSIONS], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)
