"""The task scheduler shell: sockets and a loop around TaskSchedulerState.

It runs in its own process (forked by ``ipcontroller``, see
:mod:`taskyard.controller.tasks`) so that scheduling and the hub's
bookkeeping use both cores. Per task it:

1. receives the client's request on the client-facing ROUTER (alone, or in a
   batch with others from the same client, see :mod:`taskyard.protocol.batch`),
   verifies its signature (replays are rejected here, so a captured request
   re-sent to the scheduler never runs twice) and parses the flags from the
   metadata. Requests wait in an inbox and are taken 16 at a time, with the
   engines' replies read in between: a freed engine's next task does not wait
   behind a client's whole burst;
2. tells the hub (a copy of the four header frames, no buffers). Notes to the
   hub are batched, and a batch is signed as a whole (see
   :mod:`taskyard.controller.notes`): it goes out as one message at most 5 ms
   after the first of its notes, at once when no task is left in flight,
   before the scheduler asks the hub anything, or when 256 have piled up (the
   decision is :class:`~taskyard.controller.notes.HoldBack`'s). A busy
   scheduler so sends one message for many tasks (at ``hwm=1`` the tasks come
   back one at a time, so "whenever there is nothing to read" meant a message
   per task), and a quiet one adds no delay;
3. feeds the core and carries out its actions: ``Send`` forwards the request's
   frames to the chosen engine at once, ``Fail`` answers the client with a
   typed error, ``Deliver`` forwards the engine's reply; ``QueryHub`` asks the
   hub about dependencies the core does not know. Replies to clients go out
   with the notes (just before them, on the same schedule; several for one
   client as one batch): while other tasks are in flight a reply may wait up
   to 5 ms, so that a client busy with a burst wakes once for several replies
   instead of once per reply (at ``hwm=1``, with 2 ms, this took the CPU per
   no-op task from ≈ 430 to ≈ 340 µs, and 5 ms to ≈ 305; 10 ms gained nothing
   more); a reply to the last task in flight goes at once, so a single
   request's round trip waits for nothing.

The loop sleeps on the sockets' descriptors (:class:`~taskyard.protocol.socketio.Waiter`):
a socket is read until it has nothing left, and asked again after a send on it.

Replies from engines are not re-verified here: they are matched by the engine's
routing identity (which a ROUTER never lets two peers share) against the task
the core sent it; the client verifies every reply it gets.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import zmq

from taskyard.controller.notes import SIGNED_NOTES, HoldBack
from taskyard.controller.scheduler_actions import Action, Deliver, Fail, QueryHub, Send, TaskSpec
from taskyard.controller.scheduler_state import TaskSchedulerState
from taskyard.dependency import Dependency
from taskyard.error import BufferChanged, ProtocolError
from taskyard.heap import IDLE_BEFORE_TRIM, HeapTrimmer
from taskyard.protocol import jsonutil
from taskyard.protocol.batch import pack_batch, per_peer, unbatch
from taskyard.protocol.catalog import error_content, reply_type
from taskyard.protocol.session import DELIM, Message, Session
from taskyard.protocol.socketio import Waiter, compact, drain, send_frames

log = logging.getLogger("taskyard.scheduler")

TASK_TYPES = frozenset({"apply_request", "execute_request"})
HUB_REQUERY_PERIOD = 0.25
ENGINE_RESYNC_PERIOD = 1.0
#: Client requests handled between two looks at the engines' replies.
REQUESTS_PER_ROUND = 16


@dataclass(slots=True)
class _Request:
    client_ident: bytes
    frames: list[Any]  # as received: [client_ident(s), DELIM, signature, 4 JSON frames, buffers...]
    header_at: int  # index of the header frame (parsed again only to fail the task)
    last_reply: list[Any] | None = None

    @property
    def header(self) -> dict[str, Any]:
        header: dict[str, Any] = jsonutil.loads(bytes(self.frames[self.header_at]))
        return header


def parse_task_spec(msg_id: str, metadata: dict[str, Any]) -> TaskSpec:
    """The scheduler's view of a request, from its metadata; ValueError if malformed."""
    after = metadata.get("after")
    follow = metadata.get("follow")
    targets = metadata.get("targets")
    timeout = metadata.get("timeout")
    retries = metadata.get("retries", 0)
    if targets is not None and (not isinstance(targets, list) or not all(isinstance(t, int) for t in targets)):
        raise ValueError("targets must be a list of engine ids")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout < 0):
        raise ValueError("timeout must be a non-negative number")
    if not isinstance(retries, int) or retries < 0:
        raise ValueError("retries must be a non-negative integer")
    return TaskSpec(
        task_id=msg_id,
        after=Dependency.from_dict(after) if after else None,
        follow=Dependency.from_dict(follow) if follow else None,
        targets=targets,
        timeout=float(timeout) if timeout else None,
        retries=retries,
    )


