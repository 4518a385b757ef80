"""Filing engine output into a request's metadata, and showing it per engine (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from taskyard.client import outputs
from taskyard.client.outputs import OutputPrinter, record_iopub


@pytest.fixture(autouse=True)
def no_ipython(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outputs, "_ipython", lambda: None)


def _md(engine_id: int, n_outputs: int = 2) -> dict[str, Any]:
    md: dict[str, Any] = {"msg_id": f"m{engine_id}", "engine_id": None, "stdout": "", "stderr": ""}
    record_iopub(md, "stream", {"name": "stdout", "text": f"out{engine_id}\n"}, {"engine_id": engine_id})
    record_iopub(md, "stream", {"name": "stderr", "text": f"err{engine_id}"}, {"engine_id": engine_id})
    for index in range(n_outputs):
        data = {"text/plain": f"fig{engine_id}.{index}", "image/png": "iVBOR"}
        record_iopub(md, "display_data", {"data": data, "metadata": {}}, {"engine_id": engine_id})
    record_iopub(md, "execute_result", {"data": {"text/plain": "42"}, "execution_count": 3}, {})
    return md


def _shown(metadata: list[dict[str, Any]], groupby: str) -> list[str]:
    lines: list[str] = []
    OutputPrinter(lambda text, name: lines.append(text)).show_all(metadata, groupby)
    return lines


def test_iopub_fills_the_keys_ipyparallel_uses() -> None:
    md = _md(4)
    assert md["engine_id"] == 4
    assert md["stdout"] == "out4\n" and md["stderr"] == "err4"
    assert [o["data"]["text/plain"] for o in md["outputs"]] == ["fig4.0", "fig4.1"]
    assert md["execute_result"]["execution_count"] == 3


def test_bad_rich_output_is_refused() -> None:
    with pytest.raises(ValueError, match="display_data without a data dict"):
        record_iopub({}, "display_data", {"data": "nope"}, {})


def test_group_by_type_engine_and_order() -> None:
    mds = [_md(0), _md(1)]
    by_type = ["[stdout:0] out0", "[stdout:1] out1", "[stderr:0] err0", "[stderr:1] err1"]
    by_type += ["[output:0]", "fig0.0", "fig0.1", "[output:1]", "fig1.0", "fig1.1", "Out[0:3]: 42", "Out[1:3]: 42"]
    assert _shown(mds, "type") == by_type
    by_engine = ["[stdout:0] out0", "[stderr:0] err0", "[output:0]", "fig0.0", "fig0.1", "Out[0:3]: 42"]
    by_engine += ["[stdout:1] out1", "[stderr:1] err1", "[output:1]", "fig1.0", "fig1.1", "Out[1:3]: 42"]
    assert _shown(mds, "engine") == by_engine
    assert _shown(mds, "order")[4:10] == ["[output:0]", "fig0.0", "[output:1]", "fig1.0", "fig0.1", "fig1.1"]
    with pytest.raises(ValueError, match="groupby must be one of"):
        _shown(mds, "sideways")


def test_show_new_shows_each_piece_once_across_the_replys_copy() -> None:
    lines: list[str] = []
    printer = OutputPrinter(lambda text, name: lines.append(text))
    md = _md(0, n_outputs=1)
    printer.show_new([md])
    assert lines == ["[stdout:0] out0", "[stderr:0] err0", "[output:0]", "fig0.0"]
    # The reply replaces what was streamed with the engine's complete copy: only the new part shows.
    md["stdout"] = "out0\nmore\n"
    md["outputs"] = [*md["outputs"], {"data": {"text/plain": "late"}, "metadata": {}}]
    printer.show_new([md], results=True)
    assert lines[4:] == ["[stdout:0] more", "late", "Out[0:3]: 42"]
