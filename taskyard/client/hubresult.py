"""Results fetched from the hub's records, for msg_ids this client did not send
(or sent before it reconnected)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from taskyard.client.asyncresult import AsyncResult, MessageState, remote_error_for
from taskyard.error import TaskyardError
from taskyard.protocol.serialize import deserialize_object

if TYPE_CHECKING:
    from taskyard.client.client import Client

POLL_INTERVAL = 0.1


def hub_result(client: Client, msg_ids: list[str], is_scalar: bool = False) -> AsyncResult:
    """An AsyncResult for ``msg_ids``: this client's own pending states where it has
    them, the hub's records for the rest (polled until they finish)."""
    states: list[MessageState] = []
    remote: dict[str, MessageState] = {}
    with client.state_lock:
        for msg_id in msg_ids:
            state = client._states.get(msg_id)
            if state is None:
                state = remote.get(msg_id) or MessageState(msg_id)
                remote[msg_id] = state
            states.append(state)
    if remote:
        pending = _fetch(client, remote)
        if pending:
            threading.Thread(target=_poll, args=(client, pending), daemon=True, name="taskyard-hub-poll").start()
    return AsyncResult(client, states, "get_result", is_scalar=is_scalar)


def _fetch(client: Client, states: dict[str, MessageState]) -> dict[str, MessageState]:
    """Fill the states the hub has finished; returns those still pending."""
    reply = client._query("result_request", {"msg_ids": list(states)})
    buffers = reply.buffers
    content = reply.content
    for msg_id in content.get("missing", []):
        client._finish(states[msg_id], error=TaskyardError(f"no such task on the hub: {msg_id!r}"))
    for msg_id, result in content.get("results", {}).items():
        state = states[msg_id]
        state.report(result.get("metadata") or {})
        start, end = result["buffers"]
        _fill(client, state, result, buffers[start:end])
    return {m: states[m] for m in content.get("pending", [])}


def _fill(client: Client, state: MessageState, result: dict[str, Any], buffers: list[Any]) -> None:
    reply_content = result.get("content") or {}
    header = result.get("header") or {}
    if reply_content.get("status") == "ok":
        if header.get("msg_type") == "execute_reply":
            client._finish(state, reply_content.get("execute_result"))
        elif result.get("buffers_corrupt"):
            error = TaskyardError(f"the hub's copy of the result of {state.msg_id} failed verification")
            client._finish(state, error=error)
        elif result.get("buffers_too_large"):
            error = TaskyardError(
                f"the hub did not keep the result of {state.msg_id}: it is larger than IPController.max_result_mb"
            )
            client._finish(state, error=error)
        elif result.get("buffers_evicted"):
            client._finish(state, error=TaskyardError(f"the hub no longer holds the result of {state.msg_id}"))
        else:
            client._finish(state, deserialize_object(buffers))
    else:
        info = {k: state.metadata.get(k) for k in ("engine_id", "engine_uuid")}
        client._finish(state, error=remote_error_for(reply_content, info))


def _poll(client: Client, pending: dict[str, MessageState]) -> None:
    stop = threading.Event()
    while pending and not client._closed:
        stop.wait(POLL_INTERVAL)
        try:
            pending = _fetch(client, pending)
        except TaskyardError:
            return
