"""The client's side of engine output: what iopub brings, and showing it per engine.

An engine publishes, for the request it runs, ``stream`` messages (stdout,
stderr), ``display_data`` (``display()``, inline figures) and
``execute_result`` (a rich last-expression value). :func:`record_iopub` files
each into the request's metadata as it arrives (``stdout``, ``stderr``,
``outputs``, ``execute_result``, the keys ipyparallel uses); the reply then
brings the engine's own complete copy of the same keys, which replaces what
was streamed. The reply's copy is in the same order and a superset, so a
counter of what was shown stays valid across the swap.

:class:`OutputPrinter` shows them in a notebook cell or a terminal: as they
arrive (``show_new``) or all at once grouped by type, engine or order
(``show_all``), each labelled with its engine id as ipyparallel 9 does: a
``[stdout:0]`` line when the engine changes and then the text as printed,
``[output:1]`` then the figure, ``Out[0:3]: 42``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

#: How ``show_all`` may group outputs.
GROUPINGS = ("type", "engine", "order")


def record_iopub(
    metadata: MutableMapping[str, Any], msg_type: str, content: Mapping[str, Any], msg_metadata: Mapping[str, Any]
) -> None:
    """File one iopub message from an engine into its request's ``metadata``."""
    if metadata.get("engine_id") is None and msg_metadata.get("engine_id") is not None:
        metadata["engine_id"] = msg_metadata.get("engine_id")
    if msg_type == "stream":
        name = content.get("name")
        if name in ("stdout", "stderr"):
            metadata[name] = (metadata.get(name) or "") + str(content.get("text", ""))
    elif msg_type == "display_data":
        if not isinstance(content.get("data"), dict):
            raise ValueError("display_data without a data dict")
        outputs = metadata.get("outputs")
        if not isinstance(outputs, list):
            outputs = metadata["outputs"] = []
        outputs.append(dict(content))
    elif msg_type == "execute_result":
        if not isinstance(content.get("data"), dict):
            raise ValueError("execute_result without a data dict")
        metadata["execute_result"] = dict(content)


def _ipython() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


