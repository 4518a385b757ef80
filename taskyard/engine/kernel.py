"""Running requests on an engine: the namespace, apply, execute, captured output.

The kernel does no socket IO. It takes a request's buffers or code and returns
the reply's ``content`` and buffers; printed output goes to a ``publish``
callback (the engine sends it on iopub) and is also returned for the reply's
metadata.

Functions that travel by value (defined in ``__main__``, lambdas, closures:
anything cloudpickle could not send as a reference to an importable module)
run with the engine's namespace as their globals, as in ipyparallel: ``dv["a"] = 5`` then
``dv.apply(lambda: a)`` sees 5. The globals such a function carried from the
client (imports, helpers, constants) are added to the namespace; a name the
user set on the engine is never overwritten, but a name that was itself filled
in from an earlier call is refreshed, so a constant changed in the client
reaches the engine.
"""

from __future__ import annotations

import ast
import builtins
import copy
import re
import sys
import time
import traceback
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from taskyard.dependency import _Required, dependent
from taskyard.engine.output import REPLY_BUDGET, OutputCapture, fit
from taskyard.error import ProtocolError, UnmetDependency
from taskyard.protocol.catalog import error_content
from taskyard.protocol.reference import Reference, resolve_references
from taskyard.protocol.serialize import serialize_object, unpack_apply

if TYPE_CHECKING:
    from taskyard.engine.shell import EngineShell

#: ``publish(msg_type, content)`` sends one message on iopub for the running request.
Publish = Callable[[str, dict[str, Any]], None]

#: A line that only IPython runs: a magic or a shell escape.
_IPYTHON_LINE = re.compile(r"^\s*(%|!)", re.MULTILINE)


