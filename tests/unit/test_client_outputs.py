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


def _shown(metadata: list[dict[str, Any]], groupby: str) -> tuple[list[str], list[str]]:
    """The lines printed to stdout and to stderr."""
    out: dict[str, str] = {"stdout": "", "stderr": ""}

    def write(text: str, name: str) -> None:
        out[name] += text

    OutputPrinter(write).show_all(metadata, groupby)
    return out["stdout"].splitlines(), out["stderr"].splitlines()


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
    out, err = _shown(mds, "type")
    assert out == ["[stdout:0]", "out0", "[stdout:1]", "out1", "[output:0]", "fig0.0", "fig0.1"] + [
        "[output:1]", "fig1.0", "fig1.1", "Out[0:3]: 42", "Out[1:3]: 42"
    ]
    assert err == ["[stderr:0]", "err0", "[stderr:1]", "err1"]  # a label starts a new line after "err0"
    out, err = _shown(mds, "engine")
    per_engine = ["[stdout:{0}]", "out{0}", "[output:{0}]", "fig{0}.0", "fig{0}.1", "Out[{0}:3]: 42"]
    assert out == [line.format(e) for e in (0, 1) for line in per_engine]
    out, _ = _shown(mds, "order")
    assert out[4:12] == ["[output:0]", "fig0.0", "[output:1]", "fig1.0", "[output:0]", "fig0.1", "[output:1]", "fig1.1"]
    with pytest.raises(ValueError, match="groupby must be one of"):
        _shown(mds, "sideways")


def test_show_new_labels_an_engine_once_per_run_of_its_output() -> None:
    written: list[tuple[str, str]] = []
    printer = OutputPrinter(lambda text, name: written.append((name, text)))
    md = _md(0, n_outputs=1)
    printer.show_new([md])
    assert written == [("stdout", "[stdout:0]\nout0\n"), ("stderr", "[stderr:0]\nerr0"), ("stdout", "[output:0]\n")] + [
        ("stdout", "fig0.0\n")
    ]
    # The reply replaces what was streamed with the engine's complete copy: only the new part shows.
    del written[:]
    md["stdout"] = "out0\nmore\n"
    md["stderr"] = "err0 and the rest\n"
    md["outputs"] = [*md["outputs"], {"data": {"text/plain": "late"}, "metadata": {}}]
    printer.show_new([md], results=True)
    # stdout was interrupted by an output, so its label shows again; stderr goes on unlabelled
    assert written == [("stdout", "[stdout:0]\nmore\n"), ("stderr", " and the rest\n")] + [
        ("stdout", "late\n"), ("stdout", "Out[0:3]: 42\n")
    ]


def test_a_stream_goes_on_unlabelled_until_another_engine_prints() -> None:
    written: list[str] = []
    printer = OutputPrinter(lambda text, name: written.append(text))
    a: dict[str, Any] = {"msg_id": "a", "engine_id": 0, "stdout": "partial"}
    b: dict[str, Any] = {"msg_id": "b", "engine_id": 1, "stdout": "x\n"}
    printer.show_new([a])
    a["stdout"] += " line\n"
    printer.show_new([a, b])
    assert "".join(written) == "[stdout:0]\npartial line\n[stdout:1]\nx\n"
    printer.show_new([{"msg_id": "c", "engine_id": 0, "stdout": "y"}, b])
    assert "".join(written).endswith("[stdout:1]\nx\n[stdout:0]\ny")
