"""Views: how work is aimed. A DirectView names its engines; a LoadBalancedView
lets the task scheduler choose.

Both share ipyparallel's flag machinery: ``block`` (wait for results, default
False), plus the load-balanced flags ``after``, ``follow``, ``timeout``,
``retries`` and ``targets``; ``set_flags`` changes them, ``temp_flags`` changes
them for a ``with`` block.
"""

from __future__ import annotations

import builtins
import collections
import concurrent.futures
import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from taskyard.client.asyncresult import AsyncMapResult, AsyncResult
from taskyard.client.remotefunction import ParallelFunction, RemoteFunction
from taskyard.protocol.catalog import TASK_FLAGS

if TYPE_CHECKING:
    from taskyard.client.client import Client
    from taskyard.client.executor import ViewExecutor


def interactive(f: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``f`` in the engine's namespace (its globals are the engine's), as if
    it had been defined in an interactive session."""
    f.__module__ = "__main__"
    return f


@interactive
def _push(ns: dict[str, Any]) -> None:
    """Assign each name of ``ns`` in the engine's namespace. A name may be any
    assignment target (``"a.b"``, ``"d['k']"``), as in ipyparallel; a function
    defined interactively (in ``__main__``) gets the engine's namespace as its
    globals, so it sees the engine's names when called there."""
    import types

    g = globals()
    for name, value in ns.items():
        if isinstance(value, types.FunctionType) and value.__module__ == "__main__":
            bound = types.FunctionType(value.__code__, g, value.__name__, value.__defaults__, value.__closure__)
            bound.__kwdefaults__ = value.__kwdefaults__
            bound.__dict__.update(value.__dict__)
            value = bound
        if name.isidentifier():
            g[name] = value
            continue
        slot = "_taskyard_push_value"
        g[slot] = value
        try:
            exec(f"{name} = {slot}", g)  # noqa: S102 - the user's own target, on the user's engine
        finally:
            g.pop(slot, None)


@interactive
def _pull(keys: Any) -> Any:
    """The values of names (or expressions, ``"a.b"``) in the engine's namespace."""
    g = globals()

    def one(key: str) -> Any:
        if key in g:
            return g[key]
        if key.isidentifier():
            raise NameError(f"name {key!r} is not defined")
        return eval(key, g)  # noqa: S307 - the user's own expression, on the user's engine

    if isinstance(keys, (list, tuple)):
        return [one(k) for k in keys]
    return one(keys)


@interactive
def _remote_import(name: str, fromlist: Sequence[str] | None, level: int) -> None:
    """``import name`` (or ``from name import ...``) into the engine's namespace."""
    ns = globals()
    module = __import__(name, fromlist=fromlist or (), level=level)
    if fromlist:
        for item in fromlist:
            ns[item] = getattr(module, item)
    else:
        ns[name.partition(".")[0]] = module


def _nothing() -> None:
    """What the engines run for ``use_cloudpickle``: they already do."""


