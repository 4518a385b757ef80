"""The engine process: registration, the heart, and the request loop.

The engine connects a DEALER per channel (``mux`` for direct requests, ``task``
for load-balanced ones, ``control`` for abort/clear/shutdown), each with the
engine's uuid as identity, plus a PUB for iopub output. Its heart is a C-level
forwarding device in its own thread (SUB from the controller's ping, DEALER back
to its pong), so it keeps beating while user code holds the GIL.

The loop is a plain :class:`zmq.Poller`: control messages are read before every
request, so an abort reaches a queued request before it runs. A request runs to
completion on the main thread; its reply goes back on the channel it came from.
Anything malformed is logged, counted and dropped; a signed request of an
unknown type gets an error reply so that nobody waits on it forever.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from typing import Any

import zmq
from zmq.devices import ThreadDevice

from taskyard.engine.kernel import Kernel
from taskyard.engine.reply_hold import ReplyHoldState
from taskyard.error import BufferChanged, ConfigError, ProtocolError
from taskyard.heap import HeapTrimmer
from taskyard.protocol import catalog, connection, jsonutil
from taskyard.protocol.batch import per_peer, unbatch
from taskyard.protocol.catalog import CATALOG, method_of
from taskyard.protocol.session import Message, Session
from taskyard.protocol.socketio import Waiter, readable, recv_frames, send_frames

log = logging.getLogger("taskyard.engine")


def _in_terminal_foreground() -> bool:
    """Whether this process runs in the foreground of a terminal (Ctrl-C comes from its user)."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError, AttributeError):
        return False


#: Seconds between checks that the controller still pings.
PING_CHECK_PERIOD = 0.5
#: Most tasks an engine takes from the pure queue before telling the hub it holds them.
START_BATCH = 32


class EngineStopping(BaseException):
    """Raised by the SIGTERM handler to unwind the loop (and any running user code)."""


#: The requests an engine runs (the work requests of the catalog), by the kernel method that runs them.
REQUEST_TYPES = {name: method_of(kind.reply_type) for name, kind in CATALOG.items() if "mux" in kind.channels}