class Kernel:
    """The engine's namespace and the code that runs requests in it."""

    def __init__(self, engine_id: int, engine_uuid: str) -> None:
        self.engine_id = engine_id
        self.engine_uuid = engine_uuid
        self.user_ns: dict[str, Any] = {}
        self._filled: dict[str, Any] = {}
        #: built on the first execute request, if IPython is installed (see shell.py)
        self._shell: EngineShell | None = None
        self._has_ipython: bool | None = None
        self.clear()

    def clear(self) -> None:
        """Reset the namespace to a fresh ``__main__``-like dict."""
        self.user_ns.clear()
        self.user_ns.update({"__name__": "__main__", "__builtins__": builtins})
        self._filled.clear()
        if self._shell is not None:
            self._shell.init_user_ns()

    @property
    def engine_info(self) -> dict[str, Any]:
        return {"engine_id": self.engine_id, "engine_uuid": self.engine_uuid}

    # -- running ----------------------------------------------------------

    def run(
        self, method: str, content: dict[str, Any], buffers: list[Any], publish: Publish
    ) -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
        """Run one request; returns ``(content, buffers, metadata)`` of the reply.

        Whatever it printed or displayed, the reply fits in a message (see output.py).
        """

        def publish_stream(name: str, text: str) -> None:
            publish("stream", {"name": name, "text": text})

        stdout = OutputCapture("stdout", publish_stream)
        stderr = OutputCapture("stderr", publish_stream)
        extra: dict[str, Any] = {}
        saved: tuple[TextIO, TextIO] = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = stdout, stderr  # type: ignore[assignment]
        started = time.time()
        dependencies_met = True
        try:
            if method == "apply" and self._shell is None:
                reply_content, reply_buffers = self._apply(buffers)
            elif method == "apply":
                reply_content, reply_buffers = self._apply_displaying(buffers, publish, extra)
            else:
                reply_content, reply_buffers = self._execute(content, publish, extra)
        except UnmetDependency as exc:
            dependencies_met = False
            reply_content, reply_buffers = self._error_content(exc), []
        except BaseException as exc:  # noqa: BLE001 - user code may raise anything, even SystemExit
            if type(exc).__name__ == "EngineStopping":
                raise
            reply_content, reply_buffers = self._error_content(exc), []
        finally:
            sys.stdout, sys.stderr = saved
            stdout.close()
            stderr.close()
        metadata = {
            **self.engine_info,
            "started": started,
            "completed": time.time(),
            "status": reply_content["status"],
            "dependencies_met": dependencies_met,
            "stdout": stdout.getvalue(),
            "stderr": stderr.getvalue(),
            **extra,
        }
        if stdout.size + stderr.size > REPLY_BUDGET // 12 or extra or reply_content["status"] != "ok":
            reply_content = fit(reply_content, "reply")
            metadata = fit(metadata, "metadata")
        return reply_content, reply_buffers, metadata

    def _apply(self, buffers: list[Any]) -> tuple[dict[str, Any], list[Any]]:
        try:
            f, args, kwargs = unpack_apply(buffers)
        except ProtocolError as exc:
            cause = exc.__cause__
            if isinstance(cause, BaseException):
                raise cause from None
            raise
        f = f.resolve(self.user_ns) if isinstance(f, Reference) else self._bind_to_namespace(f)
        args = tuple(resolve_references(a, self.user_ns) for a in args)
        kwargs = {k: resolve_references(v, self.user_ns) for k, v in kwargs.items()}
        result = f(*args, **kwargs)
        return {"status": "ok"}, serialize_object(result)

    def _apply_displaying(
        self, buffers: list[Any], publish: Publish, metadata: dict[str, Any]
    ) -> tuple[dict[str, Any], list[Any]]:
        """An apply once the engine's IPython shell exists: what the function
        ``display()``s is published and kept in the reply's ``outputs``, as for execute."""
        from taskyard.engine.shell import OutputSink

        assert self._shell is not None
        sink = self._shell.sink = OutputSink(publish)
        try:
            return self._apply(buffers)
        finally:
            self._shell.sink = None
            if sink.outputs:
                metadata["outputs"] = sink.outputs

    def _bind_to_namespace(self, f: Any) -> Any:
        if isinstance(f, (dependent, _Required)):
            # The wrapped function and its check run in the namespace too, as in ipyparallel.
            f = copy.copy(f)
            f.f = self._bind_to_namespace(f.f)
            if isinstance(f, dependent):
                f.check = self._bind_to_namespace(f.check)
            return f
        if not isinstance(f, types.FunctionType):
            return f
        module = sys.modules.get(f.__module__) if f.__module__ != "__main__" else None
        if module is not None and f.__globals__ is vars(module):
            # Imported by reference from a real module: it keeps that module's globals.
            return f
        ns = self.user_ns
        for name, value in f.__globals__.items():
            if name.startswith("__"):
                continue
            if name not in ns or (name in self._filled and ns[name] is self._filled[name]):
                ns[name] = value
                self._filled[name] = value
        bound = types.FunctionType(f.__code__, ns, f.__name__, f.__defaults__, f.__closure__)
        bound.__kwdefaults__ = f.__kwdefaults__
        bound.__qualname__ = f.__qualname__
        bound.__dict__.update(f.__dict__)
        return bound

    def _execute(
        self, content: dict[str, Any], publish: Publish, metadata: dict[str, Any]
    ) -> tuple[dict[str, Any], list[Any]]:
        code = content.get("code")
        if not isinstance(code, str):
            raise TypeError("execute_request needs a 'code' string")
        silent = bool(content.get("silent"))
        shell = self._ipython_shell()
        if shell is None:
            return self._exec_plain(code, silent), []
        from taskyard.engine.shell import run_cell

        reply, sink = run_cell(shell, code, silent, publish)
        metadata["outputs"] = sink.outputs
        metadata["execute_result"] = sink.execute_result
        return reply, []

    def _ipython_shell(self) -> EngineShell | None:
        """The engine's IPython shell, built on first use; None without IPython."""
        if self._shell is None and self._has_ipython is not False:
            try:
                from taskyard.engine.shell import make_shell
            except ImportError:
                self._has_ipython = False
                return None
            self._has_ipython = True
            self._shell = make_shell(self.user_ns)
        return self._shell

    def _exec_plain(self, code: str, silent: bool) -> dict[str, Any]:
        try:
            tree = ast.parse(code, filename="<taskyard-execute>", mode="exec")
        except SyntaxError:
            if _IPYTHON_LINE.search(code):
                raise IPythonNotInstalled(
                    "this engine runs plain Python: magics (%...) and shell lines (!...) need IPython "
                    "on the engine (pip install 'taskyard[ipython]')"
                ) from None
            raise
        last_expr = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last_expr = ast.Expression(tree.body.pop().value)
        reply: dict[str, Any] = {"status": "ok"}
        try:
            exec(compile(tree, "<taskyard-execute>", "exec"), self.user_ns)  # noqa: S102 - running user code is the job
            if last_expr is not None:
                value = eval(compile(last_expr, "<taskyard-execute>", "eval"), self.user_ns)  # noqa: S307
                if value is not None and not silent:
                    reply["execute_result"] = {"data": {"text/plain": repr(value)}, "metadata": {}}
        except NameError as exc:
            if exc.name in ("display", "get_ipython") and exc.name not in self.user_ns:
                raise IPythonNotInstalled(
                    f"this engine runs plain Python: {exc.name}() needs IPython on the engine "
                    "(pip install 'taskyard[ipython]')"
                ) from exc
            raise
        return reply

    def _error_content(self, exc: BaseException) -> dict[str, Any]:
        tb = exc.__traceback__
        # Drop the kernel's own frames: the user wants their code's traceback.
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        lines = traceback.format_exception(type(exc), exc, tb)
        return error_content(type(exc).__name__, str(exc), "user", "".join(lines), engine_info=self.engine_info)


class IPythonNotInstalled(RuntimeError):
    """Raised on an engine without IPython when ``execute`` code has a magic or a ``!`` line."""
