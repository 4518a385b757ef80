"""Fixtures ipyparallel's test modules use: one cluster per module, an IPython shell."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ipyparallel.tests import setup, teardown


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    setup()
    try:
        yield
    finally:
        teardown()


@pytest.fixture(scope="module")
def ipython() -> Iterator[Any]:
    from IPython.terminal.interactiveshell import TerminalInteractiveShell
    from traitlets.config import Config

    config = Config()
    config.TerminalInteractiveShell.simple_prompt = True
    config.TerminalInteractiveShell.colors = "NoColor"
    config.HistoryManager.enabled = False
    shell = TerminalInteractiveShell.instance(config=config)
    yield shell
    TerminalInteractiveShell.clear_instance()


@pytest.fixture()
def ipython_interactive(ipython: Any) -> Iterator[Any]:
    with ipython.builtin_trap:
        yield ipython
