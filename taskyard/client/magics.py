"""IPython magics: ``%px``, ``%%px``, ``%autopx``, ``%pxconfig``, ``%pxresult``/``%result``.

``client.activate()`` (or the first Client created inside IPython) registers
them on a blocking DirectView of all engines. They run code on the engines as
a notebook cell: with IPython on the engines, magics, ``!`` lines, ``display()``
and inline figures work there too::

    %px import numpy as np
    %%px -t 0,1 --noblock -o ar
    x = np.random.rand(3)
    %pxresult
    %pxconfig --verbose --progress-after 5
    %autopx          # every cell now runs on the engines, until %autopx again

Output streams into the cell while the code runs, labelled with the engine id
(``[stdout:0]``, ``[output:1]`` then a figure, ``Out[0:3]: 42``); errors show
each engine's traceback. The flags are ipyparallel 9's, see :data:`USAGE`.
"""

from __future__ import annotations

import argparse
import ast
import shlex
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from taskyard.client.outputs import GROUPINGS, OutputPrinter, bar_printer, progress_bar
from taskyard.error import AlreadyDisplayedError, CompositeError, RemoteError

if TYPE_CHECKING:
    from taskyard.client.view import DirectView

STREAM_POLL = 0.05

USAGE = """\
%px / %%px flags (ipyparallel's):
  -t, --targets T      engines: all, 0, 0,2, [0,2], ::2 (a slice of the engine ids)
  -b, --block          wait for the result (the default after activate())
  -a, --noblock        return the AsyncResult at once
  --stream, --no-stream            show output as it arrives (default) or at the end
  --verbose, --no-verbose          say where the code runs
  --progress-after S   seconds before a progress bar shows (-1: never, 0: at once)
  --group-outputs {engine,order,type}, -e (engine), -r (order)
  -o, --out NAME       keep the AsyncResult in the user's namespace as NAME
  --local              (%%px only) run the cell here too
"""


class PxUsageError(ValueError):
    """Raised for a bad flag to a ``%px`` magic, naming it and the valid ones."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting the kernel."""

    def error(self, message: str) -> Any:
        raise PxUsageError(f"%{self.prog}: {message}\n{USAGE}")


def _exec_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-b", "--block", action="store_const", const=True, dest="block")
    parser.add_argument("-a", "--noblock", action="store_const", const=False, dest="block")
    parser.add_argument("--stream", action="store_const", const=True, dest="stream")
    parser.add_argument("--no-stream", action="store_const", const=False, dest="stream")
    parser.add_argument("-t", "--targets", type=str)
    parser.add_argument("--verbose", action="store_const", const=True, dest="verbose")
    parser.add_argument("--no-verbose", action="store_const", const=False, dest="verbose")
    parser.add_argument("--progress-after", type=float, dest="progress_after")
    parser.add_argument("--signal-on-interrupt", dest="signal_on_interrupt")


def _output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-r", action="store_const", const="order", dest="groupby")
    parser.add_argument("-e", action="store_const", const="engine", dest="groupby")
    parser.add_argument("--group-outputs", dest="groupby", choices=GROUPINGS)
    parser.add_argument("-o", "--out", dest="save_name")


def _parser(prog: str, exec_flags: bool, output_flags: bool, local: bool = False) -> _Parser:
    parser = _Parser(prog=prog, add_help=False, allow_abbrev=False)
    if exec_flags:
        _exec_flags(parser)
    if output_flags:
        _output_flags(parser)
    if local:
        parser.add_argument("--local", action="store_true")
    return parser


#: options of %px that take a value, for splitting a line magic's flags from its code
_VALUED = {"-t", "--targets", "--progress-after", "--signal-on-interrupt", "--group-outputs", "-o", "--out"}
_SHORT = {"-t", "-b", "-a", "-r", "-e", "-o"}


def _split_line(line: str) -> tuple[list[str], str]:
    """A ``%px`` line's leading flags and the code after them.

    ipyparallel's line ``%px`` takes no flags; taskyard's takes ipyparallel's
    ``%%px`` flags before the code. A word starting ``--`` must be a flag; a
    word starting ``-`` is a flag only if it is one of the short ones, else
    the code starts there (``%px -x + 1``).
    """
    rest = line.lstrip()
    flags: list[str] = []
    while rest.startswith("-"):
        word, _, rest = rest.partition(" ")
        name = word.split("=", 1)[0]
        if not word.startswith("--") and name not in _SHORT:
            rest = f"{word} {rest}"
            break
        flags.append(word)
        rest = rest.lstrip()
        if name in _VALUED and "=" not in word:
            value, _, rest = rest.partition(" ")
            if not value:
                raise PxUsageError(f"%px: {word} needs a value\n{USAGE}")
            flags.append(value)
            rest = rest.lstrip()
    return flags, rest


