"""Engine output of any size still gives a result, and rich output reaches the client."""

from __future__ import annotations

import pytest

import taskyard as ty
from taskyard.client.execute_reply import ExecuteReply
from taskyard.engine.output import MAX_CAPTURED
from taskyard.error import RemoteError
from tests.helpers import wait_for

FIFTY_MB = 50 * 1024 * 1024


def _pending(rc: ty.Client) -> int:
    status = rc.queue_status()
    engines = [v for k, v in status.items() if k != "unassigned"]
    return int(status["unassigned"]) + sum(v["queue"] + v["tasks"] for v in engines)


@pytest.mark.parametrize("kind", ["load-balanced", "direct"])
def test_fifty_megabytes_in_one_print_resolve(rc: ty.Client, kind: str) -> None:
    size = FIFTY_MB

    def shout() -> int:
        print("x" * size)
        return 7

    view = rc.load_balanced_view() if kind == "load-balanced" else rc[0]
    ar = view.apply_async(shout)
    assert ar.get(60) == 7
    stdout = ar.stdout
    assert stdout.startswith("x" * 1000)
    assert len(stdout) < 2 * MAX_CAPTURED
    assert f"{FIFTY_MB + 1 - MAX_CAPTURED:,} more characters were cut" in stdout
    wait_for(lambda: _pending(rc) == 0, 20, "queue_status to count nothing pending")


def test_a_huge_exception_message_still_fails_the_result(rc: ty.Client) -> None:
    size = FIFTY_MB

    def fail() -> None:
        raise ValueError("y" * size)

    ar = rc.load_balanced_view().apply_async(fail)
    with pytest.raises(RemoteError) as info:
        ar.get(60)
    assert info.value.ename == "ValueError"
    assert "more characters were cut" in info.value.evalue


def test_execute_relays_display_and_rich_results(rc: ty.Client) -> None:
    code = (
        "from IPython.display import HTML, display\n"
        "display(HTML('<b>engine</b>'))\n"
        "print('printed')\n"
        "HTML('<i>last</i>')"
    )
    ar = rc[:].execute(code, silent=False, block=False)
    ar.get(30)
    for md in ar.metadata:
        assert [o["data"]["text/html"] for o in md["outputs"]] == ["<b>engine</b>"]
        assert md["execute_result"]["data"]["text/html"] == "<i>last</i>"
        assert md["stdout"] == "printed\n"


def test_apply_relays_display_once_the_shell_exists(rc: ty.Client) -> None:
    view = rc[:]
    view.execute("from IPython.display import display", block=True)  # builds the engines' shell

    @ty.interactive
    def publish() -> int:
        for i in range(3):
            display(i)  # noqa: F821 - imported on the engines above
        return 1

    ar = view.apply_async(publish)
    assert ar.get(30) == [1, 1]
    assert ar.wait_for_output(5)
    assert [[o["data"] for o in outputs] for outputs in ar.outputs] == [[{"text/plain": str(i)} for i in range(3)]] * 2
    assert view.apply_sync(lambda: 2) == [2, 2] and ar.outputs[0]  # a plain apply after it: nothing kept


def test_execute_gives_execute_replies(rc: ty.Client) -> None:
    # ipyparallel's shape: the count, the rich result, the metadata as items and attributes
    rc[:].execute("n = 6", block=True)
    replies = rc[:].execute("print('side')\nn * 7", silent=False, block=False).get(30)
    assert [type(r).__name__ for r in replies] == ["ExecuteReply"] * 2
    assert [r.data["text/plain"] for r in replies] == ["42", "42"]
    assert [r.engine_id for r in replies] == [0, 1] and [r["stdout"] for r in replies] == ["side\n"] * 2
    assert all(isinstance(r.execution_count, int) and r.execution_count >= 1 for r in replies)
    assert repr(replies[0]) == f"<ExecuteReply[{replies[0].execution_count}]: 42>"
    data, _ = replies[1]._repr_mimebundle_()
    assert data["text/plain"] == f"Out[1:{replies[1].execution_count}]: 42"
    silent = rc[0].execute("n", block=False).get(30)  # silent=True (the default): no result
    assert silent.data == {} and silent.execute_result is None
    second = ty.Client(rc.url_file)  # a reply served by the hub has the same shape
    try:
        again = second.get_result(replies[1].msg_id).get(30)
    finally:
        second.close()
    assert isinstance(again, ExecuteReply) and again.data == {"text/plain": "42"} and again.engine_id == 1


def test_execute_reply_gives_each_rich_form(rc: ty.Client) -> None:
    import base64

    view = rc[0]
    view.execute("from IPython.display import HTML, Image", block=True)
    image = view.execute("Image(data=b'garbage', format='png', width=10)", silent=False, block=True).get()
    data, metadata = image._repr_png_()
    assert data.strip() == base64.b64encode(b"garbage").decode() and metadata == {"width": 10}
    html = view.execute("HTML('<b>bold</b>')", silent=False, block=True).get()
    assert html._repr_html_() == "<b>bold</b>" and html._repr_png_() is None


def test_execute_runs_magics_and_shell_lines(rc: ty.Client) -> None:
    ar = rc[:].execute("%timeit -n1 -r1 sum(range(3))\n!echo from-the-shell", silent=False, block=False)
    ar.get(30)
    for md in ar.metadata:
        assert "per loop" in md["stdout"] and "from-the-shell" in md["stdout"]


def test_apply_does_not_build_the_shell(rc: ty.Client) -> None:
    def shell_built() -> bool:
        from taskyard.engine.shell import EngineShell

        return bool(EngineShell.initialized())

    assert rc[0].apply_sync(shell_built) is False
    rc[0].execute("1", block=True)
    assert rc[0].apply_sync(shell_built) is True


def test_clear_resets_the_shell_namespace_too(rc: ty.Client) -> None:
    rc[:].execute("kept = 1\n%time x = 2", block=True)
    rc.clear(block=True)
    ar = rc[:].execute("'kept' in dir(), get_ipython() is not None", silent=False, block=False)
    ar.get(30)
    assert [md["execute_result"]["data"]["text/plain"] for md in ar.metadata] == ["(False, True)"] * 2
