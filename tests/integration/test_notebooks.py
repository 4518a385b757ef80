"""The example notebooks run top to bottom on a real Jupyter kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    names = {p.name for p in NOTEBOOKS}
    assert {"getting-started.ipynb", "dag-dependencies.ipynb", "functional-dependencies.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, taskyard_dir: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(_kernel_cwd(tmp_path))}}
    )
    client.execute()
    errors = [
        output
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
    # Each notebook stops its own cluster: no connection files are left.
    assert not list(taskyard_dir.glob("profile_*/security/*.json"))


def _kernel_cwd(tmp_path: Path) -> Path:
    """A directory of its own for the kernel: tmp_path holds the ``taskyard`` profile root,
    which the kernel would otherwise import as a namespace package when taskyard is
    installed in editable mode (the editable finder comes after the current directory)."""
    path = tmp_path / "kernel-cwd"
    path.mkdir(exist_ok=True)
    return path


def _run_cells(sources: list[str], tmp_path: Path) -> list[list[dict[str, object]]]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(_kernel_cwd(tmp_path))}}
    )
    client.execute()
    return [cell.outputs for cell in nb.cells]


def _texts(outputs: list[dict[str, object]]) -> str:
    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            parts.append(str(output["text"]))
        elif "data" in output:
            parts.append(str(output["data"].get("text/plain", "")))  # type: ignore[union-attr]
    return "".join(parts)


def test_px_in_a_notebook_shows_figures_and_shell_output_per_engine(make_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster = make_cluster(2)
    outputs = _run_cells(
        [
            "import taskyard as ty\n"
            f"rc = ty.Client(url_file={str(cluster.cluster.client_file)!r}, timeout=10)\n"
            "rc.wait_for_engines(2, timeout=30, interactive=False)\n"
            "rc.activate()",
            "%px %matplotlib inline",
            "%%px\nimport matplotlib.pyplot as plt\nplt.plot([1, 3, 2]);",
            "%px !echo hi",
            "%px from IPython.display import HTML; display(HTML('<b>rich</b>'))",
            "rc.close()",
        ],
        tmp_path,
    )
    errors = [o for cell in outputs for o in cell if o.get("output_type") == "error"]
    assert not errors, errors
    plot = outputs[2]
    pngs = [o for o in plot if "image/png" in o.get("data", {})]  # type: ignore[operator]
    assert len(pngs) == 2
    assert sorted(o["metadata"]["engine"] for o in pngs) == [0, 1]  # type: ignore[index]
    assert "[output:0]" in _texts(plot) and "[output:1]" in _texts(plot)
    shell_out = _texts(outputs[3])
    assert "[stdout:0]\nhi" in shell_out and "[stdout:1]\nhi" in shell_out
    html = [o for o in outputs[4] if "text/html" in o.get("data", {})]  # type: ignore[operator]
    assert [o["data"]["text/html"] for o in html] == ["<b>rich</b>", "<b>rich</b>"]  # type: ignore[index]
