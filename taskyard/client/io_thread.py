"""The client's IO thread: the one owner of its sockets.

A caller's thread signs a request and hands its frames over with
:meth:`ClientIO.enqueue` (a deque, plus one wake-up message per burst on an
inproc PAIR socket). The IO thread sends what is queued, receives what
arrives, and turns each arrival into an event of the client's request book
(:mod:`taskyard.client.request_book`): a reply, a reply with a changed buffer,
output, a notification. While requests are pending it also runs the
:mod:`~taskyard.client.controller_watch` (probes, and giving a silent
controller up).

If the thread dies (a socket broken under it, a bug), every pending request
fails with :class:`~taskyard.error.ClientClosed` before it exits: no caller is
left waiting on a thread that is gone.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import zmq

from taskyard.client.message_state import SendTracker
from taskyard.error import BufferChanged, MessageTooLarge, ProtocolError, ResultDecodeError, TimeoutError
from taskyard.heap import HeapTrimmer
from taskyard.protocol import connection
from taskyard.protocol.batch import batch_or_single, cut, unbatch
from taskyard.protocol.session import Message
from taskyard.protocol.socketio import drain, send_frames, send_frames_tracked

if TYPE_CHECKING:
    from taskyard.client.client import Client

log = logging.getLogger("taskyard.client")

#: The most requests the IO thread packs into one batch for the task channel.
MAX_BATCH = 256


class ClientIO:
    """The IO thread of one :class:`~taskyard.client.client.Client` and its sockets."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.session = client.session
        features = client.features
        #: whether the task channel takes several requests in one batch: the Python
        #: scheduler unpacks a batch and balances each request; the pure queue
        #: hands a batch whole to one engine, so a burst is spread in one batch per engine
        self._batch_tasks = "batch" in features or "engine-batch" in features
        self._spread_batches = "engine-batch" in features
        #: Once idle for a second after any reply: ``import taskyard`` keeps freed
        #: memory in the heap (see heap.keep_large_buffers), the user's own included.
        self._heap = HeapTrimmer(min_events=1)
        self._outbox: deque[tuple[str, list[Any], SendTracker | None]] = deque()
        self._wake_pending = False
        self._stopping = False
        self.context = client.context
        self._wake_url = f"inproc://taskyard-client-wake-{id(self)}"
        self._wake_lock = threading.Lock()
        self._wake_in = self.context.socket(zmq.PAIR)
        self._wake_in.bind(self._wake_url)
        self._wake_out = self.context.socket(zmq.PAIR)
        self._wake_out.connect(self._wake_url)
        self.sockets: dict[str, zmq.Socket[Any]] = {}
        #: Why the thread could not start, or died.
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="taskyard-client-io", daemon=True)

    # -- from the callers' threads ---------------------------------------

    def start(self, timeout: float) -> BaseException | None:
        """Start the thread and connect; returns why that failed, if it did."""
        self.thread.start()
        if not self._ready.wait(timeout):
            return TimeoutError("client IO thread did not start")
        return self.error

    def enqueue(self, channel: str, frames: list[Any], tracker: SendTracker | None = None) -> None:
        """Queue frames for ``channel``; ``tracker`` (if any) learns when they are sent."""
        self._outbox.append((channel, frames, tracker))
        if self._wake_pending:
            return
        # One wake-up per batch: the IO thread clears the flag before draining.
        self._wake_pending = True
        self._wake()

    def _wake(self) -> None:
        with self._wake_lock:
            try:
                self._wake_out.send(b"", zmq.NOBLOCK)
            except (zmq.Again, zmq.ZMQError):
                pass

    def stop(self, timeout: float) -> None:
        """Ask the thread to finish and wait up to ``timeout`` seconds for it."""
        self._stopping = True
        self._wake()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def close(self) -> None:
        """Close the callers' end of the wake-up pair (after :meth:`stop`)."""
        self._wake_out.close(linger=0)

    def fail_unsent(self, error: BaseException) -> None:
        """Tell the trackers of frames that will never be sent why."""
        while self._outbox:
            try:
                _, _, tracker = self._outbox.popleft()
            except IndexError:
                break
            if tracker is not None:
                tracker.handed_over([], error)

    # -- on the IO thread -------------------------------------------------

    def _run(self) -> None:
        try:
            sockets = self._connect()
        except BaseException as exc:  # noqa: BLE001 - handed to the constructor
            self.error = exc
            self._ready.set()
            return
        self.sockets = sockets
        self._ready.set()
        try:
            self._serve(sockets)
        except BaseException as exc:  # noqa: BLE001 - a dead IO thread must fail every waiter, not hang them
            log.error("the client's IO thread died; every pending result fails", exc_info=True)
            self.error = exc
            self.client._end_everything(f"the client's IO thread died ({type(exc).__name__}: {exc}); make a new Client")
        finally:
            for sock in sockets.values():
                sock.close(linger=0)
            self._wake_in.close(linger=0)

    def _serve(self, sockets: dict[str, zmq.Socket[Any]]) -> None:
        poller = zmq.Poller()
        for sock in sockets.values():
            poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_in, zmq.POLLIN)
        by_socket = {sock: name for name, sock in sockets.items()}
        watch = self.client._watch
        book = self.client._book
        watch.heard(time.monotonic())
        while not self._stopping:
            events = poller.poll(int(watch.next_tick_in() * 1000))
            now = time.monotonic()
            if not events:
                self._heap.maybe_trim(now)  # idle for a second after a burst
            for sock, _ in events:
                if sock is self._wake_in:
                    self._flush_outbox(sockets)
                else:
                    watch.heard(now)
                    self._receive(by_socket[sock], sock)
            verdict = watch.tick(now, len(book) > 0)
            if verdict == "probe":
                self.session.send(sockets["registration"], self.session.msg("ping_request"))
            elif verdict == "lost":
                self.client._controller_lost(
                    f"the controller sent nothing for {watch.timeout:g} s (controller_timeout)"
                )

    def _connect(self) -> dict[str, zmq.Socket[Any]]:
        info = self.client.connection_info
        sockets: dict[str, zmq.Socket[Any]] = {}
        for name in ("mux", "control", "task", "registration"):
            if name not in info:
                continue
            sock = self.context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            # libzmq's own identities are a counter anyone can guess; nobody should be
            # able to address our replies from the engine side of a queue.
            sock.setsockopt(zmq.IDENTITY, b"client-" + os.urandom(12))
            sock.connect(connection.url(info, name))
            sockets[name] = sock
        for name in ("iopub", "notification"):
            sock = self.context.socket(zmq.SUB)
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(connection.url(info, name))
            sockets[name] = sock
        return sockets

    def _flush_outbox(self, sockets: dict[str, zmq.Socket[Any]]) -> None:
        while True:
            try:
                self._wake_in.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
        self._wake_pending = False
        tasks: list[list[Any]] = []
        while self._outbox:
            channel, frames, tracker = self._outbox.popleft()
            if tracker is not None:
                if tasks:  # keep the order
                    self._send_tasks(sockets["task"], tasks)
                    tasks = []
                tracker.handed_over(send_frames_tracked(sockets[channel], frames))
            elif channel == "task" and self._batch_tasks:
                tasks.append(frames)
                if len(tasks) == MAX_BATCH:
                    self._send_tasks(sockets["task"], tasks)
                    tasks = []
            else:
                send_frames(sockets[channel], frames)
        if tasks:
            self._send_tasks(sockets["task"], tasks)

    def _send_tasks(self, sock: zmq.Socket[Any], requests: list[list[Any]]) -> None:
        if self._spread_batches:
            # The queue deals messages to the engines in turn: as many batches as engines
            # give each engine the share it would have had one request at a time.
            for part in cut(requests, len(self.client._engines)):
                send_frames(sock, batch_or_single(part))
        else:
            send_frames(sock, batch_or_single(requests))

    def _receive(self, channel: str, sock: zmq.Socket[Any]) -> None:
        for frames in drain(sock, 1000):
            # on the task channel, replies held back for us may come as a batch: each is checked as if alone
            replies = unbatch(frames) if channel == "task" else [frames]
            if replies is None:
                log.warning("dropped a malformed batch of replies on %s", channel)
                continue
            for reply in replies:
                self._receive_one(channel, reply)

    def _receive_one(self, channel: str, frames: list[Any]) -> None:
        published = channel in ("iopub", "notification")
        try:
            # Published messages are not replay-checked: every client sees the same ones.
            msg = self.session.deserialize(frames, check_replay=not published, answer_oversized=not published)
        except MessageTooLarge as exc:
            # authentic, but too large to read: the request it answers ends, saying so
            outcome = self.client._book.on_broken_reply(exc.message, ResultDecodeError(str(exc)))
            if outcome is not None:
                self.client._finish(*outcome)
            else:
                log.warning("dropped a message on %s: %s", channel, exc)
            return
        except BufferChanged as exc:
            # authentic headers, a changed buffer: the request it answers ends with the error
            if channel not in ("iopub", "notification"):
                outcome = self.client._book.on_broken_reply(exc.message, BufferChanged(str(exc)))
                if outcome is not None:
                    self.client._finish(*outcome)
                    return
            log.warning("dropped a message on %s: %s", channel, exc)
            return
        except ProtocolError as exc:
            log.warning("dropped a bad message on %s: %s", channel, exc)
            return
        try:
            if channel == "iopub":
                self.client._on_iopub(msg)
            elif channel == "notification":
                self.client._on_notification(msg)
            else:
                self._on_reply(channel, msg)
        except (KeyError, TypeError, ValueError, ProtocolError) as exc:
            log.warning("dropped a bad %s on %s: %s", msg.msg_type, channel, exc)

    def _on_reply(self, channel: str, msg: Message) -> None:
        self._heap.count()
        self._heap.count_buffers(msg.buffers)
        outcome = self.client._book.on_reply(channel, msg)  # one dict.pop: no lock (see request_book)
        if outcome is None:
            log.debug("reply to an unknown request %s on %s", msg.parent_id, channel)
            return
        self.client._finish(*outcome)
