"""The documentation builds with warnings as errors, and the generated CLI page is complete."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("sphinx")
    out = tmp_path_factory.mktemp("docs-html")
    doctrees = tmp_path_factory.mktemp("docs-doctrees")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(doctrees),
            str(DOCS),
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"sphinx failed:\n{result.stdout}\n{result.stderr}"
    return out


@pytest.mark.timeout(150)
def test_docs_build_without_warnings(built_docs: Path) -> None:
    for page in ("index", "installation", "tasks", "dependencies", "dag_dependencies", "schedulers", "cli", "api"):
        assert (built_docs / f"{page}.html").is_file(), f"{page}.html was not generated"


@pytest.mark.timeout(150)
def test_cli_page_lists_generated_options(built_docs: Path) -> None:
    cli = (built_docs / "cli.html").read_text(encoding="utf-8")
    for expected in (
        "--scheme",
        "IPController.hwm",
        "IPController.ping",
        "IPEngine.url_file",
        "IPClusterStart.n",
        "--daemonize",
    ):
        assert expected in cli, f"{expected} missing from the CLI options page"


@pytest.mark.timeout(150)
def test_api_page_documents_public_names(built_docs: Path) -> None:
    api = (built_docs / "api.html").read_text(encoding="utf-8")
    for name in (
        "taskyard.Client",
        "taskyard.LoadBalancedView",
        "taskyard.Dependency",
        "taskyard.error.ImpossibleDependency",
    ):
        assert name in api, f"{name} missing from the API page"