def parse_targets(value: str, ids: Sequence[int] | None = None) -> Any:
    """``all``, ``3``, ``0,2``, ``[0, 2]`` or a slice like ``::2`` of the engine ids.

    As in ipyparallel, a slice is taken of ``ids`` (the registered engines)
    at once, a single id stays an int and a list stays a list.
    """
    value = value.strip()
    if value in ("all", ""):
        return "all"
    try:
        if ":" in value:
            parts = [int(p) if p.strip() else None for p in value.strip("[]").split(":")]
            if ids is None:
                return slice(*parts)
            return list(ids)[slice(*parts)]
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError):
        raise PxUsageError(f"%px: bad --targets {value!r}; use all, 0, 0,2, [0,2] or ::2") from None
    if isinstance(parsed, int):
        return parsed
    if isinstance(parsed, (list, tuple)) and all(isinstance(t, int) for t in parsed):
        return list(parsed)
    raise PxUsageError(f"%px: bad --targets {value!r}; use all, 0, 0,2, [0,2] or ::2")


def _no_signals(value: str | None) -> None:
    if value is not None:
        raise PxUsageError(
            "%px: --signal-on-interrupt is not supported: taskyard cannot signal engines yet. "
            "Ctrl-C stops waiting while the engines carry on; ar.abort() drops what has not started."
        )


class ParallelMagics:
    """The magics' state: their view, their defaults, and the last result."""

    def __init__(self, view: DirectView, suffix: str = "") -> None:
        self.view = view
        self.suffix = suffix
        self.last_result: Any = None
        self.verbose = False
        self.stream = True
        #: seconds of waiting before a progress bar shows (-1: never)
        self.progress_after = 2.0
        self._autopx_original: Any = None

    # -- %px / %%px -------------------------------------------------------

    def px(self, line: str, cell: str | None = None) -> Any:
        if cell is None:
            words, code = _split_line(line)
            args = _parser(f"px{self.suffix}", True, True).parse_args(words)
            args.local = False
        else:
            args = _parser(f"px{self.suffix}", True, True, local=True).parse_args(shlex.split(line))
            code = cell
        _no_signals(args.signal_on_interrupt)
        if not code.strip():
            return None
        targets = self._targets(args.targets) if args.targets else self.view.targets
        block = self.view.block if args.block is None else args.block
        if self.verbose if args.verbose is None else args.verbose:
            print(f"{'Parallel' if block else 'Async parallel'} execution on engine(s): {targets}")  # noqa: T201
        ar = self.view.execute(code, silent=False, targets=targets, block=False)
        self.last_result = ar
        if args.save_name:
            self._user_ns()[args.save_name] = ar
        if args.local:
            self._shell().run_cell(code)
        if not block:
            return ar
        stream = self.stream if args.stream is None else args.stream
        progress_after = self.progress_after if args.progress_after is None else args.progress_after
        self._wait_and_show(ar, stream, args.groupby or "type", progress_after)
        return None

    def line_px(self, line: str) -> Any:
        """``%px code``: the line runs on the engines, with the engines' names in it
        (``%px y = f"{x}"`` uses the engines' ``x``; IPython does not expand it here)."""
        return self.px(line)

    line_px._ipython_magic_no_var_expand = True  # type: ignore[attr-defined]

    def cell_px(self, line: str, cell: str) -> Any:
        """``%%px flags``: the cell runs on the engines; ``{name}`` in the flags is
        expanded here, as IPython does for every magic's line (``-o {out_name}``)."""
        return self.px(line, cell)

    def _targets(self, text: str) -> Any:
        return parse_targets(text, self.view.client.ids)

    def _wait_and_show(self, ar: Any, stream: bool, groupby: str, progress_after: float) -> None:
        bar: Any = None
        printer = OutputPrinter()
        started_at = time.monotonic()
        try:
            while not ar.done():
                ar.wait(STREAM_POLL)
                if stream:
                    printer.show_new(_metadata(ar))
                waited = time.monotonic() - started_at
                if bar is None and 0 <= progress_after <= waited and not ar.done():
                    bar = progress_bar(total=len(ar), desc=f"%px{self.suffix}", unit="tasks", leave=False)
                    printer.write = bar_printer(bar).write
                if bar is not None:
                    bar.update(ar.progress - bar.n)
        finally:
            if bar is not None:
                bar.close()
                printer.write = OutputPrinter().write
        if stream:
            printer.show_new(_metadata(ar), results=True)
        else:
            printer.show_all(_metadata(ar), groupby)
        _raise_errors(ar, shown=stream)

    # -- %pxresult, %pxconfig ---------------------------------------------

    def result(self, line: str = "") -> None:
        args = _parser(f"pxresult{self.suffix}", False, True).parse_args(shlex.split(line))
        if self.last_result is None:
            raise PxUsageError("no %px result yet: run %px --noblock (or %%px -a) first")
        if args.save_name:
            self._user_ns()[args.save_name] = self.last_result
            return
        ar = self.last_result
        ar.wait()
        OutputPrinter().show_all(_metadata(ar), args.groupby or "type")
        _raise_errors(ar, shown=False)

    pxresult = result

    def pxconfig(self, line: str = "") -> None:
        args = _parser(f"pxconfig{self.suffix}", True, False).parse_args(shlex.split(line))
        _no_signals(args.signal_on_interrupt)
        if args.targets:
            self.view.targets = self._targets(args.targets)
        if args.block is not None:
            self.view.block = args.block
        if args.verbose is not None:
            self.verbose = args.verbose
        if args.stream is not None:
            self.stream = args.stream
        if args.progress_after is not None:
            self.progress_after = args.progress_after

    # -- %autopx ------------------------------------------------------------

    def autopx(self, line: str = "") -> None:
        shell = self._shell()
        if self._autopx_original is None:
            original = shell.run_cell
            magics = self

            def run_cell(raw_cell: str, *args: Any, **kwargs: Any) -> Any:
                if raw_cell.strip().startswith(("%autopx", f"%autopx{magics.suffix}")):
                    return original(raw_cell, *args, **kwargs)
                # not streamed, as ipyparallel's %autopx: the outputs show when the
                # cell is done, an error as the cell's traceback
                return original(f"%%px{magics.suffix} --no-stream\n{raw_cell}", *args, **kwargs)

            self._autopx_original = original
            shell.run_cell = run_cell
            print("%autopx enabled: cells run on the engines")  # noqa: T201
        else:
            shell.run_cell = self._autopx_original
            self._autopx_original = None
            print("%autopx disabled")  # noqa: T201

    def _shell(self) -> Any:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            raise RuntimeError("the %px magics need a running IPython")
        return shell

    def _user_ns(self) -> dict[str, Any]:
        return self._shell().user_ns  # type: ignore[no-any-return]


