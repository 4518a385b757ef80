"""The hub's bookkeeping: engines and task records, without sockets.

Theory of operation
-------------------
Engines register in two steps. A registration request gives the engine its id
(0, 1, 2, ... in order of arrival, never reused) and makes it *pending*; the
first heartbeat echo from its heart makes it *live*, and only then are clients
told. Waiting for the heart proves the engine's sockets are connected, so the
first request a client sends to a new engine is not dropped by a ROUTER that
does not know it yet.

Every request and reply that crosses the controller is copied to the hub (the
monitor feed). :class:`TaskRecords` keeps one record per msg_id: who sent it,
which engine ran it, the timestamps (submitted, started, completed, received),
its status and, for finished tasks, the reply (content and result buffers) so
that any client can fetch any result by msg_id. The store is bounded by count
and by the bytes of result buffers it holds; the oldest finished records go
first, and a record that lost its buffers to the byte bound says so.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from taskyard.controller.heartmonitor import HeartMonitorState
from taskyard.protocol import jsonutil
from taskyard.protocol.socketio import compact, frame_nbytes

#: A pending registration expires after this many times ``max_misses`` beats.
PENDING_BEATS_FACTOR = 5


@dataclass
class EngineRecord:
    """One engine, as the hub knows it."""

    engine_id: int
    uuid: str
    registered_at: float
    is_live: bool = False
    #: the heartbeat number at registration; a pending engine that never beats expires
    registered_beat: int = 0
    #: msg_ids sent to this engine (direct or load-balanced) not yet answered
    outstanding: set[str] = field(default_factory=set)
    completed: int = 0
    #: load-balanced requests among ``outstanding``
    tasks: set[str] = field(default_factory=set)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ident(self) -> bytes:
        return self.uuid.encode()


@dataclass(slots=True)
class TaskRecord:
    """Everything the hub knows about one request.

    The reply's header, metadata and content are kept as one compact JSON
    document (a few hundred bytes, against a few kilobytes as dicts: the
    store holds up to ``max_records`` of these) and parsed when asked for.
    """

    msg_id: str
    channel: str
    client_ident: bytes
    engine_id: int | None = None
    submitted: float | None = None
    started: float | None = None
    completed: float | None = None
    received: float | None = None
    status: str = "pending"
    result_json: bytes | None = None
    result_buffers: list[Any] = field(default_factory=list)
    #: the signed digest of each result buffer (None for small ones), see Session
    result_digests: list[bytes | None] = field(default_factory=list)
    #: False until the large result buffers were hashed against their digests
    buffers_verified: bool = True
    buffers_evicted: bool = False
    #: the result's buffers were bigger than one record may keep, and were dropped
    buffers_too_large: bool = False
    #: the stored buffers did not match their signed digests, and were dropped
    buffers_corrupt: bool = False

    @property
    def is_done(self) -> bool:
        return self.status not in ("pending", "queued")

    def set_result(self, header: dict[str, Any] | None, metadata: dict[str, Any], content: dict[str, Any]) -> None:
        # orjson's bytes keep its 4 KiB working buffer; a copy is sized to fit.
        self.result_json = memoryview(jsonutil.dumps([header, metadata, content])).tobytes()

    def result_parts(self) -> tuple[dict[str, Any] | None, dict[str, Any], dict[str, Any] | None]:
        """The reply's ``(header, metadata, content)``, parsed."""
        if self.result_json is None:
            return None, {}, None
        header, metadata, content = jsonutil.loads(self.result_json)
        return header, metadata or {}, content

    def _result_part(self, index: int) -> Any:
        return self.result_parts()[index]

    @property
    def result_header(self) -> dict[str, Any] | None:
        header: dict[str, Any] | None = self._result_part(0)
        return header

    @property
    def result_metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = self._result_part(1) or {}
        return metadata

    @property
    def result_content(self) -> dict[str, Any] | None:
        content: dict[str, Any] | None = self._result_part(2)
        return content

    def nbytes(self) -> int:
        return sum(frame_nbytes(b) for b in self.result_buffers)


