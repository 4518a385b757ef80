"""The client: a connection to one controller.

Theory of operation
-------------------
All of the client's sockets belong to one background IO thread, so the client
can be used from any thread, from a terminal or from inside a notebook's running
event loop. A call such as ``view.apply_async`` does its expensive work (pickling,
JSON, signing) on the caller's thread, registers a :class:`MessageState` for the
new msg_id and hands the ready frames to the IO thread through a queue plus a
wake-up socket. The IO thread sends them, parses replies and fills the states;
:class:`AsyncResult` objects watching those states resolve.

The bookkeeping of pending requests is a sans-IO core,
:class:`~taskyard.client.request_book.RequestBookState`: every event that ends
requests (a reply, even one that cannot be decoded; an engine's death, learnt
from the controller's notifications; a lost controller; ``close``; the IO thread
dying) goes through it and resolves each ended request's AsyncResult, with a
typed error where it failed. No request is dropped without an outcome.

While requests are pending the IO thread watches the controller
(:mod:`taskyard.client.controller_watch`): after :attr:`Client.probe_period`
seconds of silence it sends a ``ping_request``; after
:attr:`Client.controller_timeout` seconds without a word every pending request
fails with :class:`~taskyard.error.ControllerLost`.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import zmq

if TYPE_CHECKING:
    from taskyard.client.view import DirectView

from taskyard.client import connect
from taskyard.client.asyncresult import AsyncResult
from taskyard.client.controller_watch import ControllerWatchState
from taskyard.client.io_thread import ClientIO
from taskyard.client.message_state import MessageState, SendTracker
from taskyard.client.outputs import record_iopub
from taskyard.client.request_book import Outcome, RequestBookState
from taskyard.dependency import _Required, dependent
from taskyard.error import (
    ClientClosed,
    NoEnginesRegistered,
    TaskyardError,
    TimeoutError,
)
from taskyard.protocol import connection
from taskyard.protocol.serialize import pack_apply
from taskyard.protocol.session import Message, Session

#: The requests :attr:`Client.history` records (ipyparallel's: the ones that run user code).
_HISTORY_TYPES = frozenset({"apply_request", "execute_request"})

log = logging.getLogger("taskyard.client")

#: The channels the client sends on, in the order of ``Client._sockets``.
CHANNELS = ("mux", "control", "task", "registration")


class Client:
    """A connection to a taskyard controller.

    Parameters
    ----------
    url_file : str, optional
        Path of ``ipcontroller-client.json``. Default: the profile's.
    profile : str
        Profile name (``$TASKYARD_DIR/profile_<profile>``), default ``"default"``.
    profile_dir : str, optional
        Profile directory (overrides ``profile``).
    cluster_id : str
        The cluster id the controller was started with.
    timeout : float
        Seconds to wait for the connection file and the controller's answer.
    connection_info : str or dict, optional
        The first positional argument: a connection file's path, or its
        contents as a dict.
    cluster : Cluster, optional
        Connect to this :class:`~taskyard.Cluster`.
    context : zmq.Context, optional
        The zmq context for the client's sockets (default: a new one, closed with the client).
    debug : bool
        Log the client's messages at DEBUG level.

    Notes
    -----
    Any other keyword (ipyparallel's ``sshserver``, ``paramiko``, ...) raises
    :class:`~taskyard.error.UnsupportedOption` naming it.

    Examples
    --------
    >>> import taskyard as ty                 # doctest: +SKIP
    >>> rc = ty.Client()                       # doctest: +SKIP
    >>> rc.wait_for_engines(2, timeout=30)     # doctest: +SKIP
    >>> rc[:].apply_sync(lambda: 42)           # doctest: +SKIP
    [42, 42]
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Client:
        # Defined (not inherited) so that patching ``Client.__new__`` in a test,
        # as ipyparallel's own tests do, is undone cleanly: deleting a patched
        # ``__new__`` that was inherited leaves CPython calling object.__new__
        # with the arguments, and every later Client() raises TypeError.
        return super().__new__(cls)

    def __init__(
        self,
        connection_info: str | os.PathLike[str] | dict[str, Any] | None = None,
        *,
        url_file: str | os.PathLike[str] | None = None,
        profile: str | None = None,
        profile_dir: str | os.PathLike[str] | None = None,
        cluster_id: str | None = None,
        cluster: Any = None,
        context: zmq.Context[Any] | None = None,
        debug: bool = False,
        timeout: float = 10.0,
        **extra_args: Any,
    ) -> None:
        if "_io" in self.__dict__:
            return  # a connected Client handed back by a patched __new__ keeps its connection
        path, self.connection_info = connect.resolve(
            connection_info, url_file, profile, profile_dir, cluster_id, cluster, timeout, extra_args
        )
        self.url_file = path
        #: The ``block`` flag new views start with (ipyparallel's ``rc.block = True``).
        self.block = False
        #: The :class:`~taskyard.Cluster` this client was made by or for, if any: held
        #: here so that ``rc = ty.Cluster(n=4).start_and_connect_sync()`` keeps it running.
        self.cluster: Any = cluster
        self.debug = debug
        if debug:
            log.setLevel(logging.DEBUG)
        info = self.connection_info
        self.session = Session(info["key"], info.get("signature_scheme", "hmac-sha256"), username="client")
        self.features: list[str] = list(info.get("features", []))
        self.task_scheme: str = str(info.get("task_scheme", ""))
        self.state_lock = threading.Lock()
        #: The pending requests (see the module's theory of operation); add() under state_lock.
        self._book = RequestBookState()
        self._watch = ControllerWatchState()
        self._engines: dict[int, str] = {}
        self._engines_changed = threading.Condition()
        self._closed = False
        self._own_context = context is None
        self.context = zmq.Context() if context is None else context
        #: The IO thread, which owns every socket (taskyard.client.io_thread).
        self._io = ClientIO(self)
        error = self._io.start(timeout)
        if error is not None:
            self.close()
            raise error
        try:
            reply = self._query("connection_request", {}, timeout=max(timeout, 1.0))
        except TimeoutError:
            # The IO thread holds a reference to us: without this nothing would ever stop it.
            self.close()
            raise TimeoutError(
                f"no answer from the controller at {connection.url(info, 'registration')} within "
                f"{max(timeout, 1.0):.0f} s: is it running, and is {path} its current connection file?"
            ) from None
        except BaseException:
            self.close()
            raise
        for key, uuid in reply.content.get("engines", {}).items():
            self._engines[int(key)] = uuid
        self._activate_if_first()

    def _activate_if_first(self) -> None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
        if shell is not None and getattr(shell, "_taskyard_magics", None) is None:
            self.activate()

    def activate(self, targets: Any = "all", suffix: str = "") -> DirectView:
        """Register the ``%px`` magics (``%px{suffix}``, ...) for ``targets`` in IPython.

        Returns the (blocking) DirectView they run on, as ipyparallel's does:
        ``rc.activate(0, "0").targets == 0``.
        """
        from taskyard.client.magics import activate

        view: DirectView = self.direct_view(targets)
        activate(view, suffix)
        return view

    # -- watching the controller ------------------------------------------

    @property
    def controller_timeout(self) -> float:
        """Seconds of silence from the controller, while results are pending, after which
        they fail with :class:`~taskyard.error.ControllerLost` (default 10)."""
        return self._watch.timeout

    @controller_timeout.setter
    def controller_timeout(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError(f"controller_timeout must be a positive number of seconds, not {seconds!r}")
        self._watch.timeout = float(seconds)

    @property
    def probe_period(self) -> float:
        """Seconds of silence from the controller, while results are pending, before the
        client sends it a liveness probe, and between probes (default 2)."""
        return self._watch.probe_period

    @probe_period.setter
    def probe_period(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError(f"probe_period must be a positive number of seconds, not {seconds!r}")
        self._watch.probe_period = float(seconds)

    # -- engines ----------------------------------------------------------

    @property
    def ids(self) -> list[int]:
        """The ids of the engines registered now, sorted."""
        return sorted(self._engines)

    def engine_uuid(self, engine_id: int) -> str:
        try:
            return self._engines[engine_id]
        except KeyError:
            raise NoEnginesRegistered(f"no engine {engine_id} is registered (registered: {self.ids})") from None

    def wait_for_engines(
        self, n: int | None = None, timeout: float = -1, block: bool = True, interactive: bool | None = None
    ) -> Any:
        """Wait until at least ``n`` engines are registered.

        With ``block=False``, returns at once a :class:`concurrent.futures.Future` that
        resolves (to ``None``) when they are there, or fails with :class:`TimeoutError`.

        Parameters
        ----------
        n : int
            How many engines to wait for (default: one).
        timeout : float
            Seconds to wait; negative or None waits forever.
        interactive : bool, optional
            Show a progress bar (default: when running in a terminal/notebook).
        """
        if not block:
            future: concurrent.futures.Future[None] = concurrent.futures.Future()

            def wait_in_background() -> None:
                try:
                    self.wait_for_engines(n, timeout=timeout, interactive=False)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(None)

            threading.Thread(target=wait_in_background, name="wait_for_engines", daemon=True).start()
            return future
        n = 1 if n is None else n
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        bar = _progress_bar(n, "engines", interactive)
        try:
            last_query = time.monotonic()
            while len(self._engines) < n:
                if bar is not None:
                    bar.update(min(len(self._engines), n) - bar.n)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"{len(self._engines)} of {n} engines registered after {timeout} s")
                with self._engines_changed:
                    self._engines_changed.wait(0.2 if remaining is None else min(0.2, remaining))
                if time.monotonic() - last_query > 0.5:
                    # Notifications can be missed while a subscription connects; ask the hub too.
                    self._refresh_engines()
                    last_query = time.monotonic()
            if bar is not None:
                bar.update(n - bar.n)
        finally:
            if bar is not None:
                bar.close()

    def engine_pids(self, timeout: float = 5.0) -> dict[int, int]:
        """Each live engine's process id, as the engine reported it when it registered."""
        reply = self._query("connection_request", {}, timeout=timeout)
        pids = reply.content.get("pids", {})
        return {int(k): int(v) for k, v in pids.items() if isinstance(v, int)}

    def _refresh_engines(self) -> None:
        try:
            reply = self._query("connection_request", {}, timeout=5)
        except TimeoutError:
            return
        engines = {int(k): v for k, v in reply.content.get("engines", {}).items()}
        with self._engines_changed:
            self._engines.update(engines)
            self._engines_changed.notify_all()

    # -- views ------------------------------------------------------------

    def _pin_targets(self, targets: Any) -> Any:
        """What a new view keeps as its targets: negative ids and slices are
        resolved now, against the engines registered now (as in ipyparallel:
        ``rc.direct_view(-1).targets`` is the last engine's id); ``"all"``/None stay
        lazy, following engines as they come and go."""
        if targets is None or (isinstance(targets, str) and targets == "all"):
            return targets
        if isinstance(targets, int) and targets < 0:
            return self._resolve_targets(targets)[0]
        if isinstance(targets, slice):
            return self._resolve_targets(targets)
        if isinstance(targets, (list, tuple, range)):
            ids = self.ids
            return [ids[t] if t < 0 else int(t) for t in targets]
        return targets

    def _resolve_targets(self, targets: Any) -> list[int]:
        ids = self.ids
        if targets is None or (isinstance(targets, str) and targets == "all"):
            chosen = ids
        elif isinstance(targets, int):
            chosen = [ids[targets] if targets < 0 else targets]
        elif isinstance(targets, slice):
            chosen = ids[targets]
        else:
            chosen = [int(t) for t in targets]
        if not chosen:
            raise NoEnginesRegistered("no engines registered; start some with `ipengine` or `ipcluster start`")
        missing = [t for t in chosen if t not in self._engines]
        if missing:
            raise NoEnginesRegistered(f"engine(s) {missing} not registered (registered: {ids})")
        return chosen

    def __getitem__(self, key: int | slice | Sequence[int]) -> Any:
        """``rc[0]``, ``rc[:]``, ``rc[::2]``, ``rc[[0, 2]]``: a DirectView."""
        from taskyard.client.view import DirectView

        if isinstance(key, int):
            return DirectView(self, self._resolve_targets(key)[0])
        return DirectView(self, self._resolve_targets(key))

    def direct_view(self, targets: Any = "all", **flags: Any) -> Any:
        """A DirectView on ``targets`` (``"all"`` follows engines as they come and go).

        Keyword arguments are view flags, set on the new view: ``direct_view(block=True)``.
        """
        from taskyard.client.view import DirectView

        view = DirectView(self, self._pin_targets(targets))
        if flags:
            view.set_flags(**flags)
        return view

    def load_balanced_view(self, targets: Any = None, **flags: Any) -> Any:
        """A LoadBalancedView, optionally restricted to some engines.

        Keyword arguments are view flags, set on the new view: ``load_balanced_view(retries=2)``.
        """
        from taskyard.client.view import LoadBalancedView

        if isinstance(targets, str) and targets == "all":
            targets = None
        targets = self._pin_targets(targets)
        view = LoadBalancedView(self, [targets] if isinstance(targets, int) else targets)
        if flags:
            view.set_flags(**flags)
        return view

    def __iter__(self) -> Iterator[Any]:
        """One DirectView per registered engine, in id order (as ipyparallel's)."""
        for engine_id in self.ids:
            yield self.direct_view(engine_id)

    def __len__(self) -> int:
        return len(self._engines)

    # -- sending ----------------------------------------------------------

    def _enqueue(self, channel: str, frames: list[Any], tracker: SendTracker | None = None) -> None:
        if self._closed:
            raise ClientClosed("the client is closed")
        self._io.enqueue(channel, frames, tracker)

    def send_request(
        self,
        channel: str,
        msg_type: str,
        content: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[Any] | None = None,
        idents: Sequence[bytes] = (),
        engine_id: int | None = None,
        track: bool = False,
    ) -> MessageState:
        """Sign and queue one request; returns the state its reply will fill.

        With ``track=True`` the state's ``tracker`` tells when the frames have left
        the process (zero-copy buffers may be changed safely from then on).
        """
        msg = self.session.msg(msg_type, content, metadata=metadata, buffers=buffers)
        state = MessageState(msg.msg_id, msg.header["date"], engine_id)
        frames = self.session.serialize(msg, idents)
        if track:
            state.tracker = SendTracker()
        with self.state_lock:
            self._book.add(state)  # raises ClientClosed once closed
            if msg_type in _HISTORY_TYPES:
                self.history.append(msg.msg_id)
        # if the client closes meanwhile, close() ends this state with the rest
        self._enqueue(channel, frames, state.tracker)
        return state

    @property
    def history(self) -> list[str]:
        """The msg_ids of the apply and execute requests this client sent, oldest first.

        ``rc.get_result(-1)`` is the result of the last one.
        """
        # made on first use, so that __init__ stays as it is
        return self.__dict__.setdefault("_history", [])  # type: ignore[no-any-return]

    def send_apply(
        self,
        f: Any,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        engine_id: int | None = None,
        metadata: dict[str, Any] | None = None,
        track: bool = False,
    ) -> MessageState:
        """An apply request, to one engine (direct) or to the task scheduler."""
        if not callable(f):
            raise TypeError(f"apply needs a callable, not {type(f).__name__}")
        buffers = pack_apply(f, args, kwargs)
        if engine_id is None:
            if "task" not in self.connection_info:
                raise TaskyardError("this controller has no task scheduler")
            if "functional" not in self.features and isinstance(f, (dependent, _Required)):
                raise TaskyardError(
                    f"the controller's task scheduler ({self.task_scheme}) does not support functional "
                    "dependencies (@require/@depend); restart it with another --scheme (e.g. leastload)"
                )
            return self.send_request("task", "apply_request", {}, metadata or {}, buffers, track=track)
        uuid = self.engine_uuid(engine_id)
        md = {**(metadata or {}), "to": uuid}
        return self.send_request(
            "mux", "apply_request", {}, md, buffers, idents=[uuid.encode()], engine_id=engine_id, track=track
        )

    def send_execute(self, code: str, engine_id: int, silent: bool = False) -> MessageState:
        uuid = self.engine_uuid(engine_id)
        return self.send_request(
            "mux",
            "execute_request",
            {"code": code, "silent": silent},
            {"to": uuid},
            idents=[uuid.encode()],
            engine_id=engine_id,
        )

    def apply(
        self,
        f: Any,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        block: bool = False,
        targets: Any = None,
        after: Any = None,
        follow: Any = None,
        timeout: float | None = None,
        retries: int = 0,
        track: bool = False,
    ) -> Any:
        """Call ``f(*args, **kwargs)`` remotely.

        With ``targets=None`` the task is load-balanced (and may carry ``after``,
        ``follow``, ``timeout`` and ``retries``); otherwise it runs on each of
        ``targets``. ``track=True`` tracks the send (``ar.wait_for_send()``).
        Returns an AsyncResult, or the result if ``block``.
        """
        if targets is None:
            view: Any = self.load_balanced_view()
            flags = {"after": after, "follow": follow, "timeout": timeout, "retries": retries, "track": track}
        else:
            if after is not None or follow is not None or timeout or retries:
                raise ValueError("after/follow/timeout/retries apply to load-balanced tasks (targets=None)")
            view = self.direct_view(targets if not isinstance(targets, int) else targets)
            flags = {"track": track}
        with view.temp_flags(**flags):
            ar = view.apply_async(f, *args, **(kwargs or {}))
        return ar.get() if block else ar

    def _query(self, msg_type: str, content: dict[str, Any], timeout: float = 10.0) -> Message:
        """A request to the hub; returns the reply message or raises."""
        state = self.send_request("registration", msg_type, content)
        ar = AsyncResult(self, [state], msg_type, is_scalar=True)
        try:
            reply = ar.get(timeout)
        except TimeoutError:
            error = TimeoutError(f"the controller did not answer {msg_type} within {timeout} s")
            with self.state_lock:
                outcome = self._book.on_given_up(state.msg_id, error)
            if outcome is not None:
                self._finish(*outcome)
            raise error from None
        if reply.content.get("status") != "ok":
            raise TaskyardError(f"{msg_type} failed: {reply.content.get('evalue')}")
        return reply  # type: ignore[no-any-return]

    # -- ending requests (on the IO thread, or closing) ---------------------

    def _book_event(self, event: Callable[[], list[Outcome]]) -> list[Outcome]:
        with self.state_lock:
            return event()

    def _end_requests(self, outcomes: Iterable[Outcome]) -> None:
        for state, value, error in outcomes:
            self._finish(state, value, error)

    def _controller_lost(self, reason: str) -> None:
        outcomes = self._book_event(lambda: self._book.on_controller_lost(reason))
        if outcomes:
            log.error("%s: %d pending request(s) failed", reason, len(outcomes))
        self._end_requests(outcomes)

    def _end_everything(self, reason: str) -> None:
        """Close the book: every pending request and every unsent tracked request fails."""
        self._end_requests(self._book_event(lambda: self._book.close(reason)))
        self._io.fail_unsent(ClientClosed(reason))

    def _finish(self, state: MessageState, value: Any = None, error: BaseException | None = None) -> None:
        with self.state_lock:
            listeners = state.finish(value, error)
        # Outside the lock: a listener may be user code that sends more requests.
        for listener in listeners:
            listener(state)

    def _on_iopub(self, msg: Message) -> None:
        parent_id = msg.parent_id
        with self.state_lock:
            state = self._book.get(parent_id)
        if state is not None:
            record_iopub(state.metadata, msg.msg_type, msg.content, msg.metadata)

    def _on_notification(self, msg: Message) -> None:
        content = msg.content
        if msg.msg_type == "registration_notification":
            with self._engines_changed:
                self._engines[int(content["id"])] = str(content["uuid"])
                self._engines_changed.notify_all()
        elif msg.msg_type == "unregistration_notification":
            engine_id = int(content["id"])
            with self._engines_changed:
                self._engines.pop(engine_id, None)
                self._engines_changed.notify_all()
            reason = str(content.get("reason", "unregistered"))
            task_ids = [str(t) for t in content.get("failed_tasks", ())]
            self._end_requests(self._book_event(lambda: self._book.on_engine_lost(engine_id, reason, task_ids)))
        elif msg.msg_type == "shutdown_notification":
            self._controller_lost("the controller shut down")

    # -- hub queries ------------------------------------------------------

    def queue_status(self, targets: Any = None, verbose: bool = False) -> dict[Any, Any]:
        """``{engine_id: {"queue": n, "completed": n, "tasks": n}, "unassigned": n}``."""
        content: dict[str, Any] = {}
        if targets is not None:
            content["targets"] = self._resolve_targets(targets)
        reply = self._query("queue_request", content)
        out: dict[Any, Any] = {}
        for key, value in reply.content["queue"].items():
            out[key if key == "unassigned" else int(key)] = value
        if isinstance(targets, int):
            return out.get(targets, {})  # type: ignore[no-any-return]
        return out

    def _history_msg_id(self, job: str | int) -> str:
        if isinstance(job, str):
            return job
        try:
            return self.history[job]
        except IndexError:
            raise IndexError(f"no request {job} in this client's history of {len(self.history)}") from None

    def get_result(
        self,
        indices_or_msg_ids: str | int | Iterable[str | int] | AsyncResult | None = None,
        block: bool | None = None,
        timeout: float = 10.0,
        owner: bool = True,
    ) -> AsyncResult:
        """An AsyncResult for msg_ids sent by any client, served by the hub's records.

        Integers index :attr:`history` (``-1``, the default, is the last request sent).
        The result is this client's own AsyncResult for a request it still waits
        for, else an :class:`~taskyard.AsyncHubResult`. ``owner`` is accepted for
        ipyparallel's sake: taskyard keeps no local copy of results to give up.
        """
        from taskyard.client.hubresult import hub_result

        if indices_or_msg_ids is None:
            indices_or_msg_ids = -1
        is_scalar = isinstance(indices_or_msg_ids, (str, int))
        if isinstance(indices_or_msg_ids, AsyncResult):
            msg_ids = indices_or_msg_ids.msg_ids
        elif isinstance(indices_or_msg_ids, (str, int)):
            msg_ids = [self._history_msg_id(indices_or_msg_ids)]
        else:  # a list of msg_ids, history indices and AsyncResults
            msg_ids = [
                msg_id
                for job in indices_or_msg_ids
                for msg_id in (job.msg_ids if isinstance(job, AsyncResult) else [self._history_msg_id(job)])
            ]
        ar = hub_result(self, msg_ids, is_scalar=is_scalar)
        if block:
            ar.wait(timeout)
        return ar

    def result_status(self, msg_ids: Iterable[str]) -> dict[str, list[str]]:
        """``{"pending": [...], "completed": [...], "failed": [...], "unknown": [...]}`` per the hub."""
        reply = self._query("status_request", {"msg_ids": list(msg_ids)})
        out: dict[str, list[str]] = {"pending": [], "completed": [], "failed": [], "unknown": []}
        for msg_id, info in reply.content["tasks"].items():
            status = info["status"]
            key = {"ok": "completed", "pending": "pending", "unknown": "unknown"}.get(status, "failed")
            out[key].append(msg_id)
        return out

    @staticmethod
    def _msg_ids_of(jobs: Any) -> list[str]:
        """The msg_ids of ``jobs``: a msg_id, an AsyncResult, or a list of them."""
        listed = [jobs] if isinstance(jobs, (str, AsyncResult)) else list(jobs or [])
        return [m for j in listed for m in (j.msg_ids if isinstance(j, AsyncResult) else [j])]

    def _futures_of(self, jobs: Any) -> list[concurrent.futures.Future[Any]]:
        """``jobs`` as futures: AsyncResults and other Futures as they are, msg_ids
        (or history indices) through :meth:`get_result`."""
        listed = [jobs] if isinstance(jobs, (str, int, concurrent.futures.Future)) else list(jobs)
        return [j if isinstance(j, concurrent.futures.Future) else self.get_result(j) for j in listed]

    def purge_results(self, jobs: Any = "all", targets: Any = None) -> None:
        """Forget finished results on the hub; results still pending stay.

        Parameters
        ----------
        jobs : "all", msg_id, AsyncResult or a list of them
            The results to forget. With ``targets`` and no ``jobs``, none but the
            engines' (``purge_results(targets=[0])`` forgets engine 0's only).
        targets : int or list of int, optional
            Also forget every finished result of these engines.
        """
        # not _resolve_targets: the results of an engine that has gone may be purged too
        if targets is None:
            engine_ids: list[int] = []
        elif isinstance(targets, str) and targets == "all":
            engine_ids = self.ids
        else:
            engine_ids = [int(t) for t in ([targets] if isinstance(targets, int) else targets)]
        if isinstance(jobs, str) and jobs == "all":
            msg_ids: Any = [] if targets is not None else "all"
        else:
            msg_ids = self._msg_ids_of(jobs)
        self._query("purge_request", {"msg_ids": msg_ids, "engine_ids": engine_ids})

    def purge_hub_results(self, jobs: Any = "all", targets: Any = None) -> None:
        """ipyparallel's name for :meth:`purge_results`: the hub's records are the only copy."""
        self.purge_results(jobs, targets)

    def purge_local_results(self, jobs: Any = (), targets: Any = ()) -> None:
        """ipyparallel's purge of the client's cache of results: a taskyard client keeps
        none (a result lives in its AsyncResult), so nothing is forgotten, but the
        arguments are checked as ipyparallel checks them: ``ValueError`` for no
        jobs and no targets, ``RuntimeError`` for a job still outstanding."""
        if not jobs and not targets and targets != 0:
            raise ValueError("give jobs (msg_ids, AsyncResults or 'all') or targets to purge")
        asked = self.outstanding if isinstance(jobs, str) and jobs == "all" else set(self._msg_ids_of(jobs))
        pending = self.outstanding & asked
        if pending:
            raise RuntimeError(f"cannot purge outstanding tasks: {sorted(pending)}")

    def purge_everything(self) -> None:
        """Forget every finished result on the hub and this client's :attr:`history`."""
        self.purge_results("all")
        self.history.clear()

    def hub_stats(self) -> dict[str, Any]:
        """The hub's counters of dropped and rejected messages, and its record store size."""
        return dict(self._query("stats_request", {}).content)

    # -- control ----------------------------------------------------------

    def _control(
        self, msg_type: str, content: dict[str, Any], targets: Any, block: bool, timeout: float
    ) -> AsyncResult:
        states = []
        for engine_id in self._resolve_targets(targets):
            uuid = self.engine_uuid(engine_id)
            states.append(self.send_request("control", msg_type, content, idents=[uuid.encode()], engine_id=engine_id))
        ar = AsyncResult(self, states, msg_type)
        if block:
            ar.wait(timeout)
        return ar

    def abort(self, jobs: Any = None, targets: Any = None, block: bool = False, timeout: float = 10.0) -> AsyncResult:
        """Abort requests that have not started: ``jobs`` (msg_ids or AsyncResults) or, if None, all queued ones."""
        msg_ids = None
        if jobs is not None:
            jobs = [jobs] if isinstance(jobs, (str, AsyncResult)) else list(jobs)
            msg_ids = [m for j in jobs for m in (j.msg_ids if isinstance(j, AsyncResult) else [j])]
        if "task" in self.connection_info and msg_ids is not None:
            self.send_request("task", "abort_request", {"msg_ids": msg_ids})
        return self._control("abort_request", {"msg_ids": msg_ids}, targets, block, timeout)

    def clear(self, targets: Any = None, block: bool = True, timeout: float = 10.0) -> AsyncResult:
        """Reset the engines' namespaces."""
        return self._control("clear_request", {}, targets, block, timeout)

    def shutdown(self, targets: Any = "all", hub: bool = False, block: bool = True, timeout: float = 10.0) -> None:
        """Stop engines (and the controller, with ``hub=True``)."""
        if self._engines:
            self._control("shutdown_request", {}, targets, block, timeout)
        if hub:
            self._query("shutdown_request", {}, timeout)

    def wait(self, jobs: Any = None, timeout: float = -1) -> bool:
        """Wait for ``jobs`` (AsyncResults, msg_ids or any concurrent.futures.Future; default: everything this client sent)."""
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        pending: list[concurrent.futures.Future[Any]]
        if jobs is None:
            with self.state_lock:
                states = self._book.pending()
            pending = [AsyncResult(self, [s]) for s in states]
        else:
            pending = self._futures_of(jobs)
        for ar in pending:  # AsyncResults and any other concurrent.futures.Future (as ipyparallel)
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not concurrent.futures.wait([ar], timeout=remaining).done:
                return False
        return True

    def wait_interactive(self, jobs: Any = None, interval: float = 0.1, timeout: float = -1) -> bool:
        """:meth:`wait` with a progress bar (see :meth:`AsyncResult.wait_interactive`);
        ``jobs`` as for :meth:`wait`. Returns whether everything finished."""
        if jobs is None:
            with self.state_lock:
                states = self._book.pending()
            if not states:
                return True
            ar = AsyncResult(self, states, "wait")
        else:
            futures = self._futures_of(jobs)
            if not all(isinstance(f, AsyncResult) for f in futures):
                raise TypeError("wait_interactive takes AsyncResults or msg_ids (use wait for other futures)")
            ar = AsyncResult.join(*futures)  # type: ignore[arg-type]
        return ar.wait_interactive(interval=interval, timeout=timeout)

    @property
    def outstanding(self) -> set[str]:
        """msg_ids sent by this client that have no reply yet."""
        with self.state_lock:
            return {s.msg_id for s in self._book.pending()}

    # -- for results served by the hub (taskyard.client.hubresult) ------------

    @property
    def is_closed(self) -> bool:
        """Whether the client was closed (or its IO thread died): it sends nothing more."""
        return self._closed or self._book.closed_because is not None

    def pending_state(self, msg_id: str) -> MessageState | None:
        """The state of a request this client sent that has not ended, if ``msg_id`` is one."""
        with self.state_lock:
            return self._book.get(msg_id)

    def end_request(self, state: MessageState, value: Any = None, error: BaseException | None = None) -> None:
        """Record the outcome of a state that is not in the book (one filled from the hub's records)."""
        self._finish(state, value, error)

    def query_hub(self, msg_type: str, content: dict[str, Any], timeout: float = 10.0) -> Message:
        """A request to the hub on the registration channel; returns the reply, or raises."""
        return self._query(msg_type, content, timeout)

    # -- lifetime ---------------------------------------------------------

    def close(self, linger: float | None = None) -> None:
        """Stop the IO thread and close every socket.

        Results still pending fail at once with :class:`~taskyard.error.ClientClosed`
        (their tasks go on; another client can fetch them with ``get_result``).
        """
        if self._closed:
            return
        self._closed = True
        self._io.stop(5)
        self._end_everything("the client was closed")
        self._io.close()
        if self._own_context:
            self.context.term()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:  # noqa: BLE001 - nothing to do at interpreter exit
                pass

    def __repr__(self) -> str:
        return f"<taskyard.Client {self.url_file} engines={self.ids}>"

    def executor(self, targets: Any = None, **flags: Any) -> Any:
        """A :class:`concurrent.futures.Executor` on a LoadBalancedView of ``targets``."""
        view = self.load_balanced_view(targets)
        if flags:
            view.set_flags(**flags)
        return view.executor


def _progress_bar(total: int, unit: str, interactive: bool | None) -> Any:
    if interactive is False:
        return None
    try:
        if interactive is None and not (sys.stdout.isatty() or "ipykernel" in sys.modules):
            return None
        from taskyard.client.outputs import progress_bar

        return progress_bar(total=total, unit=unit, leave=False)
    except ImportError:
        return None
