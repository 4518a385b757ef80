"""IPython magics: ``%px``, ``%%px``, ``%autopx``, ``%pxresult``.

``client.activate()`` (or ``view.activate()``) registers them; the first Client
created inside IPython registers them for itself. They run code on the
engines of a DirectView (all engines by default)::

    %px import numpy as np
    %%px --targets 0,1 --noblock
    x = np.random.rand(3)
    %pxresult
    %autopx          # every cell now runs on the engines, until %autopx again

Output printed on the engines streams into the cell while it runs, prefixed
with the engine id (``[stdout:0]``); errors show each engine's traceback.
"""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING, Any

from taskyard.error import CompositeError, RemoteError

if TYPE_CHECKING:
    from taskyard.client.view import DirectView

STREAM_POLL = 0.05


def _parse(line: str) -> tuple[dict[str, Any], str]:
    """Split ``--targets``, ``--block``/``--noblock``, ``--stream``/``--no-stream`` off ``line``."""
    options: dict[str, Any] = {}
    words = shlex.split(line, posix=True) if line.strip().startswith("--") else []
    consumed = 0
    i = 0
    while i < len(words) and words[i].startswith("--"):
        word = words[i]
        name, _, value = word[2:].partition("=")
        if name == "targets":
            if not value:
                i += 1
                value = words[i] if i < len(words) else ""
            options["targets"] = _parse_targets(value)
        elif name in ("block", "noblock"):
            options["block"] = name == "block"
        elif name in ("stream", "no-stream"):
            options["stream"] = name == "stream"
        elif name == "local":
            options["local"] = True
        else:
            raise ValueError(f"unknown %px option --{name}; valid: --targets, --block, --noblock, --stream, --local")
        i += 1
        consumed = i
    if consumed:
        rest = line
        for word in words[:consumed]:
            rest = rest.replace(word, "", 1)
        return options, rest.strip()
    return options, line


def _parse_targets(value: str) -> Any:
    value = value.strip()
    if value in ("all", ""):
        return "all"
    if ":" in value:
        parts = [int(p) if p else None for p in value.split(":")]
        return slice(*parts)
    return [int(v) for v in value.split(",")]


class ParallelMagics:
    """The magics' state: the view they use and the last non-blocking result."""

    def __init__(self, view: DirectView, suffix: str = "") -> None:
        self.view = view
        self.suffix = suffix
        self.last_result: Any = None
        self._autopx_original: Any = None

    def px(self, line: str, cell: str | None = None) -> Any:
        options, code = _parse(line)
        if cell is not None:
            code = cell
        if not code.strip():
            return None
        block = options.get("block", True)
        targets = options.get("targets", self.view.targets)
        ar = self.view.execute(code, silent=False, targets=targets, block=False)
        self.last_result = ar
        if options.get("local") and cell is not None:
            from IPython import get_ipython

            shell = get_ipython()
            if shell is not None:
                shell.run_cell(cell)
        if not block:
            return ar
        self._wait_and_show(ar, options.get("stream", True))
        return None

    def _wait_and_show(self, ar: Any, stream: bool) -> None:
        shown: dict[tuple[str, str], int] = {}
        while not ar.done():
            ar.wait(STREAM_POLL)
            if stream:
                ar.print_new_output(shown)
        ar.print_new_output(shown)
        try:
            results = ar.get()
        except CompositeError as error:
            for sub in error.elist:
                text = sub.render_traceback() if isinstance(sub, RemoteError) else f"{type(sub).__name__}: {sub}"
                print(text, file=sys.stderr)  # noqa: T201 - magics print into the cell
            raise PxError(f"{len(error.elist)} engine(s) raised") from None
        except RemoteError as error:
            print(error.render_traceback(), file=sys.stderr)  # noqa: T201
            raise PxError("the engine raised") from None
        results = results if isinstance(results, list) else [results]
        metadata = ar.metadata if isinstance(ar.metadata, list) else [ar.metadata]
        for md, result in zip(metadata, results, strict=False):
            if result:
                text = result.get("data", {}).get("text/plain", "")
                print(f"Out[{md.get('engine_id')}]: {text}")  # noqa: T201

    def pxresult(self, line: str = "") -> Any:
        if self.last_result is None:
            print("no %px result yet")  # noqa: T201
            return None
        self._wait_and_show(self.last_result, stream=False)
        return None

    def autopx(self, line: str = "") -> None:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            raise RuntimeError("%autopx needs IPython")
        if self._autopx_original is None:
            original = shell.run_cell
            magics = self

            def run_cell(raw_cell: str, *args: Any, **kwargs: Any) -> Any:
                if raw_cell.strip().startswith(("%autopx", f"%autopx{magics.suffix}")):
                    return original(raw_cell, *args, **kwargs)
                return original(f"%%px{magics.suffix}\n{raw_cell}", *args, **kwargs)

            self._autopx_original = original
            shell.run_cell = run_cell
            print("%autopx enabled: cells run on the engines")  # noqa: T201
        else:
            shell.run_cell = self._autopx_original
            self._autopx_original = None
            print("%autopx disabled")  # noqa: T201


class PxError(Exception):
    """Raised after the remote tracebacks were printed, so IPython adds no local one."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def activate(view: DirectView, suffix: str = "") -> ParallelMagics | None:
    """Register ``%px{suffix}`` and friends for ``view`` in the running IPython, if any."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None:
        return None
    magics = ParallelMagics(view, suffix)
    shell.register_magic_function(magics.px, "line_cell", f"px{suffix}")
    shell.register_magic_function(magics.pxresult, "line", f"pxresult{suffix}")
    shell.register_magic_function(magics.autopx, "line", f"autopx{suffix}")
    shell._taskyard_magics = magics
    return magics