class TaskRecords:
    """A bounded store of :class:`TaskRecord` by msg_id."""

    def __init__(self, max_records: int = 100_000, max_bytes: int = 1 << 30, max_result_bytes: int = 64 << 20) -> None:
        self.max_records = max_records
        self.max_bytes = max_bytes
        #: a result with more buffer bytes than this is recorded without them
        self.max_result_bytes = max_result_bytes
        self._records: OrderedDict[str, TaskRecord] = OrderedDict()
        #: finished records holding result buffers, oldest first
        self._with_buffers: OrderedDict[str, int] = OrderedDict()
        #: finished records in the order they finished: eviction takes the first,
        #: in O(1), however many pending records there are
        self._done_order: OrderedDict[str, None] = OrderedDict()
        self.nbytes = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, msg_id: str) -> bool:
        return msg_id in self._records

    def get(self, msg_id: str) -> TaskRecord | None:
        return self._records.get(msg_id)

    def add(self, record: TaskRecord) -> TaskRecord:
        existing = self._records.get(record.msg_id)
        if existing is not None:
            return existing
        self._records[record.msg_id] = record
        # pending records may have held the store above its bound: catch up now
        while len(self._records) > self.max_records and self._evict_oldest():
            pass
        return record

    def _evict_oldest(self) -> bool:
        # The longest-finished record; never a pending task: its reply is still to come.
        if not self._done_order:
            return False
        msg_id, _ = self._done_order.popitem(last=False)
        self.drop(msg_id)
        self.evicted += 1
        return True

    def drop(self, msg_id: str) -> None:
        record = self._records.pop(msg_id, None)
        self._done_order.pop(msg_id, None)
        if record is not None:
            self.nbytes -= self._with_buffers.pop(msg_id, 0)

    def purge(self, msg_ids: Iterable[str] | str, engine_ids: Iterable[int] = ()) -> list[str]:
        """Drop the finished records named (``"all"``: every finished one) and the finished
        records of the engines ``engine_ids``; pending records stay. Returns the msg_ids dropped."""
        engines = set(engine_ids)
        if isinstance(msg_ids, str):
            named: set[str] = set(self._done_order) if msg_ids == "all" else {msg_ids}
        else:
            named = {str(m) for m in msg_ids}
        chosen = [
            msg_id
            for msg_id in self._done_order
            if msg_id in named or (engines and self._records[msg_id].engine_id in engines)
        ]
        for msg_id in chosen:
            self.drop(msg_id)
        return chosen

    def forget_buffers(self, msg_id: str) -> None:
        """Stop counting a record's result buffers (the caller drops them)."""
        self.nbytes -= self._with_buffers.pop(msg_id, 0)

    def finished(self, record: TaskRecord) -> None:
        """Account for a record that just finished (and for its result buffers)."""
        if record.msg_id in self._records:
            self._done_order[record.msg_id] = None
        # a second reply for the same msg_id replaces the first one's buffers
        self.nbytes -= self._with_buffers.pop(record.msg_id, 0)
        size = record.nbytes()
        if size > self.max_result_bytes:
            record.result_buffers = []
            record.result_digests = []
            record.buffers_too_large = True
            size = 0
        if size:
            self._with_buffers[record.msg_id] = size
            self.nbytes += size
        while self.nbytes > self.max_bytes and self._with_buffers:
            msg_id, size = self._with_buffers.popitem(last=False)
            self.nbytes -= size
            old = self._records.get(msg_id)
            if old is not None:
                old.result_buffers = []
                old.result_digests = []
                old.buffers_evicted = True

    def pending(self) -> list[TaskRecord]:
        return [r for r in self._records.values() if not r.is_done]

    def values(self) -> list[TaskRecord]:
        return list(self._records.values())


