"""The controller process: the hub's sockets and loop, and the C-level devices.

The hub loop is a plain :class:`zmq.Poller` loop (measured several times faster
than a tornado stream on this path, see FACTS.md). It owns four sockets:

* ``registration`` (ROUTER): engines register, clients connect and query;
* ``hb_ping`` (PUB) / ``hb_pong`` (ROUTER): the heartbeat;
* ``monitor`` (SUB, inproc): copies of every request and reply from the devices
  and the task scheduler;
* ``notification`` (PUB): engine (un)registration events for clients.

The direct (``mux``) and ``control`` channels are ROUTER–ROUTER MonitoredQueue
devices and ``iopub`` is a SUB–PUB proxy, each running in C in a daemon thread:
no Python runs per forwarded message. Every decision is made by
:class:`~taskyard.controller.hub_state.HubState`; this module decodes frames,
calls it, and sends what it says.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from zmq.devices import monitored_queue

from taskyard.controller.hub_state import HubState, TaskRecord
from taskyard.controller.notes import SCHEDULER_NOTES, SIGNED_NOTES
from taskyard.error import ProtocolError
from taskyard.heap import IDLE_BEFORE_TRIM, HeapTrimmer
from taskyard.protocol import connection
from taskyard.protocol.batch import is_batch, split_batch, unbatch
from taskyard.protocol.catalog import RECORDED_REQUESTS, error_content, reply_type, request_of
from taskyard.protocol.session import Message, Session
from taskyard.protocol.socketio import drain

#: What the pure queue's copies start with: a batch there is a client's requests or an engine's replies.
PURE_QUEUE_PREFIXES = (b"task-in", b"task-out")

log = logging.getLogger("taskyard.controller")

MONITOR_URL = "inproc://taskyard-monitor"

#: Request types whose requests and replies the hub records.


@dataclass
class ControllerConfig:
    """Everything the controller process needs; the ipcontroller app fills it in."""

    ip: str = "127.0.0.1"
    key: str = ""
    signature_scheme: str = "hmac-sha256"
    profile_dir: Path = field(default_factory=lambda: connection.profile_dir())
    cluster_id: str = ""
    ping_period: float = 0.4
    max_misses: int = 3
    scheme: str = "leastload"
    hwm: int = 1
    ports: dict[str, int] = field(default_factory=dict)
    max_records: int = 100_000
    max_record_bytes: int = 1 << 30
    max_result_bytes: int = 64 << 20


class Controller:
    """Binds every channel, writes the connection files and runs the hub loop."""

    def __init__(self, config: ControllerConfig) -> None:
        self.config = config
        self.session = Session(config.key, config.signature_scheme, username="controller")
        # The monitor feed carries copies of messages the engines and clients
        # check for replays themselves; the hub must not reject a copy.
        self.monitor_session = Session(config.key, config.signature_scheme, username="controller")
        self.heap = HeapTrimmer(min_idle=IDLE_BEFORE_TRIM)
        self.state = HubState(
            config.max_misses,
            config.max_records,
            config.max_record_bytes,
            fails_tasks=config.scheme == "pure",
            max_result_bytes=config.max_result_bytes,
        )
        self.context = zmq.Context()
        self.ports: dict[str, int] = {}
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._files: list[Path] = []
        self.task_features: list[str] = []
        #: called on close (e.g. to stop the task scheduler process)
        self.on_close: list[Callable[[], None]] = []

    # -- binding ----------------------------------------------------------

    def _bind(self, socket_type: int, name: str, sockopts: dict[int, Any] | None = None) -> zmq.Socket[Any]:
        sock = self.context.socket(socket_type)
        sock.setsockopt(zmq.LINGER, 0)
        for opt, value in (sockopts or {}).items():
            sock.setsockopt(opt, value)
        ip = self.config.ip
        wanted = self.config.ports.get(name, 0)
        if wanted:
            sock.bind(f"tcp://{ip}:{wanted}")
            self.ports[name] = wanted
        else:
            self.ports[name] = sock.bind_to_random_port(f"tcp://{ip}")
        return sock

    def bind(self) -> None:
        """Create and bind every socket and start the devices."""
        ctx = self.context
        # No high-water mark on the monitor feed: a PUB drops silently at the
        # mark, and a dropped copy is a task the hub never records.
        self.monitor = ctx.socket(zmq.SUB)
        self.monitor.setsockopt(zmq.RCVHWM, 0)
        self.monitor.setsockopt(zmq.SUBSCRIBE, b"")
        self.monitor.bind(MONITOR_URL)
        # The task scheduler runs in another process and reports over loopback.
        self.ports["monitor"] = self.monitor.bind_to_random_port("tcp://127.0.0.1")
        self.registration = self._bind(zmq.ROUTER, "registration")
        self.hb_ping = self._bind(zmq.PUB, "hb_ping")
        self.hb_pong = self._bind(zmq.ROUTER, "hb_pong")
        self.notification = self._bind(zmq.PUB, "notification")
        for name in ("mux", "control"):
            front = self._bind(zmq.ROUTER, name)
            back = self._bind(zmq.ROUTER, f"{name}_engine")
            mon = ctx.socket(zmq.PUB)
            mon.setsockopt(zmq.SNDHWM, 0)
            mon.connect(MONITOR_URL)
            prefixes = (f"{name}-in".encode(), f"{name}-out".encode())
            self._start_thread(f"{name}-device", self._guarded_queue, front, back, mon, *prefixes)
        if self.config.scheme == "pure":
            self._bind_pure_queue()
        iopub_in = self._bind(zmq.SUB, "iopub_engine", {zmq.SUBSCRIBE: b""})
        iopub_out = self._bind(zmq.PUB, "iopub")
        self._start_thread("iopub-device", zmq.proxy, iopub_in, iopub_out)

    def _bind_pure_queue(self) -> None:
        """The ``pure`` scheme: load-balanced tasks through a C-level ROUTER -> DEALER queue.

        No Python runs per task: the DEALER hands tasks to connected engines in
        turn. ZMTP heartbeats on the DEALER drop the connection of an engine that
        stops answering (a frozen process), so new tasks go to the others; a
        dead engine's connection closes with it. Engines tell the hub when they
        start a task, so the hub can fail the tasks of an engine that dies.
        """
        front = self._bind(zmq.ROUTER, "task", {zmq.SNDHWM: 0, zmq.RCVHWM: 0})
        back = self._bind(
            zmq.DEALER,
            "task_engine",
            {zmq.SNDHWM: 0, zmq.HEARTBEAT_IVL: 1000, zmq.HEARTBEAT_TIMEOUT: 3000, zmq.HEARTBEAT_TTL: 3000},
        )
        mon = self.context.socket(zmq.PUB)
        mon.setsockopt(zmq.SNDHWM, 0)
        mon.connect(MONITOR_URL)
        # A client's batch of requests goes whole to one engine, which runs them in turn.
        self.task_features = ["engine-batch"]
        self._start_thread("task-device", monitored_queue, front, back, mon, b"task-in", b"task-out")

    def _guarded_queue(
        self, front: zmq.Socket[Any], back: zmq.Socket[Any], mon: zmq.Socket[Any], *prefixes: bytes
    ) -> None:
        """A ROUTER-ROUTER MonitoredQueue that a malformed message cannot desynchronise.

        The C relay reads two routing frames without looking at the "more" flag,
        so a one-frame message (two frames with the sender's identity) makes it
        block for the *next* message and glue it on: until some other message
        arrives, nothing flows either way, and that message then goes wherever
        the garbage pointed. With ``RCVTIMEO=0`` that read fails at once
        instead, and ``ROUTER_MANDATORY`` makes a message for an unknown peer
        fail before anything more is read. Each failure ends the relay: we
        finish whatever it had half read or half sent, and start it again. (A
        message already queued behind a one-frame message whose frame names a
        live peer still gets glued on; the engine recognises those, see
        :meth:`taskyard.engine.engine.Engine._unglue`.)
        """
        for sock in (front, back):
            sock.setsockopt(zmq.RCVTIMEO, 0)
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            # At the high-water mark a ROUTER drops silently (or, mandatory, blocks).
            sock.setsockopt(zmq.SNDHWM, 0)
        while True:
            try:
                monitored_queue(front, back, mon, *prefixes)
            except zmq.ZMQError as exc:
                if exc.errno == zmq.ETERM:
                    raise
                self.state.count("queue-resync")
                log.debug("%s queue: dropped a malformed or unroutable message (%s)", prefixes[0].decode(), exc)
            rest: list[bytes] = []
            for sock in (front, back):
                while sock.getsockopt(zmq.RCVMORE):
                    rest.append(sock.recv())
            # The monitor copy has only the prefix so far: finish it with the message
            # (a reply to a client that left is still recorded), or with an empty frame.
            mon.send_multipart(rest or [b""])
            # An empty last frame ends a half-sent message; a ROUTER ignores it otherwise.
            for sock in (front, back):
                sock.send(b"")

    def _start_thread(self, name: str, target: Callable[..., Any], *args: Any) -> None:
        def run() -> None:
            try:
                target(*args)
            except zmq.ContextTerminated:
                pass

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def connection_info(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The client and engine connection-file contents."""
        location = self.config.ip if self.config.ip not in ("0.0.0.0", "*") else "127.0.0.1"
        common = {
            "key": self.config.key,
            "signature_scheme": self.config.signature_scheme,
            "interface": f"tcp://{self.config.ip}",
            "location": location,
            "registration": self.ports["registration"],
            "cluster_id": self.config.cluster_id,
            "controller_pid": os.getpid(),
        }
        client = {
            **common,
            "mux": self.ports["mux"],
            "control": self.ports["control"],
            "iopub": self.ports["iopub"],
            "notification": self.ports["notification"],
            "task_scheme": self.config.scheme,
            "features": list(self.task_features),
        }
        if "task" in self.ports:
            client["task"] = self.ports["task"]
        engine = {
            **common,
            "mux": self.ports["mux_engine"],
            "control": self.ports["control_engine"],
            "iopub": self.ports["iopub_engine"],
            "hb_ping": self.ports["hb_ping"],
            "hb_pong": self.ports["hb_pong"],
            "hb_period": self.config.ping_period,
            "task_scheme": self.config.scheme,
        }
        if "task_engine" in self.ports:
            engine["task"] = self.ports["task_engine"]
        return client, engine

    def write_connection_files(self) -> None:
        client, engine = self.connection_info()
        for kind, info in (("client", client), ("engine", engine)):
            path = connection.connection_file(
                kind, profile_dir_=self.config.profile_dir, cluster_id=self.config.cluster_id
            )
            connection.write_connection_file(path, info)
            self._files.append(path)
            log.info("wrote %s connection file %s", kind, path)

    def remove_connection_files(self) -> None:
        for path in self._files:
            path.unlink(missing_ok=True)
        self._files.clear()

    # -- loop -------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to exit (safe from a signal handler)."""
        self._stopping = True

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stop())

    def run(self) -> None:
        """Serve until :meth:`stop` or a shutdown request."""
        poller = zmq.Poller()
        handlers: dict[Any, Callable[[], None]] = {
            self.hb_pong: self._drain_pongs,
            self.monitor: self._on_monitor,
            self.registration: self._on_registration,
        }
        for sock in handlers:
            poller.register(sock, zmq.POLLIN)
        extra = getattr(self, "extra_sockets", {})
        for sock, handler in extra.items():
            poller.register(sock, zmq.POLLIN)
            handlers[sock] = handler
        period = self.config.ping_period
        next_beat_at = time.monotonic()
        while not self._stopping:
            now = time.monotonic()
            if now >= next_beat_at:
                self._drain_pongs()
                self._beat()
                next_beat_at = now + period
            # whole milliseconds, rounded up: zmq truncates, and a 0 would spin until the beat
            timeout_ms = max(0, math.ceil((next_beat_at - time.monotonic()) * 1000))
            try:
                events = poller.poll(timeout_ms)
            except zmq.ZMQError:
                if self._stopping:
                    break
                raise
            except InterruptedError:
                continue
            for sock, _ in events:
                handlers[sock]()
            if not events:
                # quiet for a while after a burst (counted work, not queries or heartbeats)
                self.heap.maybe_trim(time.monotonic())

    # -- heartbeat --------------------------------------------------------

    def _drain_pongs(self) -> None:
        for frames in drain(self.hb_pong, 10_000, copy=True):
            if len(frames) != 2:
                self.state.count("bad-heartbeat")
                continue
            engine = self.state.heart_beat(frames[0], frames[1])
            if engine is not None:
                log.info("engine %d is live (uuid %s)", engine.engine_id, engine.uuid)
                self._notify("registration_notification", {"id": engine.engine_id, "uuid": engine.uuid})

    def _beat(self) -> None:
        ping, dead = self.state.tick()
        for engine in dead:
            self._unregister(engine.engine_id, "stopped answering heartbeats")
        self.hb_ping.send(ping)

    def _unregister(self, engine_id: int, reason: str) -> None:
        result = self.state.unregister(engine_id, reason)
        if result is None:
            return
        engine, failed = result
        log.warning("engine %d unregistered: %s (%d requests failed)", engine_id, reason, len(failed))
        content = {"id": engine_id, "uuid": engine.uuid, "reason": reason}
        if self.state.fails_tasks:
            # No scheduler will answer for them: clients fail these themselves.
            content["failed_tasks"] = [r.msg_id for r in failed if r.channel == "task"]
        self._notify("unregistration_notification", content)

    def _notify(self, msg_type: str, content: dict[str, Any]) -> None:
        self.session.send_new(self.notification, msg_type, content)

    # -- monitor ----------------------------------------------------------

    def _on_monitor(self) -> None:
        for frames in drain(self.monitor, 1000):
            notes, authenticated = self._notes_in(frames)
            if notes is None:
                self.state.count("bad-monitored")
                continue
            for note in notes:
                try:
                    self._record(note, authenticated)
                except ProtocolError as exc:
                    self.state.count("bad-monitored")
                    log.debug("monitor: dropped a message: %s", exc)

    def _notes_in(self, frames: list[Any]) -> tuple[list[list[Any]] | None, bool]:
        """The notes in one message of the monitor feed (None if it is a malformed batch).

        The second item says whether the batch was signed as a whole (the
        task scheduler's), so that the notes the scheduler wrote need no
        signature of their own.
        """
        if len(frames) >= 5 and bytes(frames[0]) == SIGNED_NOTES:
            # [b"notes", mac, b"batch", layout, blob, ...]: the MAC covers layout and blob
            if not is_batch(frames[2]) or not self.monitor_session.verify_frames(frames[1], frames[3:5]):
                return None, False
            return split_batch(frames[2:]), True
        if bytes(frames[0]) in PURE_QUEUE_PREFIXES:
            # the pure queue's copies: [b"task-in", client_ident, ...] or [b"task-out", client_ident, ...],
            # where a client's batch of requests or an engine's batch of replies may follow the identity
            return unbatch(frames, routing=2), False
        return unbatch(frames), False

    def _record(self, frames: list[Any], authenticated: bool = False) -> None:
        # zmq.Frames from the queues, bytes from the scheduler's batches
        prefix = bytes(frames[0])
        if prefix == b"task-assign":
            # [prefix, engine_ident, msg_id]: the scheduler handed a task to an engine
            if len(frames) == 3:
                self.state.assigned(bytes(frames[2]).decode(), bytes(frames[1]), True)
            return
        # Buffers are hashed only if a client asks the hub for them (_handle_result_request).
        # The scheduler's copies of requests come unsigned in a signed batch; replies keep their own signatures.
        msg = self.monitor_session.deserialize(
            frames[1:],
            check_replay=False,
            verify_buffers=False,
            authenticated=authenticated and prefix in SCHEDULER_NOTES,
        )
        # the relays' copies of large messages are in this process's heap too
        self.heap.count_buffers(msg.buffers)
        channel, _, direction = prefix.decode(errors="replace").partition("-")
        # A ROUTER-ROUTER MonitoredQueue publishes the message as it forwards it,
        # destination first: "in" is [engine, client, ...], "out" is [client, engine, ...].
        # The task scheduler publishes "in" as [client, ...], "sent" (submitted and
        # handed to an engine at once) as [engine, client, ...] and "out" as [client, ...].
        idents = msg.idents
        if direction == "sent":
            if msg.msg_type in RECORDED_REQUESTS and len(idents) >= 2:
                self.state.request_seen(channel, idents[1], idents[0], msg.header, msg.metadata)
        elif direction == "in":
            if msg.msg_type not in RECORDED_REQUESTS or not idents:
                return
            if channel == "task":
                self.state.request_seen(channel, idents[0], None, msg.header, msg.metadata)
            elif len(idents) >= 2:
                self.state.request_seen(channel, idents[1], idents[0], msg.header, msg.metadata)
        elif direction == "out":
            answered = request_of(msg.msg_type)
            if answered is None or not answered.is_recorded:
                return
            if channel == "task":
                engine_ident = str(msg.metadata.get("engine_uuid", "")).encode() or None
            else:
                # A reply whose client had gone reaches us without its routing frames.
                fallback = str(msg.metadata.get("engine_uuid", "")).encode() or None
                engine_ident = idents[1] if len(idents) >= 2 else fallback
            self.heap.count()
            self.state.reply_seen(
                engine_ident,
                msg.header,
                msg.parent_header,
                msg.metadata,
                msg.content,
                msg.buffers,
                msg.digests,
                msg.buffers_verified,
            )

    # -- registration / queries -------------------------------------------

    def _on_registration(self) -> None:
        for frames in drain(self.registration, 100):
            try:
                msg = self.session.deserialize(frames)
            except ProtocolError as exc:
                self.state.count("bad-registration")
                log.warning("registration: dropped a bad message: %s", exc)
                continue
            handler = getattr(self, "_handle_" + msg.msg_type, None)
            if handler is None:
                self.state.count("unknown-type")
                log.warning("registration: unknown message type %r", msg.msg_type)
                self._reply(msg, _error(f"unknown message type {msg.msg_type!r}"))
                continue
            try:
                handler(msg)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("registration: bad %s: %s", msg.msg_type, exc)
                self._reply(msg, _error(f"bad request: {exc}"))

    def _reply(
        self,
        msg: Message,
        content: dict[str, Any],
        buffers: list[Any] | None = None,
        digests: list[bytes | None] | None = None,
    ) -> None:
        """Answer ``msg`` with the reply type the catalog gives for it."""
        msg_type = reply_type(msg.msg_type)
        self.session.send_new(
            self.registration, msg_type, content, parent=msg, idents=msg.idents, buffers=buffers, digests=digests
        )

    def _handle_registration_request(self, msg: Message) -> None:
        uuid = str(msg.content["uuid"])
        if msg.idents and msg.idents[0] != uuid.encode():
            # The engine's sockets all use its uuid as identity; make sure this one does too.
            raise ValueError("registration must come from the engine's own identity")
        try:
            engine = self.state.register(uuid, msg.content.get("info"))
        except ValueError as exc:
            self._reply(msg, _error(str(exc)))
            return
        log.info("engine %d registering (uuid %s)", engine.engine_id, uuid)
        self._reply(
            msg,
            {"status": "ok", "id": engine.engine_id, "hb_period": self.config.ping_period},
        )
        # An extra ping now, so the engine goes live without waiting a whole period.
        self.hb_ping.send(str(self.state.hearts.beat).encode())

    def _handle_task_started(self, msg: Message) -> None:
        """An engine of the pure queue took tasks: now the hub knows where they are."""
        if not msg.idents:
            return
        msg_ids = msg.content["msg_ids"]
        if not isinstance(msg_ids, list):
            raise TypeError("msg_ids must be a list")
        self._on_monitor()  # the tasks' own copies may still be queued on the monitor
        for msg_id in msg_ids:
            self.state.assigned(str(msg_id), msg.idents[0], True)

    def _handle_unregistration_request(self, msg: Message) -> None:
        engine_id = int(msg.content["id"])
        engine = self.state.engines.get(engine_id)
        if engine is None or (msg.idents and msg.idents[0] != engine.ident):
            self._reply(msg, _error(f"no engine {engine_id} registered from here"))
            return
        self._unregister(engine_id, "unregistered")
        self._reply(msg, {"status": "ok"})

    def _handle_connection_request(self, msg: Message) -> None:
        self._reply(
            msg,
            {
                "status": "ok",
                "engines": {str(k): v for k, v in self.state.live_engines().items()},
                # Cluster.stop_engine maps an engine id to its process with these.
                "pids": {str(k): v for k, v in self.state.live_engine_pids().items()},
            },
        )

    def _handle_ping_request(self, msg: Message) -> None:
        """A client's liveness probe while it waits for results (see client/controller_watch.py)."""
        self._reply(msg, "ping_reply", {"status": "ok"})

    def _handle_queue_request(self, msg: Message) -> None:
        targets = msg.content.get("targets")
        engine_ids = None if targets is None else [int(t) for t in targets]
        status = self.state.queue_status(engine_ids)
        self._reply(msg, {"status": "ok", "queue": {str(k): v for k, v in status.items()}})

    def _handle_result_request(self, msg: Message) -> None:
        msg_ids = [str(m) for m in msg.content["msg_ids"]]
        results: dict[str, Any] = {}
        pending: list[str] = []
        missing: list[str] = []
        buffers: list[Any] = []
        digests: list[bytes | None] = []
        for msg_id in msg_ids:
            record = self.state.records.get(msg_id)
            if record is None:
                missing.append(msg_id)
            elif not record.is_done:
                pending.append(msg_id)
            else:
                if not self.state.check_stored_buffers(record, self.monitor_session.verify_buffers):
                    log.warning("the stored result of %s does not match its signature; dropped it", msg_id)
                results[msg_id] = _describe(record, len(buffers))
                buffers.extend(record.result_buffers)
                digests.extend(record.result_digests or [None] * len(record.result_buffers))
        content = {"status": "ok", "results": results, "pending": pending, "missing": missing}
        # the digests were verified just now: re-signing need not hash the buffers again
        self._reply(msg, content, buffers, digests)

    def _handle_status_request(self, msg: Message) -> None:
        """Which of these msg_ids are done, failed, pending or unknown (for schedulers and clients)."""
        # A request sent just before the asker's own may still be in the monitor queue.
        self._on_monitor()
        out: dict[str, Any] = {}
        for msg_id in msg.content["msg_ids"]:
            record = self.state.records.get(str(msg_id))
            if record is None:
                out[str(msg_id)] = {"status": "unknown"}
            else:
                out[str(msg_id)] = {"status": record.status, "engine_id": record.engine_id}
        self._reply(msg, {"status": "ok", "tasks": out})

    def _handle_purge_request(self, msg: Message) -> None:
        msg_ids = msg.content.get("msg_ids") or []
        engine_ids = [int(e) for e in msg.content.get("engine_ids") or []]
        self.state.records.purge(msg_ids if msg_ids == "all" else [str(m) for m in msg_ids], engine_ids)
        self._reply(msg, {"status": "ok"})

    def _handle_shutdown_request(self, msg: Message) -> None:
        log.info("shutdown requested by a client")
        self._reply(msg, {"status": "ok"})
        self.stop()

    def _handle_stats_request(self, msg: Message) -> None:
        rejected: dict[str, int] = {}
        for session in (self.session, self.monitor_session):
            for reason, n in session.rejected.items():
                rejected[reason] = rejected.get(reason, 0) + n
        content = {
            "status": "ok",
            "counters": dict(self.state.counters),
            "rejected": rejected,
            "records": len(self.state.records),
            "record_bytes": self.state.records.nbytes,
        }
        self._reply(msg, content)

    # -- shutdown ---------------------------------------------------------

    def close(self) -> None:
        """Remove the connection files, stop helpers and tell clients we are going."""
        self.remove_connection_files()
        for hook in self.on_close:
            hook()
        try:
            self._notify("shutdown_notification", {})
        except zmq.ZMQError:
            pass


def _error(evalue: str, ename: str = "ValueError") -> dict[str, Any]:
    return error_content(ename, evalue, "hub")


def _describe(record: TaskRecord, first_buffer: int) -> dict[str, Any]:
    header, metadata, content = record.result_parts()
    return {
        "status": record.status,
        "content": content,
        "header": header,
        "metadata": {
            **metadata,
            "submitted": record.submitted,
            "started": record.started,
            "completed": record.completed,
            "engine_id": record.engine_id,
        },
        "buffers": [first_buffer, first_buffer + len(record.result_buffers)],
        "buffers_evicted": record.buffers_evicted,
        "buffers_too_large": record.buffers_too_large,
        "buffers_corrupt": record.buffers_corrupt,
    }
