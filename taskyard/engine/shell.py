"""IPython on an engine: ``execute`` requests through an ``InteractiveShell``.

With IPython installed (``pip install taskyard[ipython]``), code sent by
``view.execute`` and ``%px`` runs as a notebook cell would: magics
(``%matplotlib inline``, ``%timeit``), ``!`` shell lines, ``display()``, and
a rich last-expression result. The shell is built on the first ``execute``
request; ``apply`` requests never touch it, so load-balanced tasks keep their
fast path.

The shell shares the kernel's namespace. What it displays goes to an
:class:`OutputSink` for the request that runs: each ``display_data`` is sent
on iopub as it happens and kept for the reply's metadata (``outputs``, as in
ipyparallel); the last expression's rich result becomes ``execute_result``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets import Type
from traitlets.config import Config

from taskyard.engine.output import REPLY_BUDGET, json_size
from taskyard.protocol.catalog import error_content

PublishMessage = Callable[[str, dict[str, Any]], None]


class OutputSink:
    """Where one request's rich output goes: iopub now, the reply later."""

    def __init__(self, publish: PublishMessage) -> None:
        self.publish = publish
        self.outputs: list[dict[str, Any]] = []
        self.execute_result: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None

    def display(self, data: dict[str, Any], metadata: dict[str, Any], transient: dict[str, Any] | None) -> None:
        output = {"data": data, "metadata": metadata, "transient": transient or {}}
        size = json_size(output)
        if size > REPLY_BUDGET:  # no message could carry it: a note instead, on iopub and in the reply
            note = f"[a display output of about {size:,} bytes was cut: too big for a message]"
            output = {"data": {"text/plain": note}, "metadata": {}, "transient": {}}
        self.outputs.append(output)
        self.publish("display_data", output)

    def result(self, data: dict[str, Any], metadata: dict[str, Any], execution_count: int) -> None:
        self.execute_result = {"data": data, "metadata": metadata, "execution_count": execution_count}
        self.publish("execute_result", self.execute_result)


class _EngineDisplayHook(DisplayHook):
    """The last expression's value, formatted for every mime type, to the sink."""

    def start_displayhook(self) -> None:
        self._data: dict[str, Any] = {}
        self._md: dict[str, Any] = {}

    def write_output_prompt(self) -> None:
        pass

    def write_format_data(self, format_dict: dict[str, Any], md_dict: dict[str, Any] | None = None) -> None:
        self._data = format_dict
        self._md = md_dict or {}

    def finish_displayhook(self) -> None:
        sink = getattr(self.shell, "sink", None)
        if sink is not None and self._data:
            sink.result(self._data, self._md, self.prompt_count)


class _EngineDisplayPublisher(DisplayPublisher):
    """``display()`` (and inline figures) to the sink."""

    def publish(
        self,
        data: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        source: Any = None,
        *,
        transient: dict[str, Any] | None = None,
        update: bool = False,
        **kwargs: Any,
    ) -> None:
        sink = getattr(self.shell, "sink", None)
        if sink is not None:
            sink.display(data, metadata or {}, transient)

    def clear_output(self, wait: bool = False) -> None:
        pass


class EngineShell(InteractiveShell):
    """The engine's InteractiveShell: output to the running request's sink, errors kept for the reply."""

    displayhook_class = Type(_EngineDisplayHook)
    display_pub_class = Type(_EngineDisplayPublisher)

    sink: OutputSink | None = None

    def _showtraceback(self, etype: Any, evalue: Any, stb: list[str]) -> None:
        if self.sink is not None:
            self.sink.error = {
                "ename": getattr(etype, "__name__", str(etype)),
                "evalue": str(evalue),
                "traceback": "\n".join(stb),
            }

    def show_usage_error(self, exc: BaseException) -> None:
        if self.sink is not None:
            self.sink.error = {"ename": "UsageError", "evalue": str(exc), "traceback": f"UsageError: {exc}"}

    def enable_gui(self, gui: str | None = None) -> None:
        if gui not in (None, "inline"):
            raise UsageError(f"an engine has no GUI event loop for {gui!r}; use %matplotlib inline")


def make_shell(user_ns: dict[str, Any]) -> EngineShell:
    """The process's one engine shell (IPython's display machinery needs a singleton), on ``user_ns``."""
    if EngineShell.initialized():
        return EngineShell.instance()
    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.warn_venv = False
    return EngineShell.instance(config=config, user_ns=user_ns)


def run_cell(shell: EngineShell, code: str, silent: bool, publish: PublishMessage) -> tuple[dict[str, Any], OutputSink]:
    """Run ``code`` as a cell; returns the reply's content and what it displayed."""
    sink = OutputSink(publish)
    shell.sink = sink
    try:
        result = shell.run_cell(code, store_history=not silent, silent=silent)  # type: ignore[no-untyped-call]
    finally:
        shell.sink = None
    error = result.error_before_exec or result.error_in_exec
    if error is not None and type(error).__name__ == "EngineStopping":
        raise error
    reply: dict[str, Any] = {"status": "ok", "execution_count": shell.execution_count - (0 if silent else 1)}
    if error is not None:
        info = sink.error or {"ename": type(error).__name__, "evalue": str(error), "traceback": ""}
        reply.update(error_content(info["ename"], info["evalue"], "user", info["traceback"]))
    elif sink.execute_result is not None:
        reply["execute_result"] = sink.execute_result
    return reply, sink