class HubState:
    """Engines and task records; every method is pure bookkeeping."""

    def __init__(
        self,
        max_misses: int = 3,
        max_records: int = 100_000,
        max_bytes: int = 1 << 30,
        fails_tasks: bool = False,
        max_result_bytes: int = 64 << 20,
    ) -> None:
        #: True when no Python scheduler runs (scheme ``pure``): then the hub fails
        #: the load-balanced tasks of a dead engine itself.
        self.fails_tasks = fails_tasks
        self.engines: dict[int, EngineRecord] = {}
        #: registered engines whose heart has not beaten yet
        self.pending: dict[int, EngineRecord] = {}
        self.by_uuid: dict[str, int] = {}
        self.next_id = 0
        self.hearts = HeartMonitorState(max_misses=max_misses)
        self.records = TaskRecords(max_records, max_bytes, max_result_bytes)
        #: load-balanced tasks the scheduler has not yet given to an engine
        self.unassigned: set[str] = set()
        #: counts of odd events (bad messages, unknown engines), for logs and tests
        self.counters: dict[str, int] = {}

    def count(self, what: str) -> None:
        self.counters[what] = self.counters.get(what, 0) + 1

    # -- engines ----------------------------------------------------------

    def register(self, uuid: str, info: dict[str, Any] | None = None) -> EngineRecord:
        """A registration request: a new pending engine, or ValueError if ``uuid`` is taken."""
        if uuid in self.by_uuid:
            raise ValueError(f"engine uuid {uuid!r} is already registered")
        engine = EngineRecord(self.next_id, uuid, time.time(), info=dict(info or {}), registered_beat=self.hearts.beat)
        self.next_id += 1
        self.pending[engine.engine_id] = engine
        self.engines[engine.engine_id] = engine
        self.by_uuid[uuid] = engine.engine_id
        return engine

    def heart_beat(self, ident: bytes, payload: bytes) -> EngineRecord | None:
        """An echo arrived; returns the engine if this echo made it live."""
        status = self.hearts.pong(ident, payload)
        if status == "bad":
            self.count("bad-heartbeat")
            return None
        if status == "beat":
            return None
        engine_id = self.by_uuid.get(ident.decode(errors="replace"))
        if engine_id is None:
            self.count("unknown-heart")
            return None
        engine = self.engines[engine_id]
        if engine.is_live:
            return None
        engine.is_live = True
        self.pending.pop(engine.engine_id, None)
        self.hearts.add(ident)
        return engine

    def tick(self) -> tuple[bytes, list[EngineRecord]]:
        """A heartbeat period passed: the ping to send and the engines that died."""
        ping, failed = self.hearts.tick()
        dead = []
        for ident in failed:
            engine_id = self.by_uuid.get(ident.decode(errors="replace"))
            if engine_id is not None:
                dead.append(self.engines[engine_id])
        # A registration whose heart never beat (a crashed or fake engine) expires too.
        limit = self.hearts.beat - PENDING_BEATS_FACTOR * self.hearts.max_misses
        dead.extend(e for e in self.pending.values() if e.registered_beat < limit)
        return ping, dead

    def unregister(self, engine_id: int, reason: str) -> tuple[EngineRecord, list[TaskRecord]] | None:
        """Remove an engine; its unanswered requests fail with ``EngineError``."""
        engine = self.engines.pop(engine_id, None)
        if engine is None:
            return None
        self.pending.pop(engine_id, None)
        self.by_uuid.pop(engine.uuid, None)
        self.hearts.discard(engine.ident)
        failed = []
        now = time.time()
        for msg_id in engine.outstanding:
            record = self.records.get(msg_id)
            if record is None or record.is_done or (msg_id in engine.tasks and not self.fails_tasks):
                # Load-balanced tasks are the scheduler's: it retries them or fails them itself.
                continue
            record.status = "error"
            record.completed = now
            record.set_result(
                None,
                {},
                {
                    "status": "error",
                    "ename": "EngineError",
                    "evalue": f"engine {engine_id} died before replying ({reason})",
                    "traceback": "",
                    "engine_info": {"engine_id": engine_id, "engine_uuid": engine.uuid},
                },
            )
            self.records.finished(record)
            failed.append(record)
        engine.outstanding.clear()
        engine.tasks.clear()
        return engine, failed

    def live_engines(self) -> dict[int, str]:
        return {e.engine_id: e.uuid for e in self.engines.values() if e.is_live}

    def live_engine_pids(self) -> dict[int, Any]:
        """Each live engine's process id as it registered it (None if it sent none)."""
        return {e.engine_id: e.info.get("pid") for e in self.engines.values() if e.is_live}

    def engine_by_ident(self, ident: bytes) -> EngineRecord | None:
        engine_id = self.by_uuid.get(ident.decode(errors="replace"))
        return None if engine_id is None else self.engines[engine_id]

    # -- task records -----------------------------------------------------

    def request_seen(
        self,
        channel: str,
        client_ident: bytes,
        engine_ident: bytes | None,
        header: dict[str, Any],
        metadata: dict[str, Any],
    ) -> TaskRecord:
        """A request went to an engine (direct) or into the task queue (engine unknown yet)."""
        msg_id = str(header["msg_id"])
        record = self.records.get(msg_id)
        if record is None:
            record = self.records.add(
                TaskRecord(
                    msg_id=msg_id,
                    channel=channel,
                    client_ident=client_ident,
                    submitted=_float(header.get("date")),
                )
            )
        if engine_ident is not None:
            self.assigned(msg_id, engine_ident, channel == "task")
        elif channel == "task" and not record.is_done and record.engine_id is None:
            self.unassigned.add(msg_id)
        return record

    def assigned(self, msg_id: str, engine_ident: bytes, is_task: bool) -> None:
        """A request was handed to an engine."""
        record = self.records.get(msg_id)
        engine = self.engine_by_ident(engine_ident)
        if record is None or engine is None:
            self.count("assigned-unknown")
            return
        if record.is_done:
            record.engine_id = engine.engine_id
            return  # a start notice that arrived after the reply itself
        previous = self.engines.get(record.engine_id) if record.engine_id is not None else None
        if previous is not None and previous is not engine:
            # Re-routed (the first engine raised UnmetDependency, or a retry): it is no longer there.
            previous.outstanding.discard(msg_id)
            previous.tasks.discard(msg_id)
        record.engine_id = engine.engine_id
        engine.outstanding.add(msg_id)
        if is_task:
            engine.tasks.add(msg_id)
            self.unassigned.discard(msg_id)

    def reply_seen(
        self,
        engine_ident: bytes | None,
        header: dict[str, Any],
        parent_header: dict[str, Any],
        metadata: dict[str, Any],
        content: dict[str, Any],
        buffers: list[Any],
        digests: list[bytes | None] | None = None,
        buffers_verified: bool = True,
    ) -> TaskRecord | None:
        """A reply came back from an engine (or from the scheduler, for tasks it failed).

        ``digests`` and ``buffers_verified`` come from the Session: the hub takes
        large buffers without hashing them and checks them when it serves them.
        """
        msg_id = parent_header.get("msg_id")
        if not isinstance(msg_id, str):
            self.count("reply-without-parent")
            return None
        record = self.records.get(msg_id)
        if record is None:
            # The request fell out of the store (or predates this hub): keep the reply anyway.
            record = self.records.add(
                TaskRecord(msg_id=msg_id, channel="?", client_ident=b"", submitted=_float(parent_header.get("date")))
            )
        was_done = record.is_done
        engine = self.engine_by_ident(engine_ident) if engine_ident else None
        if engine is not None:
            record.engine_id = engine.engine_id
            engine.outstanding.discard(msg_id)
            engine.tasks.discard(msg_id)
            if not was_done:  # a repeated reply is not more work done
                engine.completed += 1
        self.unassigned.discard(msg_id)
        record.set_result(header, metadata, content)
        record.result_buffers = [compact(b) for b in buffers]
        record.result_digests = list(digests or [])
        record.buffers_verified = buffers_verified
        record.buffers_corrupt = False
        record.buffers_too_large = False
        record.started = _float(metadata.get("started"))
        record.completed = _float(metadata.get("completed")) or _float(header.get("date"))
        record.status = str(content.get("status", "ok"))
        self.records.finished(record)
        return record

    def check_stored_buffers(self, record: TaskRecord, verify: Callable[[list[Any], list[bytes | None]], bool]) -> bool:
        """Hash a stored result's large buffers (once) before they are passed on.

        ``verify`` is :meth:`Session.verify_buffers`. Buffers that do not match
        their signed digests are dropped and the record says so; returns False then.
        """
        if record.buffers_verified:
            return not record.buffers_corrupt
        record.buffers_verified = True
        if len(record.result_digests) == len(record.result_buffers) and verify(
            record.result_buffers, record.result_digests
        ):
            return True
        self.count("corrupt-result-buffers")
        self.records.forget_buffers(record.msg_id)
        record.result_buffers = []
        record.result_digests = []
        record.buffers_corrupt = True
        return False

    def queue_status(self, engine_ids: list[int] | None = None) -> dict[Any, Any]:
        """ipyparallel's shape: ``{engine_id: {"queue", "completed", "tasks"}, "unassigned": n}``."""
        status: dict[Any, Any] = {}
        for engine_id, engine in sorted(self.engines.items()):
            if engine_ids is not None and engine_id not in engine_ids:
                continue
            status[engine_id] = {
                "queue": len(engine.outstanding) - len(engine.tasks),
                "completed": engine.completed,
                "tasks": len(engine.tasks),
            }
        status["unassigned"] = len(self.unassigned)
        return status


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
