"""The separate venv that holds the peers (ipyparallel, dask.distributed), created on first use.

The peers never share a venv with taskyard: their dependencies must not leak
into taskyard's, and taskyard must not be importable next to them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGES = ("ipyparallel", "dask", "distributed", "numpy", "psutil", "networkx")
CHECK = "import ipyparallel, dask, distributed, numpy, psutil, networkx"


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def is_ready(venv: Path) -> bool:
    python = python_of(venv)
    if not python.exists():
        return False
    try:
        subprocess.run([str(python), "-c", CHECK], capture_output=True, timeout=120, check=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def ensure(venv: Path) -> Path:
    """The venv's python, after creating the venv and installing the peers if needed."""
    if is_ready(venv):
        return python_of(venv)
    print(f"creating the peers venv in {venv} (pip install {' '.join(PACKAGES)})", file=sys.stderr)
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(python_of(venv)), "-m", "pip", "install", "--quiet", *PACKAGES], check=True, timeout=1200)
    if not is_ready(venv):
        raise RuntimeError(f"the peers venv {venv} was created but cannot import: {CHECK}")
    return python_of(venv)
