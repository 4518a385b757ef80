"""ipyparallel's helper modules user code imports: taskyard.util and taskyard.serialize."""

from __future__ import annotations

import numpy as np
import zmq

from taskyard.serialize import deserialize_object, serialize_object
from taskyard.util import disambiguate_url, interactive


def test_disambiguate_url_makes_wildcards_connectable() -> None:
    assert disambiguate_url("tcp://*:5555") == "tcp://127.0.0.1:5555"
    assert disambiguate_url("tcp://0.0.0.0:5555", "10.1.2.3") == "tcp://10.1.2.3:5555"
    assert disambiguate_url("tcp://0.0.0.0:5555", "127.0.0.1") == "tcp://127.0.0.1:5555"
    assert disambiguate_url("tcp://192.168.0.9:1") == "tcp://192.168.0.9:1"  # a real address stays
    assert disambiguate_url("ipc:///tmp/sock") == "ipc:///tmp/sock"
    assert callable(interactive)


def test_serialize_object_frames_cross_a_real_socket() -> None:
    ctx = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    try:
        port = a.bind_to_random_port("tcp://127.0.0.1")
        b.connect(f"tcp://127.0.0.1:{port}")
        value = {"x": np.arange(100_000), "label": "engine 3"}
        a.send_multipart(serialize_object(value, buffer_threshold=1024))
        assert b.poll(5000)
        obj, rest = deserialize_object(b.recv_multipart(copy=False))
        assert rest == [] and obj["label"] == "engine 3" and np.array_equal(obj["x"], value["x"])
    finally:
        a.close(0)
        b.close(0)
        ctx.term()
