"""%px, %%px, %autopx and %pxresult in a real (in-process) IPython shell."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

import taskyard as ty

IPython = pytest.importorskip("IPython", reason="the magics need IPython (pip install '.[test]' has it)")


@pytest.fixture
def shell() -> Iterator[object]:
    from IPython.testing.globalipapp import start_ipython

    # A process holds one global IPython shell: the first call starts it, later calls return None.
    ip = start_ipython() or IPython.get_ipython()
    yield ip
    ip._taskyard_magics = None  # type: ignore[attr-defined]


def test_first_client_registers_the_magics(shell, rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    rc.activate()
    shell.run_line_magic("px", "a = 6 * 7")
    assert rc[:]["a"] == [42, 42]
    shell.run_cell_magic("px", "--targets 1", "print('hello', a)\na + 1")
    out = capsys.readouterr().out
    assert "[stdout:1]\nhello 42\n" in out
    assert re.search(r"Out\[1:\d+\]: 43", out)
    assert "[stdout:0]" not in out


def test_noblock_and_pxresult(shell, rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    rc.activate()
    ar = shell.run_line_magic("px", "--noblock b = 2")
    assert isinstance(ar, ty.AsyncResult)
    ar.get(10)
    shell.run_line_magic("px", "--noblock b * 5")
    shell.run_line_magic("pxresult", "")
    assert re.search(r"Out\[0:\d+\]: 10", capsys.readouterr().out)


def test_errors_show_each_engine_traceback(shell, rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    rc.activate()
    with pytest.raises(ty.error.AlreadyDisplayedError) as streamed:
        shell.run_cell_magic("px", "", "1 / 0")
    err = capsys.readouterr().err
    assert "[engine 0:execute]" in err and "[engine 1:execute]" in err and err.count("ZeroDivisionError:") == 2
    assert streamed.value.render_traceback() == ["2 errors"]  # what IPython shows: the tracebacks are above
    with pytest.raises(ty.CompositeError) as composite:
        shell.run_cell_magic("px", "--no-stream", "1 / 0")
    assert capsys.readouterr().err == ""  # not printed: IPython renders the error's own tracebacks
    assert "\n".join(composite.value.render_traceback()).count("ZeroDivisionError:") == 2
    with pytest.raises(ty.RemoteError, match="ZeroDivisionError") as single:
        shell.run_cell_magic("px", "--no-stream -t 1", "1 / 0")
    assert not isinstance(single.value, ty.CompositeError)


def test_autopx_shows_an_error_as_the_cells_traceback(shell, rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    rc.activate()
    shell.run_cell("%autopx")
    try:
        shell.run_cell("q = 0\n1 / q")
        shell.run_cell("print('after')")
    finally:
        shell.run_cell("%autopx")
    out = capsys.readouterr().out
    assert "ZeroDivisionError" in out and "[engine 0:execute]" in out  # IPython printed the remote traceback
    assert out.count("after") == 2


def test_autopx_toggles(shell, rc: ty.Client) -> None:  # type: ignore[no-untyped-def]
    rc.activate()
    shell.run_cell("%autopx")
    shell.run_cell("c = 'remote'")
    shell.run_cell("%autopx")
    shell.run_cell("c = 'local'")
    assert rc[:]["c"] == ["remote", "remote"]
    assert shell.user_ns["c"] == "local"


def test_bad_option_is_a_clear_error(shell, rc: ty.Client) -> None:  # type: ignore[no-untyped-def]
    rc.activate()
    with pytest.raises(ValueError, match="unrecognized arguments: --bogus"):
        shell.run_line_magic("px", "--bogus x = 1")
    with pytest.raises(ValueError, match="invalid choice: 'sideways'"):
        shell.run_cell_magic("px", "--group-outputs=sideways", "1")
    with pytest.raises(ValueError, match="--signal-on-interrupt is not supported"):
        shell.run_cell_magic("px", "--signal-on-interrupt SIGINT", "1")


def test_short_flags_and_out(shell, rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    rc.activate()
    ar = shell.run_cell_magic("px", "-t 1 -a -o kept", "import os\nos.getpid()")
    assert isinstance(ar, ty.AsyncResult) and shell.user_ns["kept"] is ar
    ar.get(10)
    assert ar.engine_id == 1  # one int target: a single result, as in ipyparallel
    assert shell.run_line_magic("px", "-a -t 0 z = 1") is not None
    assert shell.run_line_magic("px", "-b -t 0 print(z)") is None
    assert "[stdout:0]\n1\n" in capsys.readouterr().out
    shell.run_line_magic("px", "-t 0 -z + 10")  # a leading "-" that is not a flag starts the code
    assert re.search(r"Out\[0:\d+\]: 9", capsys.readouterr().out)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("[stdout", "[output", "'one'", "'two'", "p"))]


def test_group_outputs(shell, rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    rc.activate()
    cell = "print('p')\ndisplay('one')\ndisplay('two')"
    capsys.readouterr()
    shell.run_cell_magic("px", "--no-stream --group-outputs=engine", cell)
    by_engine = _lines(capsys.readouterr().out)
    assert by_engine == [f"{line}".format(e) for e in (0, 1) for line in ("[stdout:{}]", "p", "[output:{}]", "'one'", "'two'")]
    shell.run_cell_magic("px", "--no-stream", cell)
    by_type = _lines(capsys.readouterr().out)
    assert by_type == ["[stdout:0]", "p", "[stdout:1]", "p", "[output:0]", "'one'", "'two'", "[output:1]", "'one'", "'two'"]
    shell.run_cell_magic("px", "--no-stream -r", cell)
    by_order = _lines(capsys.readouterr().out)
    assert by_order[4:] == ["[output:0]", "'one'", "[output:1]", "'one'", "[output:0]", "'two'", "[output:1]", "'two'"]


def test_verbose_progress_and_local(shell, rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    rc.activate()
    # --local runs the cell here before waiting: the engines must still be busy
    # afterwards for the bar to show, so they sleep and this shell does not.
    rc[:]["pause"] = 1.0
    shell.user_ns["pause"] = 0.0
    shell.run_cell_magic("px", "--verbose --progress-after 0 --local", "import time\ntime.sleep(pause)\nhere = 1")
    captured = capsys.readouterr()
    assert "Parallel execution on engine(s): all" in captured.out
    assert "%px:" in captured.out and "%px:" not in captured.err  # the progress bar, on stdout as in ipyparallel
    assert shell.user_ns["here"] == 1 and rc[:]["here"] == [1, 1]
    shell.run_cell_magic("px", "--progress-after -1", "time.sleep(0.3)")
    assert "%px:" not in capsys.readouterr().out


def test_pxconfig_sets_the_defaults(shell, rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    view = rc.activate()
    magics = shell._taskyard_magics
    assert magics.view is view and view.block is True
    shell.run_line_magic("pxconfig", "--targets 1 --noblock --verbose")
    ar = shell.run_line_magic("px", "w = 3")
    assert isinstance(ar, ty.AsyncResult)
    ar.get(10)
    assert ar.engine_id == 1  # one int target: a single result, as in ipyparallel
    assert "Async parallel execution on engine(s): 1" in capsys.readouterr().out
    shell.run_line_magic("pxconfig", "-b --no-verbose -t all")
    assert shell.run_line_magic("px", "w = 4") is None
    assert rc[:]["w"] == [4, 4]
    assert magics.view.block is True and not magics.verbose


def test_result_shows_or_keeps_the_last_one(shell, rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from taskyard.client.magics import PxUsageError

    rc.activate()
    magics = shell._taskyard_magics
    with pytest.raises(PxUsageError, match="no %px result yet"):
        shell.run_line_magic("result", "")
    ar = shell.run_cell_magic("px", "-a", "print('r')\n6 * 7")
    shell.run_line_magic("result", "-e")
    out = capsys.readouterr().out
    assert re.search(r"\[stdout:0\]\nr\nOut\[0:\d+\]: 42\n\[stdout:1\]\nr\nOut\[1:\d+\]: 42", out)
    shell.run_line_magic("pxresult", "-o again")
    assert shell.user_ns["again"] is ar is magics.last_result


def test_rich_output_is_shown_per_engine(shell, rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    rc.activate()
    shell.run_cell_magic("px", "", "from IPython.display import HTML, display\ndisplay(HTML('<b>hi</b>'))\nHTML('x')")
    out = capsys.readouterr().out
    for engine_id in (0, 1):
        assert f"[output:{engine_id}]" in out
        assert re.search(rf"Out\[{engine_id}:\d+\]:", out)
    assert out.count("<IPython.core.display.HTML object>") == 4
    assert re.search(r"Out\[0:\d+\]: <IPython.core.display.HTML object>", out)  # the prompt and the value: one display


def test_pxconfig_targets_as_ipyparallel_evaluates_them(shell, rc: ty.Client) -> None:  # type: ignore[no-untyped-def]
    view = rc.activate(-1, "_tst")
    assert view.targets == rc.ids[-1]
    shell.run_line_magic("pxconfig_tst", "-t :")
    assert view.targets == rc.ids
    shell.run_line_magic("pxconfig_tst", "-t 1::2")
    assert view.targets == rc.ids[1::2]
    shell.run_line_magic("pxconfig_tst", "-t 0")
    assert view.targets == 0
    shell.run_line_magic("pxconfig_tst", "-t 0,1")
    assert view.targets == [0, 1]


def test_line_px_is_not_expanded_here_but_cell_flags_are(shell, rc: ty.Client) -> None:  # type: ignore[no-untyped-def]
    view = rc.activate()
    shell.user_ns["x"] = "client"
    view["x"] = "engine"
    shell.run_line_magic("px", 'y = f"{x}"')
    assert view["y"] == ["engine", "engine"]
    shell.user_ns["out_name"] = "kept_here"
    shell.run_cell_magic("px", "-o {out_name}", 'y = f"{x}"')
    assert isinstance(shell.user_ns["kept_here"], ty.AsyncResult)


def test_view_get_result_indexes_the_views_history(shell, rc: ty.Client) -> None:  # type: ignore[no-untyped-def]
    view = rc[1]
    first = view.apply_async(lambda: "first")
    rc[0].apply_async(lambda: "elsewhere").get(10)
    assert view.get_result(-1).get(10) == "first" and view.get_result(-1).msg_ids == first.msg_ids
    with pytest.raises(IndexError, match="no index 5"):
        view.get_result(5)
