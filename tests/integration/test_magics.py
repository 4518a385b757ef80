"""%px, %%px, %autopx and %pxresult in a real (in-process) IPython shell."""

from __future__ import annotations

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
    assert "[stdout:1] hello 42" in out
    assert "Out[1]: 43" in out
    assert "[stdout:0]" not in out


def test_noblock_and_pxresult(shell, rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    rc.activate()
    ar = shell.run_line_magic("px", "--noblock b = 2")
    assert isinstance(ar, ty.AsyncResult)
    ar.get(10)
    shell.run_line_magic("px", "--noblock b * 5")
    shell.run_line_magic("pxresult", "")
    assert "Out[0]: 10" in capsys.readouterr().out


def test_errors_show_each_engine_traceback(shell, rc: ty.Client, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from taskyard.client.magics import PxError

    rc.activate()
    with pytest.raises(PxError):
        shell.run_cell_magic("px", "", "1 / 0")
    err = capsys.readouterr().err
    assert "[engine 0]" in err and "[engine 1]" in err and "ZeroDivisionError" in err


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
    with pytest.raises(ValueError, match="unknown %px option"):
        shell.run_line_magic("px", "--bogus x = 1")