class _SyncImports:
    """``with dv.sync_imports():``: imports in the block also happen on the engines."""

    def __init__(self, view: DirectView, local: bool, quiet: bool) -> None:
        if not local:
            raise NotImplementedError("sync_imports(local=False): remote-only imports are not supported")
        self._view = view
        self._quiet = quiet
        self._seen: set[str] = set()
        self._sent: list[AsyncResult] = []

    def __enter__(self) -> _SyncImports:
        self._frame = sys._getframe(1)  # the block's frame: only its own import statements are synced
        self._real_import = builtins.__import__
        builtins.__import__ = self._import
        return self

    def _import(
        self,
        name: str,
        globals: Any = None,  # noqa: A002 - __import__'s own parameter names
        locals: Any = None,  # noqa: A002
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> Any:
        module = self._real_import(name, globals, locals, fromlist, level)
        if sys._getframe(1) is not self._frame or level > 0:
            return module
        key = f"{name}:{','.join(fromlist or ())}"
        if key not in self._seen:
            self._seen.add(key)
            if not self._quiet:
                what = f"{', '.join(fromlist)} from {name}" if fromlist else name
                print(f"importing {what} on engine(s)")
            fromlist = list(fromlist) if fromlist else None
            self._sent.append(self._view._really_apply(_remote_import, (name, fromlist, level), {}, block=False))
        return module

    def __exit__(self, *exc: Any) -> None:
        builtins.__import__ = self._real_import
        for ar in self._sent:
            ar.get()


def _map_chunk(f: Callable[..., Any], *sequences: Sequence[Any]) -> list[Any]:
    return list(map(f, *sequences))


def _call_chunk(f: Callable[..., Any], *chunks: Sequence[Any]) -> list[Any]:
    """``f`` called once on whole chunks (``@parallel``); its items join the output."""
    return list(f(*chunks))


def distribute(seq: Sequence[Any], n: int, dist: str) -> list[Sequence[Any]]:
    """``seq`` in ``n`` parts: contiguous blocks (``dist="b"``) or round robin (``"r"``)."""
    if dist == "b":
        return partition(seq, n)
    if dist == "r":
        return [seq[i::n] for i in range(n)]
    raise ValueError(f"dist must be 'b' (blocks) or 'r' (round robin), not {dist!r}")


def partition(seq: Sequence[Any], n: int) -> list[Sequence[Any]]:
    """Split ``seq`` into ``n`` contiguous parts whose sizes differ by at most one."""
    length = len(seq)
    base, extra = divmod(length, n)
    parts = []
    start = 0
    for i in range(n):
        end = start + base + (1 if i < extra else 0)
        parts.append(seq[start:end])
        start = end
    return parts


class View:
    """What DirectView and LoadBalancedView share."""

    _flag_names: tuple[str, ...] = ("block", "track")

    def __init__(self, client: Client, targets: Any) -> None:
        self.client = client
        self.targets = targets
        #: Wait for results; a new view takes its client's ``block`` (ipyparallel's ``rc.block = True``).
        self.block = bool(getattr(client, "block", False))
        #: Track sends (``ar.sent``, ``ar.wait_for_send()``): before changing an array passed to a call.
        self.track = False
        #: msg_ids of every request sent through this view, oldest first.
        self.history: list[str] = []

    def set_flags(self, **flags: Any) -> View:
        """Set view flags, e.g. ``view.set_flags(block=True)``; returns the view,
        so ``view.set_flags(block=True).map(...)`` works in one line."""
        for name, value in flags.items():
            if name not in self._flag_names:
                raise KeyError(f"invalid flag {name!r}; valid flags: {', '.join(self._flag_names)}")
            setattr(self, name, value)
        return self

    @contextlib.contextmanager
    def temp_flags(self, **flags: Any) -> Iterator[None]:
        """Set flags for the duration of a ``with`` block."""
        saved = {name: getattr(self, name) for name in flags if name in self._flag_names}
        self.set_flags(**flags)
        try:
            yield
        finally:
            for name, value in saved.items():
                setattr(self, name, value)

    def __len__(self) -> int:
        """How many engines this view runs on (all registered ones if it names none)."""
        try:
            return len(self.client._resolve_targets(self.targets))
        except Exception:  # noqa: BLE001 - no engines (yet): nothing to run on
            return 0

    @property
    def executor(self) -> ViewExecutor:
        """A :class:`concurrent.futures.Executor` whose futures are this view's AsyncResults."""
        from taskyard.client.executor import ViewExecutor

        return ViewExecutor(self)

    def register_joblib_backend(self, name: str = "taskyard", make_default: bool = False) -> None:
        """Make this view a joblib backend: ``joblib.Parallel(backend=name)``.

        Also registered as ``"ipyparallel"`` so code written for ipyparallel runs
        unchanged. Needs joblib (``pip install taskyard[joblib]``).
        """
        from taskyard.client.joblib_backend import register_view_backend

        register_view_backend(self, name, make_default)

    # -- apply ------------------------------------------------------------

    def _really_apply(
        self,
        f: Callable[..., Any],
        args: Sequence[Any],
        kwargs: dict[str, Any],
        block: bool | None = None,
        **flags: Any,
    ) -> Any:
        raise NotImplementedError

    def apply(self, f: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call ``f(*args, **kwargs)`` remotely; blocks if the view's ``block`` flag is set."""
        return self._really_apply(f, args, kwargs)

    def apply_async(self, f: Callable[..., Any], /, *args: Any, **kwargs: Any) -> AsyncResult:
        """Call ``f(*args, **kwargs)`` remotely; returns an AsyncResult at once."""
        return self._really_apply(f, args, kwargs, block=False)  # type: ignore[no-any-return]

    def apply_sync(self, f: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call ``f(*args, **kwargs)`` remotely and return its result."""
        return self._really_apply(f, args, kwargs, block=True)

    def map(self, f: Callable[..., Any], *sequences: Sequence[Any], block: bool | None = None, **kwargs: Any) -> Any:
        """Parallel ``map(f, *sequences)``: an AsyncMapResult, or the list if blocking."""
        raise NotImplementedError

    def map_async(self, f: Callable[..., Any], *sequences: Sequence[Any], **kwargs: Any) -> AsyncMapResult:
        return self.map(f, *sequences, block=False, **kwargs)  # type: ignore[no-any-return]

    def map_sync(self, f: Callable[..., Any], *sequences: Sequence[Any], **kwargs: Any) -> list[Any]:
        return self.map(f, *sequences, block=True, **kwargs)  # type: ignore[no-any-return]

    def imap(self, f: Callable[..., Any], *sequences: Iterable[Any], **kwargs: Any) -> Iterator[Any]:
        """Like :meth:`map`, yielding results as an iterator."""
        return iter(self.map(f, *(list(s) for s in sequences), block=False, **kwargs))

    def remote(self, block: bool | None = None, **flags: Any) -> Callable[[Callable[..., Any]], RemoteFunction]:
        """Decorator: calling the function runs it remotely through this view."""

        def decorator(f: Callable[..., Any]) -> RemoteFunction:
            return RemoteFunction(self, f, block=block, **flags)

        return decorator

    def parallel(
        self, dist: str = "b", block: bool | None = None, **flags: Any
    ) -> Callable[[Callable[..., Any]], ParallelFunction]:
        """Decorator: calling the function maps it over its arguments through this view.

        ``chunksize=``, ``ordered=`` and ``return_exceptions=`` are the map's
        (as in ipyparallel, ``chunksize`` and ``ordered`` matter on load-balanced
        views only); any other keyword is a view flag set for each call.
        """

        def decorator(f: Callable[..., Any]) -> ParallelFunction:
            return ParallelFunction(self, f, dist=dist, block=block, **flags)

        return decorator

    def wait(self, jobs: Any = None, timeout: float = -1) -> bool:
        return self.client.wait(jobs, timeout)

    def get_result(
        self, indices_or_msg_ids: Any = None, block: bool | None = None, owner: bool = False, timeout: float = 10.0
    ) -> AsyncResult:
        """:meth:`Client.get_result`, with integers indexing *this view's* :attr:`history`
        (``-1``, the default, is the last request this view sent), as in ipyparallel."""
        if indices_or_msg_ids is None:
            indices_or_msg_ids = -1
        if isinstance(indices_or_msg_ids, int):
            indices_or_msg_ids = self._history_at(indices_or_msg_ids)
        elif isinstance(indices_or_msg_ids, (list, tuple)):
            indices_or_msg_ids = [self._history_at(i) if isinstance(i, int) else i for i in indices_or_msg_ids]
        return self.client.get_result(indices_or_msg_ids, block=block, timeout=timeout, owner=owner)

    def _history_at(self, index: int) -> str:
        try:
            return self.history[index]
        except IndexError:
            raise IndexError(f"this view has sent {len(self.history)} request(s): no index {index}") from None

    def abort(self, jobs: Any = None, targets: Any = None, block: bool | None = None) -> Any:
        return self.client.abort(
            jobs, targets=targets if targets is not None else self._abort_targets(), block=bool(block)
        )

    def _abort_targets(self) -> Any:
        return self.targets

    def _finish(self, ar: AsyncResult, block: bool | None) -> Any:
        self.history.extend(ar.msg_ids)
        block = self.block if block is None else block
        return ar.get() if block else ar


class DirectView(View):
    """Work aimed at chosen engines: every call runs on every target.

    ``rc[0]``, ``rc[:]``, ``rc[::2]`` or ``rc.direct_view("all")`` make one.
    With a single integer target, results are single values; otherwise lists,
    one item per engine.
    """

    def __repr__(self) -> str:
        return f"<DirectView {self.targets}>"

    def activate(self, suffix: str = "") -> Any:
        """Register the ``%px{suffix}``, ``%%px{suffix}``, ``%pxresult{suffix}``,
        ``%pxconfig{suffix}`` and ``%autopx{suffix}`` magics for this view in the
        running IPython (the view becomes blocking); warns outside IPython.

        ``rc[::2].activate("_even")`` gives ``%px_even`` for the even engines.
        """
        import warnings

        from taskyard.client.magics import activate

        magics = activate(self, suffix)
        if magics is None:
            warnings.warn("the parallel magics (%px, ...) only work inside IPython", stacklevel=2)
        return magics

    def _targets(self, targets: Any = None) -> tuple[list[int], bool]:
        targets = self.targets if targets is None else targets
        engine_ids = self.client._resolve_targets(targets)
        return engine_ids, isinstance(targets, int)

    def _really_apply(
        self,
        f: Callable[..., Any],
        args: Sequence[Any],
        kwargs: dict[str, Any],
        block: bool | None = None,
        targets: Any = None,
        **flags: Any,
    ) -> Any:
        track = flags.pop("track", None)
        if flags:
            raise TypeError(f"unexpected flags for a DirectView: {', '.join(flags)}")
        engine_ids, is_scalar = self._targets(targets)
        track = self.track if track is None else track
        states = [self.client.send_apply(f, args, kwargs, engine_id=engine_id, track=track) for engine_id in engine_ids]
        ar = AsyncResult(self.client, states, getattr(f, "__name__", "f"), engine_ids, is_scalar)
        return self._finish(ar, block)

    def map(
        self,
        f: Callable[..., Any],
        *sequences: Sequence[Any],
        block: bool | None = None,
        return_exceptions: bool = False,
        _per_chunk: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Parallel ``map``: each engine gets one contiguous part of the sequences.

        With ``return_exceptions=True`` a failed part gives its error in place
        of each of its items instead of raising.
        """
        if not sequences:
            raise TypeError("map needs at least one sequence")
        if kwargs:
            raise TypeError(f"unexpected arguments for DirectView.map: {', '.join(kwargs)}")
        engine_ids, _ = self._targets()
        sequences = tuple(list(s) if not hasattr(s, "__getitem__") else s for s in sequences)
        length = min(len(s) for s in sequences)
        n = max(1, min(len(engine_ids), length))
        chunks = [partition(s[:length], n) for s in sequences]
        states = []
        for i, engine_id in enumerate(engine_ids[:n]):
            runner = _call_chunk if _per_chunk else _map_chunk
            states.append(self.client.send_apply(runner, (f, *(c[i] for c in chunks)), engine_id=engine_id))
        sizes = [len(part) for part in chunks[0][: len(states)]]
        ar = AsyncMapResult(
            self.client, states, getattr(f, "__name__", "f"), return_exceptions=return_exceptions, chunk_sizes=sizes
        )
        return self._finish(ar, block)

    def use_cloudpickle(self) -> Any:
        """A no-op kept for ipyparallel code: taskyard always serializes with
        cloudpickle (closures, lambdas, interactively defined classes), here and
        on the engines. Returns what ``apply`` does (None per engine if blocking)."""
        return self._really_apply(_nothing, (), {})

    def use_pickle(self) -> Any:
        """A no-op like :meth:`use_cloudpickle`: cloudpickle reads and writes
        everything plain pickle does, so nothing needs switching back."""
        return self._really_apply(_nothing, (), {})

    def use_dill(self) -> Any:
        """Not supported: taskyard serializes with cloudpickle, which covers what
        code usually wanted dill for (closures, lambdas, interactive classes)."""
        raise NotImplementedError(
            "taskyard always serializes with cloudpickle (closures, lambdas and interactively "
            "defined classes work); dill is not supported: drop the use_dill() call"
        )

    @property
    def importer(self) -> _SyncImports:
        """``with dv.importer: import numpy``: :meth:`sync_imports` as a property, as in ipyparallel."""
        return self.sync_imports(True)

    def sync_imports(self, local: bool = True, quiet: bool = False) -> _SyncImports:
        """A context manager: each ``import`` in its block runs here and on every engine.

        >>> with dv.sync_imports():       # doctest: +SKIP
        ...     import numpy
        importing numpy on engine(s)

        Only the block's own import statements are sent (not what the imported
        modules import); ``quiet=True`` prints nothing. Leaving the block waits for
        the engines' imports and raises if one failed.
        """
        return _SyncImports(self, local, quiet)

    def execute(self, code: str, silent: bool = True, targets: Any = None, block: bool | None = None) -> Any:
        """Run a string of code in each engine's namespace.

        Returns the AsyncResult, blocking or not, as ipyparallel's does; with
        ``block`` it has finished (``ar.stdout``, ``ar.execute_result``, ...) and
        an engine's error is raised. ``ar.get()`` gives the ExecuteReplies.
        """
        engine_ids, is_scalar = self._targets(targets)
        states = [self.client.send_execute(code, engine_id, silent) for engine_id in engine_ids]
        ar = AsyncResult(self.client, states, "execute", engine_ids, is_scalar)
        self._finish(ar, block)
        return ar

    def run(self, filename: str, targets: Any = None, block: bool | None = None) -> Any:
        """Run a local Python file's code on each engine."""
        with open(filename) as f:
            code = f.read()
        return self.execute(code, targets=targets, block=block)

    def push(self, ns: dict[str, Any], targets: Any = None, block: bool | None = None, track: bool | None = None) -> Any:
        """Copy the names and values of ``ns`` into each engine's namespace.

        ``track=True``: the AsyncResult's ``sent`` / ``wait_for_send()`` follow
        zmq's sending of the values' buffers (ipyparallel's MessageTracker).
        """
        if not isinstance(ns, dict):
            raise TypeError(f"push needs a dict, not {type(ns).__name__}")
        bad = [key for key in ns if not isinstance(key, str)]
        if bad:
            raise TypeError(f"push needs names (str) as keys, not {bad[0]!r}")
        return self._really_apply(_push, (ns,), {}, block=block, targets=targets, track=track)

    def pull(self, names: str | Sequence[str], targets: Any = None, block: bool | None = None) -> Any:
        """Fetch ``names`` from each engine's namespace."""
        names = names if isinstance(names, str) else list(names)
        return self._really_apply(_pull, (names,), {}, block=block, targets=targets)

    def update(self, ns: dict[str, Any]) -> Any:
        """Same as :meth:`push` (a dict's ``update``)."""
        return self.push(ns)

    def get(self, key_or_keys: str | Sequence[str]) -> Any:
        """Same as :meth:`pull`, blocking."""
        return self.pull(key_or_keys, block=True)

    def scatter(
        self,
        key: str,
        seq: Sequence[Any],
        dist: str = "b",
        flatten: bool = False,
        targets: Any = None,
        block: bool | None = None,
        track: bool | None = None,
    ) -> Any:
        """Split ``seq`` across the engines, as ``key`` in each namespace.

        ``dist="b"`` gives each engine a contiguous block, ``"r"`` deals items
        round robin. With ``flatten=True`` an engine whose part is one item
        gets the item itself rather than a one-item list.
        """
        engine_ids, _ = self._targets(targets)
        parts = distribute(seq, len(engine_ids), dist)
        track = self.track if track is None else track
        states = []
        for engine_id, part in zip(engine_ids, parts, strict=True):
            value = part[0] if flatten and len(part) == 1 else part
            states.append(self.client.send_apply(_push, ({key: value},), engine_id=engine_id, track=track))
        return self._finish(AsyncResult(self.client, states, "scatter", engine_ids), block)

    def gather(self, key: str, dist: str = "b", targets: Any = None, block: bool | None = None) -> Any:
        """Join ``key`` from each engine, the inverse of :meth:`scatter` with the same ``dist``."""
        if dist not in ("b", "r"):
            raise ValueError(f"dist must be 'b' (blocks) or 'r' (round robin), not {dist!r}")
        engine_ids, _ = self._targets(targets)
        states = [self.client.send_apply(_pull, (key,), engine_id=engine_id) for engine_id in engine_ids]
        ar = _GatherResult(self.client, states, round_robin=dist == "r")
        return self._finish(ar, block)

    def __getitem__(self, key: str) -> Any:
        return self.pull(key, block=True)

    def __setitem__(self, key: str, value: Any) -> None:
        self.push({key: value}, block=True)

    def clear(self, targets: Any = None, block: bool = True) -> Any:
        """Reset the engines' namespaces."""
        return self.client.clear(targets if targets is not None else self.targets, block=block)

    def shutdown(self, targets: Any = None, hub: bool = False, block: bool = True) -> None:
        self.client.shutdown(targets if targets is not None else self.targets, hub=hub, block=block)


class _GatherResult(AsyncMapResult):
    """``gather``'s result: an AsyncMapResult (as in ipyparallel) joining the engines' parts."""

    def __init__(self, client: Client, states: Sequence[Any], round_robin: bool = False) -> None:
        self._round_robin = round_robin  # before the results can arrive
        super().__init__(client, states, "gather")

    def _chunk_of(self, index: int, state: Any) -> list[Any]:
        value = state.value
        if state.error is None and not isinstance(value, (list, tuple)) and not hasattr(value, "__len__"):
            return [value]
        return super()._chunk_of(index, state)

    def __iter__(self) -> Iterator[Any]:
        if self._round_robin:
            yield from self.get()
            return
        yield from super().__iter__()

    def _collect(self) -> Any:
        values = [s.value for s in self._states]
        arrays = bool(values) and all(type(v).__module__ == "numpy" and hasattr(v, "ndim") for v in values)
        if arrays and not self._round_robin:
            import numpy

            return numpy.concatenate(values)  # scattered arrays come back as one array, as in ipyparallel
        parts = [list(v) if isinstance(v, (list, tuple)) or arrays else [v] for v in values]
        if not self._round_robin:
            return [item for part in parts for item in part]
        out: list[Any] = []
        for i in range(max((len(p) for p in parts), default=0)):
            out.extend(p[i] for p in parts if i < len(p))
        if arrays:
            import numpy

            return numpy.array(out)
        return out


class LazyMapIterator:
    """The iterator :meth:`LoadBalancedView.imap` returns; ``cancel()`` stops reading inputs.

    It sends a task per input item, keeping at most ``limit`` unfinished (0: no
    limit), and tops up each time a result is taken.
    """

    def __init__(
        self,
        submit: Callable[[tuple[Any, ...]], AsyncResult],
        inputs: Iterator[tuple[Any, ...]],
        limit: int,
        ordered: bool,
        return_exceptions: bool,
    ) -> None:
        self._submit = submit
        self._inputs: Iterator[tuple[Any, ...]] | None = inputs
        self._limit = limit
        self._ordered = ordered
        self._return_exceptions = return_exceptions
        self._pending: collections.deque[AsyncResult] = collections.deque()
        self._top_up()

    def _in_flight(self) -> int:
        return sum(1 for ar in self._pending if not ar.done())

    def _top_up(self) -> None:
        while self._inputs is not None and (self._limit == 0 or self._in_flight() < self._limit):
            try:
                args = next(self._inputs)
            except StopIteration:
                self._inputs = None
                return
            self._pending.append(self._submit(args))

    def cancel(self) -> None:
        """Read no more inputs; results of tasks already sent are still yielded."""
        self._inputs = None

    def send_rest(self) -> None:
        """Send a task for every input not read yet, ignoring the limit (an executor's shutdown)."""
        limit, self._limit = self._limit, 0
        try:
            self._top_up()
        finally:
            self._limit = limit

    def __iter__(self) -> LazyMapIterator:
        return self

    def __next__(self) -> Any:
        self._top_up()
        if not self._pending:
            raise StopIteration
        if self._ordered:
            ar = self._pending.popleft()
        else:
            done, _ = concurrent.futures.wait(self._pending, return_when=concurrent.futures.FIRST_COMPLETED)
            ar = next(a for a in self._pending if a in done)
            self._pending.remove(ar)
        value = ar.get(return_exceptions=self._return_exceptions)
        self._top_up()
        return value


class LoadBalancedView(View):
    """Work the task scheduler places on whichever engine its scheme picks.

    Flags: ``block``, ``after``/``follow`` (dependencies: msg_ids, AsyncResults
    or :class:`~taskyard.Dependency`), ``timeout`` (seconds a task may wait for
    its dependencies and an engine), ``retries`` (resubmissions after failure),
    ``targets`` (restrict to some engines).
    """

    _flag_names = ("block", "track", *TASK_FLAGS)

    def __init__(self, client: Client, targets: Any = None) -> None:
        super().__init__(client, targets)
        self.after: Any = None
        self.follow: Any = None
        self.timeout: float | None = None
        self.retries = 0

    def __repr__(self) -> str:
        return f"<LoadBalancedView scheme={self.client.task_scheme}>"

    def _abort_targets(self) -> Any:
        return None

    def _task_metadata(self, flags: dict[str, Any]) -> dict[str, Any]:
        from taskyard.client.taskflags import task_metadata

        if not flags:
            return task_metadata(self.client, self.after, self.follow, self.timeout, self.retries, self.targets)
        values = {name: flags.get(name, getattr(self, name)) for name in TASK_FLAGS}
        return task_metadata(self.client, **values)

    def _really_apply(
        self,
        f: Callable[..., Any],
        args: Sequence[Any],
        kwargs: dict[str, Any],
        block: bool | None = None,
        **flags: Any,
    ) -> Any:
        unknown = set(flags) - set(self._flag_names)
        if unknown:
            raise TypeError(f"unexpected flags: {', '.join(sorted(unknown))}")
        metadata = self._task_metadata(flags)
        state = self.client.send_apply(f, args, kwargs, metadata=metadata, track=flags.get("track", self.track))
        ar = AsyncResult(self.client, [state], getattr(f, "__name__", "f"), None, is_scalar=True)
        return self._finish(ar, block)

    def map(
        self,
        f: Callable[..., Any],
        *sequences: Sequence[Any],
        block: bool | None = None,
        chunksize: int = 1,
        ordered: bool = True,
        return_exceptions: bool = False,
        _per_chunk: bool = False,
        **flags: Any,
    ) -> Any:
        """Parallel ``map`` in chunks of ``chunksize`` items, each chunk one task.

        ``ordered=False`` makes iteration yield chunks as they finish;
        ``return_exceptions=True`` puts a failed chunk's error in place of
        each of its items instead of raising.
        """
        if not sequences:
            raise TypeError("map needs at least one sequence")
        unknown = set(flags) - set(self._flag_names)
        if unknown:
            raise TypeError(f"unexpected flags: {', '.join(sorted(unknown))}")
        if chunksize < 1:
            raise ValueError(f"chunksize must be at least 1, not {chunksize}")
        sequences = tuple(s if hasattr(s, "__getitem__") and hasattr(s, "__len__") else list(s) for s in sequences)
        length = min(len(s) for s in sequences)
        metadata = self._task_metadata(flags)
        states = []
        sizes = []
        for start in range(0, length, chunksize):
            end = min(start + chunksize, length)
            chunk_args = (f, *(s[start:end] for s in sequences))
            runner = _call_chunk if _per_chunk else _map_chunk
            states.append(self.client.send_apply(runner, chunk_args, metadata=metadata))
            sizes.append(end - start)
        ar = AsyncMapResult(
            self.client,
            states,
            getattr(f, "__name__", "f"),
            ordered=ordered,
            return_exceptions=return_exceptions,
            chunk_sizes=sizes,
        )
        return self._finish(ar, block)

    def imap(
        self,
        f: Callable[..., Any],
        *sequences: Iterable[Any],
        ordered: bool = True,
        max_outstanding: int | str = "auto",
        return_exceptions: bool = False,
        **flags: Any,
    ) -> LazyMapIterator:
        """A lazy ``map``: one task per item, reading the inputs only as results are taken.

        Works on endless inputs (``itertools.count()``). At most
        ``max_outstanding`` tasks are in flight (``"auto"``: one per engine;
        0: send everything at once); ``ordered=False`` yields results as they
        finish; ``return_exceptions=True`` yields errors instead of raising.
        ``cancel()`` on the iterator stops reading the inputs.
        """
        if not sequences:
            raise TypeError("imap needs at least one sequence")
        unknown = set(flags) - set(self._flag_names)
        if unknown:
            raise TypeError(f"unexpected flags: {', '.join(sorted(unknown))}")
        limit = max(1, len(self)) if max_outstanding == "auto" else int(max_outstanding)
        if limit < 0:
            raise ValueError(f"max_outstanding must be 0 or more, not {max_outstanding}")

        def submit(args: tuple[Any, ...]) -> AsyncResult:
            return self._really_apply(f, args, {}, block=False, **flags)  # type: ignore[no-any-return]

        return LazyMapIterator(submit, zip(*sequences, strict=False), limit, ordered, return_exceptions)
