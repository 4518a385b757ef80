"""execute requests on an engine without IPython: plain exec, and a clear error for magics.

(The IPython path builds a process-wide InteractiveShell, so it is tested in
engine processes: tests/integration/test_engine_output.py and test_notebooks.py.)
"""

from __future__ import annotations

import builtins
from typing import Any

import pytest

from taskyard.engine.kernel import Kernel


@pytest.fixture(autouse=True)
def _no_ipython_builtins(monkeypatch: pytest.MonkeyPatch) -> None:
    # An InteractiveShell made earlier in this process (the magics tests) leaves
    # display() among the builtins; an engine without IPython has none.
    monkeypatch.delattr(builtins, "display", raising=False)


def _plain_kernel() -> Kernel:
    kernel = Kernel(3, "uuid")
    kernel._has_ipython = False  # as on an engine where IPython is not installed
    return kernel


def _execute(kernel: Kernel, code: str) -> tuple[dict[str, Any], dict[str, Any]]:
    content, _, metadata = kernel.run("execute", {"code": code, "silent": False}, [], lambda kind, body: None)
    return content, metadata


def test_plain_exec_returns_the_last_expression() -> None:
    content, metadata = _execute(_plain_kernel(), "a = 20\nprint('side')\na * 2 + 2")
    assert content == {"status": "ok", "execute_result": {"data": {"text/plain": "42"}, "metadata": {}}}
    assert metadata["stdout"] == "side\n"


@pytest.mark.parametrize("code", ["%matplotlib inline", "x = 1\n!hostname", "  %timeit 1"])
def test_magics_without_ipython_say_what_to_install(code: str) -> None:
    content, _ = _execute(_plain_kernel(), code)
    assert content["status"] == "error"
    assert content["ename"] == "IPythonNotInstalled"
    assert "pip install 'taskyard[ipython]'" in content["evalue"]


def test_display_without_ipython_says_what_to_install() -> None:
    content, _ = _execute(_plain_kernel(), "display(1)")
    assert content["ename"] == "IPythonNotInstalled" and "display() needs IPython" in content["evalue"]
    content, _ = _execute(_plain_kernel(), "undefined_name")
    assert content["ename"] == "NameError"


def test_a_real_syntax_error_stays_one() -> None:
    content, _ = _execute(_plain_kernel(), "def (")
    assert content["ename"] == "SyntaxError"