class Engine:
    """One engine, connected to the controller described by ``info``.

    Parameters
    ----------
    info : dict
        The engine connection file's contents.
    controller_timeout : float
        Exit when no heartbeat ping has been seen for this many seconds (the
        controller is gone).
    """

    def __init__(self, info: dict[str, Any], controller_timeout: float = 10.0, log_output: bool = False) -> None:
        self.info = info
        self.session = Session(info["key"], info.get("signature_scheme", "hmac-sha256"), username="engine")
        self.uuid = os.urandom(8).hex()
        self.ident = self.uuid.encode()
        self.context = zmq.Context()
        self.engine_id = -1
        self.kernel: Kernel | None = None
        self.controller_timeout = controller_timeout
        self.aborted: set[str] = set()
        self._stopping = False
        self.dropped = 0
        #: replies to tasks from the pure queue not sent yet, and when they go (see ReplyHoldState)
        self._holding = False
        self._held: list[list[Any]] = []
        self.reply_hold = ReplyHoldState()
        self.log_output = log_output
        self.heart: ThreadDevice | None = None
        #: A request is running (SIGINT interrupts it; between requests SIGINT is ignored).
        self._busy = False
        #: gives freed memory back after any work, once idle: the heap keeps large
        #: buffers for reuse meanwhile, and user code allocates here too
        self.heap = HeapTrimmer(min_events=1)
        #: behind the pure (C-level) task queue, the engine reports each task it starts
        self.reports_starts = info.get("task_scheme") == "pure"

    def _socket(self, kind: int, channel: str, identity: bool = True) -> zmq.Socket[Any]:
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.LINGER, 1000)
        if identity:
            sock.setsockopt(zmq.IDENTITY, self.ident)
        sock.connect(connection.url(self.info, channel))
        return sock

    def connect(self) -> None:
        """Connect every channel and start the heart (before registering, so
        the controller can route to us as soon as it says we exist)."""
        self.mux = self._socket(zmq.DEALER, "mux")
        self.control = self._socket(zmq.DEALER, "control")
        self.task = self._socket(zmq.DEALER, "task") if "task" in self.info else None
        self.iopub = self._socket(zmq.PUB, "iopub", identity=False)
        self.ping_watch = self.context.socket(zmq.SUB)
        self.ping_watch.setsockopt(zmq.SUBSCRIBE, b"")
        self.ping_watch.connect(connection.url(self.info, "hb_ping"))
        heart = ThreadDevice(zmq.FORWARDER, zmq.SUB, zmq.DEALER)
        heart.setsockopt_in(zmq.SUBSCRIBE, b"")
        heart.setsockopt_out(zmq.IDENTITY, self.ident)
        heart.setsockopt_in(zmq.LINGER, 0)
        heart.setsockopt_out(zmq.LINGER, 0)
        heart.connect_in(connection.url(self.info, "hb_ping"))
        heart.connect_out(connection.url(self.info, "hb_pong"))
        heart.daemon = True
        heart.start()
        self.heart = heart
        self.registration = self._socket(zmq.DEALER, "registration")

    def register(self, timeout: float = 30.0) -> int:
        """Ask the hub for an engine id; raises ConfigError if it does not answer."""
        self.session.send_new(
            self.registration, "registration_request", {"uuid": self.uuid, "info": {"pid": os.getpid()}}
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.registration.poll(100):
                continue
            frames = self.registration.recv_multipart()
            try:
                reply = self.session.deserialize(frames)
            except ProtocolError as exc:
                log.warning("registration: dropped a bad reply: %s", exc)
                continue
            if reply.content.get("status") != "ok":
                raise ConfigError(f"registration refused: {reply.content.get('evalue')}")
            self.engine_id = int(reply.content["id"])
            self.kernel = Kernel(self.engine_id, self.uuid)
            log.info("registered as engine %d", self.engine_id)
            return self.engine_id
        raise ConfigError(
            f"no controller answered at {connection.url(self.info, 'registration')} within {timeout:.0f} s"
        )

    # -- loop -------------------------------------------------------------

    def stop(self) -> None:
        self._stopping = True

    def install_signal_handlers(self) -> None:
        """SIGTERM stops the engine; SIGINT interrupts the request that runs (it
        fails with ``KeyboardInterrupt``, the engine carries on), as an IPython
        kernel's interrupt does. Between requests SIGINT stops an engine that
        runs in the foreground of a terminal (Ctrl-C on ``ipengine``) and is
        ignored by one a cluster started."""

        def on_term(*_: Any) -> None:
            self.stop()
            raise EngineStopping()

        def on_int(*_: Any) -> None:
            if self._busy:
                raise KeyboardInterrupt
            if _in_terminal_foreground():
                self.stop()
                raise EngineStopping()
            log.info("SIGINT with no request running: nothing to interrupt")

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_int)

    def run(self) -> None:
        """Serve requests until shut down or the controller is gone."""
        request_sockets = [s for s in (self.mux, self.task) if s is not None]
        # Pings are checked on a clock, not polled: they arrive every heartbeat and
        # would wake the loop for nothing.
        waiter = Waiter([self.control, *request_sockets])
        try:
            self._loop(waiter, request_sockets)
        except EngineStopping:
            pass
        self.close()

    def _loop(self, waiter: Waiter, request_sockets: list[zmq.Socket[Any]]) -> None:
        last_ping_at = time.monotonic()
        next_ping_check_at = last_ping_at + PING_CHECK_PERIOD
        # Every socket is read until it has nothing left before the loop sleeps
        # (see Waiter); after a wake-up, only those whose descriptor fired.
        woken: list[zmq.Socket[Any]] = waiter.sockets
        while not self._stopping:
            now = time.monotonic()
            if not woken:
                self.heap.maybe_trim(now)
                woken = waiter.sockets  # a time-out re-reads everything: cheap, and safe
            if now >= next_ping_check_at:
                next_ping_check_at = now + PING_CHECK_PERIOD
                if self._drain_pings():
                    last_ping_at = now
                elif now - last_ping_at > self.controller_timeout:
                    log.error("no heartbeat from the controller for %.0f s; exiting", self.controller_timeout)
                    break
            if self.control in woken:
                self._serve_control_nowait()
            for sock in request_sockets:
                if sock not in woken:
                    continue
                # Drain what is queued, reading control messages before each request
                # so that an abort reaches a queued request before it runs.
                while not self._stopping and readable(sock):
                    self._serve_control_nowait()
                    if sock is self.task and self.reports_starts:
                        self._serve_started_batch()
                    else:
                        self._serve(sock)
            if self._stopping:
                break
            try:
                woken = waiter.wait(int(PING_CHECK_PERIOD * 1000))
            except zmq.ZMQError:
                if self._stopping:
                    break
                raise

    def _drain_pings(self) -> bool:
        seen = False
        while readable(self.ping_watch):
            self.ping_watch.recv()
            seen = True
        return seen

    def _serve_control_nowait(self) -> None:
        while readable(self.control):
            self._serve(self.control)

    def _serve(self, sock: zmq.Socket[Any]) -> None:
        try:
            requests = self._recv_requests(sock)
        except zmq.Again:
            return
        for index, frames in enumerate(requests):
            if index:
                self._serve_control_nowait()  # an abort may be for the next request of the batch
                if self._stopping:
                    return
            msg = self._parse(sock, frames)
            if msg is not None:
                self._dispatch(sock, msg)

    def _recv_requests(self, sock: zmq.Socket[Any]) -> list[list[Any]]:
        """The requests in the next message on ``sock``: one, or several from a client's batch (pure queue)."""
        frames = recv_frames(sock, zmq.NOBLOCK)
        if sock is not self.task:
            return [frames]
        # [client_ident, b"batch", ...]: each request in it is checked as if it came alone
        requests = unbatch(frames, routing=1)
        if requests is None:
            self.dropped += 1
            log.warning("dropped a malformed batch of requests (%d so far)", self.dropped)
            return []
        return requests

    def _serve_started_batch(self) -> None:
        """Take up to START_BATCH queued tasks from the pure queue, tell the hub once, run them.

        The hub learns which tasks this engine holds before any of them runs, in
        one message for the batch rather than one per task.
        """
        batch = []
        while len(batch) < START_BATCH and not self._stopping and readable(self.task):
            for frames in self._recv_requests(self.task):
                msg = self._parse(self.task, frames)
                if msg is not None:
                    batch.append(msg)
        started = [msg.msg_id for msg in batch if msg.msg_type in REQUEST_TYPES]
        if started:
            self.session.send_new(self.registration, "task_started", {"msg_ids": started})
        # While the tasks are quick, their replies go out together (see ReplyHoldState).
        self._holding = True
        try:
            for msg in batch:
                self._serve_control_nowait()
                if self._stopping:
                    return
                began = time.monotonic()
                self._dispatch(self.task, msg)
                now = time.monotonic()
                if self.reply_hold.is_due(now, now - began):
                    self._flush_replies()
        finally:
            self._holding = False
            self._flush_replies()

    def _flush_replies(self) -> None:
        """The held replies: one message for each client with one, a batch for each with several."""
        held, self._held = self._held, []
        self.reply_hold.sent()
        for frames in per_peer(held):  # [client_ident, DELIM, ...]: the queue routes on the first frame
            send_frames(self.task, frames)

    def _parse(self, sock: zmq.Socket[Any], frames: list[Any]) -> Message | None:
        """The verified request in ``frames``, or None (refused, answered or dropped)."""
        try:
            msg = self.session.deserialize(frames)
        except BufferChanged as exc:
            # authentic, but the sender changed a buffer after signing: tell it, rather than let it wait
            self.dropped += 1
            changed = exc.message
            if changed.idents and sock is not self.control:
                reply_type = catalog.reply_type(changed.msg_type)
                info = self.kernel.engine_info if self.kernel is not None else {}
                self._reply(
                    sock, changed, reply_type, _engine_error("BufferChanged", str(exc)), {**info, "status": "error"}
                )
            return None
        except ProtocolError as exc:
            self.dropped += 1
            log.warning("dropped a bad message (%d so far): %s", self.dropped, exc)
            if sock is self.task:
                self._refuse_task(frames, exc)
            return None
        if sock is not self.task and not self._unglue(sock, msg):
            return None
        return msg

    def _dispatch(self, sock: zmq.Socket[Any], msg: Message) -> None:
        try:
            if sock is self.control:
                self._on_control(msg)
            else:
                self._on_request(sock, msg)
        except (KeyError, TypeError, ValueError) as exc:
            self.dropped += 1
            log.warning("dropped a bad %s: %s", msg.msg_type, exc)

    def _refuse_task(self, frames: list[Any], exc: ProtocolError) -> None:
        """Answer a task we will not run (e.g. a replay), so the scheduler frees its slot.

        Only the scheduler talks to this socket and it has checked the signature,
        so this is a request we saw before on another channel. The reply is
        signed by us; the client checks it, the scheduler matches it by msg_id.
        """
        try:
            idents, rest = Session.split_idents(frames)
            header = jsonutil.loads(memoryview(rest[1]))
            parent = Message(header={"msg_id": str(header["msg_id"]), "msg_type": str(header["msg_type"])})
        except (ProtocolError, ValueError, KeyError, TypeError, IndexError):
            return
        parent.idents = idents
        reply_type = catalog.reply_type(parent.msg_type)
        info = self.kernel.engine_info if self.kernel is not None else {}
        content = _engine_error("KernelError", f"refused: {exc}")
        self._reply(self.task, parent, reply_type, content, {**info, "status": "error"})

    def _unglue(self, sock: zmq.Socket[Any], msg: Message) -> bool:
        """Repair a request glued behind a one-frame message; False if it is not ours.

        The controller's C queue turns a one-frame message naming this engine
        into ``[sender, <the next message in the queue>]``: we get the next
        request with routing frames ``[garbage sender, real sender, real
        target]`` instead of ``[real sender]``. Serve it if it is ours, else
        tell its sender it went astray (never drop it silently).
        """
        if len(msg.idents) != 3:
            return True
        _, sender, target = msg.idents
        msg.idents = [sender]
        self.dropped += 1
        if target == self.ident:
            log.warning("%s arrived glued behind a malformed message; serving it", msg.msg_id)
            return True
        log.warning("%s for engine %r arrived here behind a malformed message", msg.msg_id, target)
        reply_type = catalog.reply_type(msg.msg_type)
        evalue = "the controller's queue misrouted this request behind a malformed message; send it again"
        info = self.kernel.engine_info if self.kernel is not None else {}
        self._reply(sock, msg, reply_type, _engine_error("KernelError", evalue), {**info, "status": "error"})
        return False

    def _reply(
        self,
        sock: zmq.Socket[Any],
        parent: Message,
        msg_type: str,
        content: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        buffers: list[Any] | None = None,
    ) -> None:
        msg = self.session.msg(msg_type, content, parent=parent, metadata=metadata, buffers=buffers)
        if self._holding and sock is self.task:
            self.reply_hold.held(time.monotonic())
            self._held.append(self.session.serialize(msg, parent.idents))
        else:
            self.session.send(sock, msg, parent.idents)

    def _on_request(self, sock: zmq.Socket[Any], msg: Message) -> None:
        assert self.kernel is not None
        reply_type = catalog.reply_type(msg.msg_type)
        method = REQUEST_TYPES.get(msg.msg_type)
        base = {**self.kernel.engine_info, "status": "error"}
        if method is None:
            content = _engine_error("KernelError", f"unknown request type {msg.msg_type!r}")
            self._reply(sock, msg, reply_type, content, base)
            return
        target = msg.metadata.get("to")
        if sock is self.mux and target != self.uuid:
            # Direct requests name their engine: anything else is a replay of a
            # request meant for another engine or for the task scheduler.
            self.dropped += 1
            log.warning("dropped %s addressed to engine %s", msg.msg_id, target)
            return
        if sock is self.task and target is not None:
            # A direct request replayed through the scheduler: refuse it, but answer,
            # or the scheduler would wait for this engine forever.
            self.dropped += 1
            content = _engine_error("KernelError", "a direct request cannot run as a load-balanced task")
            self._reply(sock, msg, reply_type, content, base)
            return
        if msg.msg_id in self.aborted:
            self.aborted.discard(msg.msg_id)
            self._reply(sock, msg, reply_type, _aborted(), {**base, "status": "aborted"})
            return

        def publish(msg_type: str, content: dict[str, Any]) -> None:
            topic = content.get("name", msg_type) if msg_type == "stream" else msg_type
            self.session.send_new(
                self.iopub,
                msg_type,
                content,
                parent=msg,
                metadata={"engine_id": self.engine_id},
                idents=[f"engine.{self.engine_id}.{topic}".encode()],
            )

        self.heap.count()
        self.heap.count_buffers(msg.buffers)
        self._busy = True
        try:
            content, buffers, metadata = self.kernel.run(method, msg.content, msg.buffers, publish)
        finally:
            self._busy = False
        self.heap.count_buffers(buffers)
        if self.log_output and content["status"] == "error":
            log.info("%s raised %s: %s", msg.msg_id, content.get("ename"), content.get("evalue"))
        self._reply(sock, msg, reply_type, content, metadata, buffers)
        if method == "execute" and content["status"] == "error" and sock is self.mux:
            if msg.content.get("stop_on_error", True):
                # As an IPython kernel does: the cells queued behind one that raised
                # do not run (they are answered "aborted"): they likely needed it.
                self._abort_queued((self.mux,))

    def _on_control(self, msg: Message) -> None:
        assert self.kernel is not None
        kind = msg.msg_type
        if kind == "abort_request":
            msg_ids = msg.content.get("msg_ids")
            if msg_ids is None:
                self._abort_queued()
            else:
                self.aborted.update(str(m) for m in msg_ids)
            self._reply(self.control, msg, catalog.reply_type(kind), {"status": "ok"})
        elif kind == "clear_request":
            self.kernel.clear()
            self._reply(self.control, msg, catalog.reply_type(kind), {"status": "ok"})
        elif kind == "shutdown_request":
            self._reply(self.control, msg, catalog.reply_type(kind), {"status": "ok"})
            self.stop()
        else:
            self._reply(
                self.control, msg, catalog.ERROR_REPLY, _engine_error("KernelError", f"unknown control request {kind!r}")
            )

    def _abort_queued(self, sockets: tuple[zmq.Socket[Any] | None, ...] | None = None) -> None:
        """Answer "aborted" to every request already waiting on ``sockets`` (default: both)."""
        for sock in (self.mux, self.task) if sockets is None else sockets:
            if sock is None:
                continue
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                try:
                    msg = self.session.deserialize(frames)
                except ProtocolError:
                    self.dropped += 1
                    continue
                reply_type = catalog.reply_type(msg.msg_type)
                assert self.kernel is not None
                self._reply(sock, msg, reply_type, _aborted(), {**self.kernel.engine_info, "status": "aborted"})

    # -- shutdown ---------------------------------------------------------

    def unregister(self) -> None:
        if self.engine_id < 0:
            return
        try:
            self.session.send_new(self.registration, "unregistration_request", {"id": self.engine_id})
            self.registration.poll(200)
        except zmq.ZMQError:
            pass

    def close(self) -> None:
        self.unregister()
        for sock in (self.mux, self.task, self.control, self.iopub, self.registration, self.ping_watch):
            if sock is not None:
                sock.close(linger=500)


def _engine_error(ename: str, evalue: str) -> dict[str, Any]:
    return catalog.error_content(ename, evalue, "engine")


def _aborted() -> dict[str, Any]:
    return catalog.error_content("TaskAborted", "aborted before it ran", "engine", status="aborted")
