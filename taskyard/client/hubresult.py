"""Results fetched from the hub's records, for msg_ids this client did not send
(or sent before it reconnected).

This module talks to the client only through :class:`HubLink`, the few public
methods a :class:`~taskyard.client.client.Client` offers for it; what a stored
result means is :func:`~taskyard.client.request_book.stored_outcome`'s rule,
which never raises, so every state fetched here ends, with an error if need be.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from taskyard.client.asyncresult import AsyncResult
from taskyard.client.message_state import MessageState
from taskyard.client.request_book import stored_outcome
from taskyard.error import ClientClosed, TaskyardError
from taskyard.protocol.session import Message

log = logging.getLogger("taskyard.client")

POLL_INTERVAL = 0.1


class HubLink(Protocol):
    """What hub-served results need from a client."""

    state_lock: Any

    @property
    def is_closed(self) -> bool: ...

    def pending_state(self, msg_id: str) -> MessageState | None: ...

    def end_request(self, state: MessageState, value: Any = None, error: BaseException | None = None) -> None: ...

    def query_hub(self, msg_type: str, content: dict[str, Any], timeout: float = 10.0) -> Message: ...


class AsyncHubResult(AsyncResult):
    """An AsyncResult at least part of which is served by the hub's records (a
    request another client sent, or one this client sent and already
    resolved), as ipyparallel's class of that name; it behaves as any AsyncResult."""


def hub_result(client: HubLink, msg_ids: list[str], is_scalar: bool = False) -> AsyncResult:
    """An AsyncResult for ``msg_ids``: this client's own pending states where it has
    them, the hub's records for the rest (polled until they finish); an
    :class:`AsyncHubResult` when the hub serves any of them."""
    states: list[MessageState] = []
    remote: dict[str, MessageState] = {}
    for msg_id in msg_ids:
        state = client.pending_state(msg_id)
        if state is None:
            state = remote.get(msg_id) or MessageState(msg_id)
            remote[msg_id] = state
        states.append(state)
    if remote:
        try:
            pending = _fetch(client, remote)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, every state ends
            _end_all(client, remote, exc)
            pending = {}
        if pending:
            threading.Thread(target=_poll, args=(client, pending), daemon=True, name="taskyard-hub-poll").start()
    kind = AsyncHubResult if remote else AsyncResult
    return kind(client, states, "get_result", is_scalar=is_scalar)  # type: ignore[arg-type]


def _fetch(client: HubLink, states: dict[str, MessageState]) -> dict[str, MessageState]:
    """Fill the states the hub has finished; returns those still pending."""
    reply = client.query_hub("result_request", {"msg_ids": list(states)})
    buffers = reply.buffers
    content = reply.content
    for msg_id in content.get("missing", []):
        client.end_request(states[msg_id], error=TaskyardError(f"no such task on the hub: {msg_id!r}"))
    for msg_id, result in content.get("results", {}).items():
        state = states[msg_id]
        try:
            start, end = result["buffers"]
            parts = buffers[start:end]
        except (KeyError, TypeError, ValueError):
            parts = []
        value, error = stored_outcome(state, result, parts)
        client.end_request(state, value, error)
    return {m: states[m] for m in content.get("pending", [])}


def _end_all(client: HubLink, states: dict[str, MessageState], error: BaseException) -> None:
    for state in states.values():
        client.end_request(state, error=error)


def _poll(client: HubLink, pending: dict[str, MessageState]) -> None:
    stop = threading.Event()
    while pending:
        if client.is_closed:
            _end_all(client, pending, ClientClosed("the client was closed while waiting for the hub's result"))
            return
        stop.wait(POLL_INTERVAL)
        try:
            pending = _fetch(client, pending)
        except Exception as exc:  # noqa: BLE001 - the controller is lost, a query timed out, a bad answer: all end the states
            log.warning("get_result: the hub's records are out of reach: %s", exc)
            _end_all(client, pending, exc)
            return