class OutputPrinter:
    """Shows requests' output, remembering what it has shown.

    Streams are shown as ipyparallel 9 shows them: a label line
    (``[stdout:0]``) whenever the engine changes, then the text as the engine
    wrote it, so a run of prints from one engine reads as it would locally.

    Parameters
    ----------
    write : callable, optional
        ``write(text, name)`` prints ``text`` exactly (it carries its own
        newlines) to the stream ``name``; the default prints to
        ``sys.stdout``/``sys.stderr`` (a progress bar passes its own).
    """

    def __init__(self, write: Callable[[str, str], None] | None = None) -> None:
        self.write = write or _print
        #: per (msg_id, kind): characters of a stream, or outputs, shown so far
        self.shown: dict[tuple[str, str], int] = {}
        #: per stream: the label last printed (None: something else came after it)
        self._last_label: dict[str, str | None] = {}
        #: per stream: whether the last text ended a line
        self._line_ended: dict[str, bool] = {}

    # -- as it arrives ------------------------------------------------------

    def show_new(self, metadata: Sequence[Mapping[str, Any]], results: bool = False, rich: bool = True) -> None:
        """Show what arrived since the last call; the results too if ``results``.

        With ``rich=False`` only the streams (stdout, stderr): what a progress
        bar or ``stream_output`` prints while the requests run.
        """
        for md in metadata:
            self._show_streams(md)
            if rich:
                self._show_outputs(md)
            if results:
                self._show_result(md)

    # -- all at once --------------------------------------------------------

    def show_all(self, metadata: Sequence[Mapping[str, Any]], groupby: str = "type", result_only: bool = False) -> None:
        """Show everything not shown yet, grouped by ``type``, ``engine`` or ``order``.

        ``type``: all stdout, then all stderr, then the rich outputs, then the
        results; ``engine``: everything of one engine before the next; ``order``:
        like ``type``, but the i-th rich output of every engine together (the
        first figure of each, then the second...), each under its label.
        ``result_only``: only the results (``execute_result``).
        """
        if groupby not in GROUPINGS:
            raise ValueError(f"groupby must be one of {', '.join(GROUPINGS)}, not {groupby!r}")
        if result_only:
            for md in metadata:
                self._show_result(md)
            return
        if groupby == "engine":
            for md in metadata:
                self._show_streams(md)
                self._show_outputs(md)
                self._show_result(md)
            return
        for name in ("stdout", "stderr"):
            for md in metadata:
                self._show_stream(md, name)
        if groupby == "type":
            for md in metadata:
                self._show_outputs(md)
        else:  # the first output of every engine, then every second one, ...
            rounds = max((len(md.get("outputs") or []) for md in metadata), default=0)
            for index in range(rounds):
                for md in metadata:
                    self._show_outputs(md, upto=index + 1, label_each=True)
        for md in metadata:
            self._show_result(md)

    def show_single(self, md: Mapping[str, Any], result_only: bool = False) -> None:
        """Show one request's output as if it had run here, unlabelled (ipyparallel's
        single-result display): its stdout and stderr as they are, then (in IPython)
        its rich outputs and its result."""
        if not result_only:
            for name in ("stdout", "stderr"):
                self._piece(name, "", md.get(name) or "")
        if _ipython() is None:
            return  # rich outputs need a display
        if not result_only:
            for output in md.get("outputs") or []:
                self._display(output.get("data") or {}, {**(output.get("metadata") or {}), "engine": md.get("engine_id")})
        result = md.get("execute_result")
        if result:
            self._display(dict(result.get("data") or {}), {**(result.get("metadata") or {}), "engine": md.get("engine_id")})

    # -- pieces -------------------------------------------------------------

    def _show_streams(self, md: Mapping[str, Any]) -> None:
        self._show_stream(md, "stdout")
        self._show_stream(md, "stderr")

    def _show_stream(self, md: Mapping[str, Any], name: str) -> None:
        text = md.get(name) or ""
        key = (str(md.get("msg_id")), name)
        start = self.shown.get(key, 0)
        if len(text) <= start:
            return
        self.shown[key] = len(text)
        self._piece(name, f"[{name}:{md.get('engine_id')}]", text[start:])

    def _piece(self, name: str, label: str, text: str) -> None:
        """``text`` of stream ``name``, under ``label`` unless that was the last label shown."""
        if not text:
            return
        if label and self._last_label.get(name) == label:
            label = ""  # the same engine goes on
        elif label:
            self._last_label[name] = label
        before = "\n" if label and not self._line_ended.get(name, True) else ""
        self._line_ended[name] = text.endswith("\n")
        self.write(f"{before}{label}\n{text}" if label else text, name)

    def _line(self, text: str, name: str = "stdout") -> None:
        """A line of its own (a label, a prompt), after which a stream needs its label again."""
        self._end_line(name)
        self._line_ended[name] = True
        self.write(f"{text}\n", name)

    def _end_line(self, name: str = "stdout") -> None:
        if not self._line_ended.get(name, True):
            self.write("\n", name)
            self._line_ended[name] = True
        self._last_label[name] = None

    def _show_outputs(self, md: Mapping[str, Any], upto: int | None = None, label_each: bool = False) -> None:
        outputs = md.get("outputs") or []
        key = (str(md.get("msg_id")), "outputs")
        start = self.shown.get(key, 0)
        end = len(outputs) if upto is None else min(upto, len(outputs))
        if end <= start:
            return
        self.shown[key] = end
        engine_id = md.get("engine_id")
        if start == 0 or label_each:
            self._label(f"[output:{engine_id}]")
        for output in outputs[start:end]:
            self._display(output.get("data") or {}, {**(output.get("metadata") or {}), "engine": engine_id})

    def _show_result(self, md: Mapping[str, Any]) -> None:
        result = md.get("execute_result")
        key = (str(md.get("msg_id")), "execute_result")
        if not result or self.shown.get(key):
            return
        self.shown[key] = 1
        data = dict(result.get("data") or {})
        count = result.get("execution_count")
        prompt = f"Out[{md.get('engine_id')}:{count}]:" if count is not None else f"Out[{md.get('engine_id')}]:"
        text = str(data.get("text/plain", ""))
        sep = "\n" if "\n" in text else " "
        if _ipython() is None or set(data) <= {"text/plain"}:
            self._line(f"{prompt}{sep}{text}")
            return
        # One display, as ipyparallel's: a notebook shows the richest form, a
        # terminal the text, which carries the prompt.
        data["text/plain"] = f"{prompt}{sep}{text}"
        self._display(data, {**(result.get("metadata") or {}), "engine": md.get("engine_id")})

    def _label(self, text: str) -> None:
        shell = _ipython()
        if shell is None:
            self._line(text)
        else:
            self._end_line()
            shell.display_pub.publish(data={"text/plain": text}, metadata={})

    def _display(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        shell = _ipython()
        if shell is None:
            self._line(str(data.get("text/plain", f"<{', '.join(data)}>")))
        else:
            self._end_line()
            shell.display_pub.publish(data=data, metadata=metadata)


def _print(text: str, name: str) -> None:
    print(text, end="", file=sys.stderr if name == "stderr" else sys.stdout)  # noqa: T201 - shown in the user's cell


def bar_printer(bar: Any) -> OutputPrinter:
    """An OutputPrinter that writes above a tqdm progress bar ``bar``."""
    return OutputPrinter(lambda text, name: bar.write(text, file=sys.stderr if name == "stderr" else sys.stdout, end=""))


def progress_bar(**kwargs: Any) -> Any:
    """A tqdm progress bar, as ipyparallel's: a widget in a notebook kernel that has
    ipywidgets, otherwise text on ``sys.stdout`` (not stderr, which a notebook
    shows as an error)."""
    shell = _ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        try:
            import ipywidgets  # noqa: F401 - the widget bar needs it
            from tqdm.notebook import tqdm as notebook_bar
        except ImportError:
            pass
        else:
            return notebook_bar(**kwargs)
    from tqdm import tqdm

    kwargs.setdefault("file", sys.stdout)
    return tqdm(**kwargs)