def _metadata(ar: Any) -> list[Any]:
    md = ar.metadata
    return md if isinstance(md, list) else [md]


def _raise_errors(ar: Any, shown: bool) -> None:
    """Raise the engines' error, if any, as ipyparallel's magics do.

    If the output was streamed (``shown``), each engine's traceback is printed
    to stderr and an :class:`~taskyard.error.AlreadyDisplayedError` raised,
    which IPython renders as one short line; otherwise the error itself is
    raised and IPython renders its tracebacks (the first
    ``CompositeError.tb_limit`` of them).
    """
    try:
        ar.get()
    except RemoteError as error:
        if not shown:
            raise
        for sub in error.errors if isinstance(error, CompositeError) else [error]:
            text = str(sub.render_traceback()) if isinstance(sub, RemoteError) else f"{type(sub).__name__}: {sub}"
            print(text, file=sys.stderr)  # noqa: T201 - magics print into the cell
        raise AlreadyDisplayedError(error) from None


def activate(view: DirectView, suffix: str = "") -> ParallelMagics | None:
    """Register ``%px{suffix}`` and friends for ``view`` in the running IPython, if any.

    The view becomes blocking, as ipyparallel's ``activate`` makes it.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None:
        return None
    view.block = True
    magics = ParallelMagics(view, suffix)
    shell.register_magic_function(magics.line_px, "line", f"px{suffix}")
    shell.register_magic_function(magics.cell_px, "cell", f"px{suffix}")
    shell.register_magic_function(magics.result, "line", f"pxresult{suffix}")
    if not suffix:
        shell.register_magic_function(magics.result, "line", "result")
    shell.register_magic_function(magics.pxconfig, "line", f"pxconfig{suffix}")
    shell.register_magic_function(magics.autopx, "line", f"autopx{suffix}")
    shell._taskyard_magics = magics
    return magics
