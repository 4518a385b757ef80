"""The engine's bounded output capture and the last guard on a reply's size (no sockets)."""

from __future__ import annotations

from taskyard.engine import output
from taskyard.engine.output import MAX_CAPTURED, MAX_CHUNK, OutputCapture, fit, json_size
from taskyard.protocol import jsonutil
from taskyard.protocol.session import MAX_JSON_FRAME


def test_one_huge_write_keeps_the_head_streams_bounded_pieces_and_notes_the_cut() -> None:
    sent: list[tuple[str, str]] = []
    capture = OutputCapture("stdout", lambda name, text: sent.append((name, text)))
    capture.write("a" * (MAX_CAPTURED * 5))
    capture.close()
    value = capture.getvalue()
    assert value.startswith("a" * MAX_CAPTURED)
    assert f"{MAX_CAPTURED * 4:,} more characters were cut" in value
    assert all(len(text) <= MAX_CHUNK for _, text in sent)
    assert "".join(text for _, text in sent) == value


def test_many_small_writes_are_capped_the_same_way() -> None:
    capture = OutputCapture("stderr", lambda name, text: None)
    writes = MAX_CAPTURED // 10 + 100
    for _ in range(writes):
        capture.write("123456789\n")
    capture.close()
    assert capture.size == MAX_CAPTURED
    assert capture.getvalue().endswith(output.cut_note("stderr", writes * 10 - MAX_CAPTURED))


def test_small_output_is_untouched() -> None:
    capture = OutputCapture("stdout", lambda name, text: None)
    capture.write("hi\n")
    capture.close()
    assert capture.getvalue() == "hi\n"


def test_fit_cuts_what_would_not_fit_a_frame() -> None:
    part = {
        "status": "error",
        "evalue": "\x00" * 10_000_000,
        "outputs": [{"data": {"image/png": "A" * 5_000_000}, "metadata": {}}, {"data": {"text/plain": "1"}}],
    }
    fitted = fit(part, "reply")
    assert len(jsonutil.dumps(fitted)) < MAX_JSON_FRAME
    assert fitted["outputs"][1] == {"data": {"text/plain": "1"}}
    assert "was cut" in fitted["outputs"][0]["data"]["text/plain"]
    assert "more characters were cut" in fitted["evalue"]


def test_fit_leaves_a_small_reply_alone() -> None:
    part = {"status": "ok", "stdout": "x" * 1000}
    assert fit(part, "reply") is part
    assert json_size(part) >= 1000