class TaskScheduler:
    """The load-balancing scheduler process."""

    def __init__(self, key: str, signature_scheme: str, scheme: str, hwm: int, ip: str) -> None:
        self.session = Session(key, signature_scheme, username="scheduler")
        self.core = TaskSchedulerState(scheme, hwm, random.Random())
        self.ip = ip
        self.context = zmq.Context()
        self.requests: dict[str, _Request] = {}
        self.engine_idents: dict[int, bytes] = {}
        self.engine_ids: dict[bytes, int] = {}
        self.hub_pending: set[str] = set()
        #: notes for the hub not sent yet: frames, and the frame count of each note
        self._notes: list[Any] = []
        self._note_sizes: list[int] = []
        #: when the held-back notes and replies must go
        self.hold_back = HoldBack()
        #: replies for clients not sent yet (they go out with the notes)
        self._replies: list[list[Any]] = []
        self.heap = HeapTrimmer(min_idle=IDLE_BEFORE_TRIM)
        #: requests received but not handled yet: [client_ident, DELIM, ...] each
        self._inbox: deque[list[Any]] = deque()
        #: sockets to ask again before sleeping (see socketio.Waiter)
        self._recheck: set[zmq.Socket[Any]] = set()
        self._stopping = False
        self.dropped = 0

    # -- setup ------------------------------------------------------------

    def bind(self) -> dict[str, int]:
        self.client_router = self.context.socket(zmq.ROUTER)
        self.engine_router = self.context.socket(zmq.ROUTER)
        ports = {}
        for name, sock in (("task", self.client_router), ("task_engine", self.engine_router)):
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, 0)
            sock.setsockopt(zmq.RCVHWM, 0)
            ports[name] = sock.bind_to_random_port(f"tcp://{self.ip}")
        return ports

    def connect_hub(self, monitor_url: str, registration_url: str, notification_url: str) -> None:
        self.monitor = self.context.socket(zmq.PUB)
        self.monitor.setsockopt(zmq.SNDHWM, 0)
        self.monitor.setsockopt(zmq.LINGER, 1000)
        self.monitor.connect(monitor_url)
        self.hub = self.context.socket(zmq.DEALER)
        self.hub.setsockopt(zmq.LINGER, 0)
        self.hub.connect(registration_url)
        self.notifications = self.context.socket(zmq.SUB)
        self.notifications.setsockopt(zmq.SUBSCRIBE, b"")
        self.notifications.connect(notification_url)

    def stop(self) -> None:
        self._stopping = True

    # -- loop -------------------------------------------------------------

    def run(self, parent_pid: int | None = None) -> None:
        handlers = {
            # engines first: a reply frees an engine, and the next task should not wait behind a client's burst
            self.engine_router: self._on_engine,
            self.client_router: self._on_client,
            self.hub: self._on_hub,
            self.notifications: self._on_notification,
        }
        waiter = Waiter(handlers)
        woken: list[zmq.Socket[Any]] = waiter.sockets  # read everything before the first sleep
        self._ask_hub("connection_request", {})
        next_resync_at = time.monotonic() + ENGINE_RESYNC_PERIOD
        next_requery_at = time.monotonic() + HUB_REQUERY_PERIOD
        while not self._stopping:
            now = time.monotonic()
            deadline = self.core.next_deadline()
            if deadline is not None and now >= deadline:
                self._execute(self.core.tick(now))
                deadline = self.core.next_deadline()
            if now >= next_resync_at:
                if parent_pid is not None and os.getppid() != parent_pid:
                    log.error("the controller is gone; exiting")
                    return
                self._ask_hub("connection_request", {})
                next_resync_at = now + ENGINE_RESYNC_PERIOD
            if self.hub_pending and now >= next_requery_at:
                self._ask_hub("status_request", {"msg_ids": sorted(self.hub_pending)})
                next_requery_at = now + HUB_REQUERY_PERIOD
            for sock, handler in handlers.items():
                if sock in woken:
                    handler()
            if self._inbox:
                # A client's burst is taken a few requests at a time, with the engines'
                # replies read in between: an engine waits for its next task behind
                # a few requests, not behind a whole burst.
                self._take_requests(REQUESTS_PER_ROUND)
                if self._inbox:
                    self._recheck.add(self.engine_router)
            if self.hold_back.is_due(time.monotonic(), in_flight=bool(self.requests)):
                self._flush_notes()
            self.heap.maybe_trim(now)  # a second after the last request or reply: give the memory back
            if self._recheck:
                # Sent on, or not read to the end: ask these again before sleeping (see Waiter).
                woken = [sock for sock in handlers if sock in self._recheck]
                self._recheck.clear()
                continue
            wake_at = min(next_resync_at, deadline if deadline is not None else next_resync_at)
            if self.hold_back.due_at is not None:
                wake_at = min(wake_at, self.hold_back.due_at)
            # whole milliseconds, rounded up: a 0 would spin until wake_at
            timeout_ms = max(0, math.ceil((wake_at - time.monotonic()) * 1000))
            woken = waiter.wait(timeout_ms) or waiter.sockets  # a time-out re-reads everything
        self._flush_notes()  # stopping: what is held back still goes out

    def _drain(self, sock: zmq.Socket[Any], limit: int, copy: bool = False) -> Iterator[list[Any]]:
        """The messages queued on ``sock``, at most ``limit``; if there may be more, it is read again soon."""
        count = 0
        for frames in drain(sock, limit, copy):
            count += 1
            yield frames
        if count == limit:
            self._recheck.add(sock)

    def _send(self, sock: zmq.Socket[Any], frames: list[Any]) -> None:
        send_frames(sock, frames)
        self._recheck.add(sock)  # a send may take the command that would have woken us for it

    # -- clients ----------------------------------------------------------

    def _on_client(self) -> None:
        """Queue what clients sent; :meth:`_take_requests` handles it a few at a time."""
        for frames in self._drain(self.client_router, 256):
            # [client_ident, DELIM, ...], or [client_ident, b"batch", ...]: requests each signed on its own
            requests = unbatch(frames, routing=1)
            if requests is None:
                self.dropped += 1
                log.warning("dropped a malformed batch of requests (%d so far)", self.dropped)
                continue
            self._inbox.extend(requests)

    def _take_requests(self, limit: int) -> None:
        for _ in range(min(limit, len(self._inbox))):
            self._on_client_message(self._inbox.popleft())

    def _on_client_message(self, frames: list[Any]) -> None:
        try:
            msg = self.session.deserialize(frames)
        except BufferChanged as exc:
            # authentic, but the client changed a buffer after signing: it must hear so, not wait forever
            self.dropped += 1
            changed = exc.message
            if changed.idents:
                self._fail(
                    _Request(changed.idents[0], frames, len(changed.idents) + 2),
                    changed.msg_id,
                    "BufferChanged",
                    str(exc),
                )
            return
        except ProtocolError as exc:
            self.dropped += 1
            log.warning("dropped a bad request (%d so far): %s", self.dropped, exc)
            return
        if not msg.idents:
            self.dropped += 1
            return
        self._on_request(msg, frames)

    def _on_request(self, msg: Message, frames: list[Any]) -> None:
        client_ident = msg.idents[0]
        if msg.msg_type == "abort_request":
            msg_ids = msg.content.get("msg_ids") or []
            self._execute(self.core.abort([str(m) for m in msg_ids], time.monotonic()))
            return
        request = _Request(client_ident, frames, len(msg.idents) + 2)
        self.heap.count_buffers(msg.buffers)
        if msg.msg_type not in TASK_TYPES:
            self._fail(request, msg.msg_id, "KernelError", f"the task scheduler cannot run {msg.msg_type!r} requests")
            return
        if "to" in msg.metadata:
            # A direct request (a replay from the mux): it may already have run there.
            self._fail(request, msg.msg_id, "KernelError", "a direct request cannot be load-balanced")
            return
        if msg.msg_id in self.requests or self.core.is_known(msg.msg_id):
            self.dropped += 1
            log.warning("dropped a second request with msg_id %s", msg.msg_id)
            return
        try:
            spec = parse_task_spec(msg.msg_id, msg.metadata)
        except (ValueError, TypeError, KeyError) as exc:
            self._fail(request, msg.msg_id, "InvalidDependency", f"bad task flags: {exc}")
            return
        self.requests[msg.msg_id] = request
        actions = self.core.submit(spec, time.monotonic())
        n_idents = len(msg.idents)
        first = actions[0] if actions else None
        if isinstance(first, Send) and first.task_id == msg.msg_id:
            # The common case: it goes straight to an engine. One note to the hub says both.
            engine_ident = self.engine_idents[first.engine_id]
            self._tell_hub_submitted(b"task-sent", [engine_ident, *frames[:n_idents]], frames, n_idents)
            self._send(self.engine_router, [engine_ident, *frames])
            actions = actions[1:]
        else:
            self._tell_hub_submitted(b"task-in", frames[:n_idents], frames, n_idents)
            # It waits here: small frames received without a copy can each pin a
            # whole libzmq receive batch (kilobytes), so keep copies of them instead.
            request.frames = [compact(frame) for frame in frames]
        self._execute(actions)

    def _tell_hub_submitted(self, prefix: bytes, idents: list[Any], frames: list[Any], n_idents: int) -> None:
        """A copy of the request's four header frames (no buffers: the hub needs none).

        It carries no signature of its own: the batch it travels in is signed
        as a whole (see :meth:`_flush_notes`).
        """
        first = n_idents + 2  # idents, DELIM, signature
        self._note([prefix, *idents, DELIM, b"", *frames[first : first + 4]])

    # -- engines ----------------------------------------------------------

    def _on_engine(self) -> None:
        for frames in self._drain(self.engine_router, 256):
            try:
                self._on_reply(frames)
            except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as exc:
                self.dropped += 1
                log.warning("dropped a bad reply from an engine: %s", exc)

    def _on_reply(self, frames: list[Any]) -> None:
        engine_ident = frames[0].bytes
        engine_id = self.engine_ids.get(engine_ident)
        if engine_id is None:
            raise ValueError(f"reply from an unknown engine {engine_ident!r}")
        # [engine_ident, client_ident(s)..., DELIM, signature, header, parent, metadata, content, ...]
        # (a request may carry extra routing frames; the engine echoes them all)
        try:
            _, rest = Session.split_idents(frames[1:])
        except ProtocolError:
            raise ValueError("malformed reply: no delimiter") from None
        if len(rest) < 5:
            raise ValueError("malformed reply")
        parent = jsonutil.loads(rest[2].buffer)
        metadata = jsonutil.loads(rest[3].buffer)
        task_id = str(parent["msg_id"])
        request = self.requests.get(task_id)
        if request is None:
            raise ValueError(f"reply to an unknown task {task_id}")
        request.last_reply = frames[1:]
        self.heap.count()
        self.heap.count_buffers(rest[5:])
        now = time.monotonic()
        if metadata.get("dependencies_met") is False:
            self._execute(self.core.unmet(task_id, engine_id, now))
        else:
            self._execute(self.core.finish(task_id, engine_id, metadata.get("status") == "ok", now))

    # -- the hub ----------------------------------------------------------

    def _note(self, frames: list[Any]) -> None:
        """Queue a note for the hub's monitor feed (sent by :meth:`_flush_notes`)."""
        self._notes.extend(frames)
        self._note_sizes.append(len(frames))
        if self.hold_back.hold(time.monotonic(), len(self._note_sizes)):
            self._flush_notes()

    def _flush_notes(self) -> None:
        """Replies to clients (a batch for each client with several), then the notes as one batch."""
        if len(self._replies) == 1:
            self._send(self.client_router, self._replies[0])
        elif self._replies:
            for frames in per_peer(self._replies):  # [client_ident, DELIM, ...] each
                self._send(self.client_router, frames)
        self._replies = []
        if not self._note_sizes:
            return
        batch = pack_batch(self._notes, self._note_sizes)
        # One MAC over the layout and the joined small frames vouches for the notes
        # this scheduler wrote; the replies among them keep their engines' signatures.
        send_frames(self.monitor, [SIGNED_NOTES, self.session.sign_frames(batch[1:3]), *batch])
        self._notes = []
        self._note_sizes = []
        self.hold_back.sent()

    def _ask_hub(self, msg_type: str, content: dict[str, Any]) -> None:
        self._flush_notes()  # the hub should know what we know before it answers
        self.session.send_new(self.hub, msg_type, content)
        self._recheck.add(self.hub)

    def _on_hub(self) -> None:
        for frames in self._drain(self.hub, 1000, copy=True):
            try:
                msg = self.session.deserialize(frames)
            except ProtocolError as exc:
                log.warning("dropped a bad message from the hub: %s", exc)
                continue
            if msg.msg_type == "connection_reply":
                self._sync_engines({int(k): str(v) for k, v in msg.content.get("engines", {}).items()})
            elif msg.msg_type == "status_reply":
                self._on_status(msg.content.get("tasks", {}))

    def _on_status(self, tasks: dict[str, Any]) -> None:
        now = time.monotonic()
        for msg_id, info in tasks.items():
            if msg_id not in self.hub_pending:
                continue
            status = info.get("status")
            if status == "pending":
                continue
            self.hub_pending.discard(msg_id)
            if status == "unknown":
                self._execute(self.core.external_unknown(msg_id, now))
            else:
                self._execute(self.core.external_result(msg_id, status == "ok", info.get("engine_id"), now))

    def _on_notification(self) -> None:
        for frames in self._drain(self.notifications, 1000, copy=True):
            try:
                msg = self.session.deserialize(frames, check_replay=False)
            except ProtocolError:
                continue
            if msg.msg_type == "registration_notification":
                self._add_engine(int(msg.content["id"]), str(msg.content["uuid"]))
            elif msg.msg_type == "unregistration_notification":
                self._remove_engine(int(msg.content["id"]))

    def _sync_engines(self, engines: dict[int, str]) -> None:
        for engine_id, uuid in engines.items():
            if engine_id not in self.engine_idents:
                self._add_engine(engine_id, uuid)
        for engine_id in list(self.engine_idents):
            if engine_id not in engines:
                self._remove_engine(engine_id)

    def _add_engine(self, engine_id: int, uuid: str) -> None:
        if engine_id in self.engine_idents:
            return
        ident = uuid.encode()
        self.engine_idents[engine_id] = ident
        self.engine_ids[ident] = engine_id
        log.info("engine %d joined", engine_id)
        self._execute(self.core.add_engine(engine_id, time.monotonic()))

    def _remove_engine(self, engine_id: int) -> None:
        ident = self.engine_idents.pop(engine_id, None)
        if ident is None:
            return
        self.engine_ids.pop(ident, None)
        log.info("engine %d left", engine_id)
        self._execute(self.core.remove_engine(engine_id, time.monotonic()))

    # -- actions ----------------------------------------------------------

    def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                request = self.requests[action.task_id]
                engine_ident = self.engine_idents[action.engine_id]
                self._send(self.engine_router, [engine_ident, *request.frames])
                self._note([b"task-assign", engine_ident, action.task_id.encode()])
            elif isinstance(action, Deliver):
                request = self.requests.pop(action.task_id)
                assert request.last_reply is not None, "Deliver without a reply"
                self._reply(request.last_reply)
            elif isinstance(action, Fail):
                request = self.requests.pop(action.task_id, None)
                if request is not None:
                    self._fail(request, action.task_id, action.ename, action.evalue)
            elif isinstance(action, QueryHub):
                self.hub_pending.update(action.msg_ids)
                self._ask_hub("status_request", {"msg_ids": list(action.msg_ids)})

    def _fail(self, request: _Request, task_id: str, ename: str, evalue: str) -> None:
        msg_type = reply_type(str(request.header.get("msg_type", "apply_request")))
        content = error_content(ename, evalue, "scheduler")
        metadata = {"status": "error", "engine_id": None, "engine_uuid": None, "dependencies_met": True}
        reply = self.session.msg(msg_type, content, parent=request.header, metadata=metadata)
        frames = self.session.serialize(reply, [request.client_ident])
        self._reply(frames)

    def _reply(self, frames: list[Any]) -> None:
        """Queue a reply for its client, and the hub's note of it (both sent by :meth:`_flush_notes`)."""
        self._replies.append(frames)
        self._note([b"task-out", *frames])
