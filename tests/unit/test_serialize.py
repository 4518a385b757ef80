"""Functions, arguments and results to frames and back, and the function pickle cache.

Functions that must be pickled *by value* (as a notebook's are) are made with
``exec`` in a namespace whose module is not importable; functions defined in
this file are importable and cloudpickle would send them by name.
"""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle
import numpy as np
import pytest

from taskyard.error import ProtocolError
from taskyard.protocol import serialize
from taskyard.protocol.reference import Reference
from taskyard.protocol.serialize import (
    INLINE_THRESHOLD,
    FunctionPickleCache,
    deserialize_object,
    pack_apply,
    serialize_object,
    unpack_apply,
)
from taskyard.protocol.session import Session


def over_the_wire(frames: list[Any]) -> list[Any]:
    """What a receiver gets: every frame a fresh, writable, separate buffer."""
    return [bytearray(memoryview(f).cast("B")) for f in frames]


def by_value(source: str, module: str = "not_an_importable_module") -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": module}
    exec(source, namespace)
    return namespace


def call_pickled(data: bytes, *args: Any) -> Any:
    return pickle.loads(data)(*args)


# -- apply requests -------------------------------------------------------------


def add(a: int, b: int = 10) -> int:
    return a + b


def test_plain_function_args_kwargs() -> None:
    frames = pack_apply(add, (1,), {"b": 2})
    assert len(frames) == 2
    f, args, kwargs = unpack_apply(over_the_wire(frames))
    assert f(*args, **kwargs) == 3
    assert args == (1,) and kwargs == {"b": 2}


def test_lambda_and_closure_by_value() -> None:
    offset = 5

    def closure(x: int) -> int:
        return x + offset

    namespace = by_value("square = lambda x: x * x\n")
    for function, expected in ((closure, 12), (namespace["square"], 49)):
        f, args, kwargs = unpack_apply(over_the_wire(pack_apply(function, (7,))))
        assert f is not function
        assert f(*args, **kwargs) == expected


def test_function_arguments_travel_as_cached_pickles_of_their_own() -> None:
    # view.map sends (f, chunk) to a runner: f must not be re-pickled for every chunk.
    namespace = by_value("square = lambda x: x * x\ncube = lambda x: x ** 3\n")
    square = namespace["square"]
    hits = serialize._function_cache.hits
    received = []
    for chunk in ([1, 2], [3, 4], [5]):
        frames = pack_apply(add, (square, chunk))
        assert len(frames) == 3  # the runner, the (args, kwargs) pickle, square's own pickle
        received.append(unpack_apply(over_the_wire(frames)))
    assert serialize._function_cache.hits >= hits + 2
    for (f, (g, chunk), kwargs), expected in zip(received, ([1, 4], [9, 16], [25]), strict=True):
        assert f is add and kwargs == {}  # importable: by reference
        assert callable(g) and [g(x) for x in chunk] == expected
    # a closure-free function is unpickled once per engine, so every chunk gets the same object
    assert received[0][1][0] is received[1][1][0]
    # two functions in one call keep their places
    f, (a, b, n), _ = unpack_apply(over_the_wire(pack_apply(add, (square, namespace["cube"], 3))))
    assert (a(n), b(n)) == (9, 27)


def test_no_args_and_none_kwargs() -> None:
    f, args, kwargs = unpack_apply(over_the_wire(pack_apply(add, (), None)))
    assert args == () and kwargs == {}


def test_small_array_stays_inline() -> None:
    small = np.arange(INLINE_THRESHOLD // 8 - 1, dtype=np.float64)
    frames = pack_apply(add, (small,))
    assert len(frames) == 2
    _, args, _ = unpack_apply(over_the_wire(frames))
    assert np.array_equal(args[0], small)


@pytest.mark.parametrize("order", ["C", "F"])
def test_large_array_goes_out_of_band_and_comes_back_as_a_view(order: str) -> None:
    array = np.asarray(np.arange(300 * 200, dtype=np.float64).reshape(300, 200), order=order)
    frames = pack_apply(add, (array,), {"other": array[:2, :2].copy()})
    assert len(frames) == 3, "one frame for the large array, the small one stays inline"
    assert memoryview(frames[2]).nbytes == array.nbytes
    received = over_the_wire(frames)
    _, args, kwargs = unpack_apply(received)
    got = args[0]
    assert np.array_equal(got, array)
    assert got.flags.f_contiguous if order == "F" else got.flags.c_contiguous
    assert np.shares_memory(got, np.frombuffer(received[2], dtype=np.uint8)), "copied instead of viewed"
    received[2][:8] = b"\xff" * 8
    assert got.flat[0] != array.flat[0]
    assert np.array_equal(kwargs["other"], array[:2, :2])


def test_several_large_buffers_keep_their_order() -> None:
    one = np.full(20_000, 1, dtype=np.int64)
    two = np.full(30_000, 2, dtype=np.int32)
    raw = bytes(range(256)) * 400
    view = memoryview(bytearray(b"v" * 100_000))
    frames = pack_apply(add, (one, raw, two), {"view": view, "three": np.full(10_000, 3.0)})
    assert len(frames) == 2 + 5
    _, args, kwargs = unpack_apply(over_the_wire(frames))
    assert np.array_equal(args[0], one) and np.array_equal(args[2], two)
    assert args[1] == raw
    assert np.array_equal(kwargs["three"], np.full(10_000, 3.0))
    assert bytes(kwargs["view"]) == bytes(view)


def test_large_bytes_and_memoryview_args_become_frames() -> None:
    payload = b"x" * INLINE_THRESHOLD
    view = memoryview(b"y" * (INLINE_THRESHOLD * 2))
    frames = pack_apply(add, (payload,), {"view": view})
    assert len(frames) == 4
    assert frames[2] is payload and frames[3] is view, "sent without a copy"
    received = over_the_wire(frames)
    _, args, kwargs = unpack_apply(received)
    assert type(args[0]) is bytes and args[0] == payload
    assert type(kwargs["view"]) is memoryview and bytes(kwargs["view"]) == bytes(view)
    received[3][0] = ord("z")
    assert bytes(kwargs["view"][:1]) == b"z", "the memoryview is a view on the frame"


def test_small_bytes_and_memoryview_stay_inline() -> None:
    frames = pack_apply(add, (b"abc", memoryview(b"def")))
    assert len(frames) == 2
    _, args, _ = unpack_apply(over_the_wire(frames))
    assert args[0] == b"abc" and bytes(args[1]) == b"def"


def test_non_contiguous_large_memoryview_can_still_be_signed_and_sent() -> None:
    array = np.arange(100_000, dtype=np.int64)
    strided = memoryview(array)[::2]
    frames = pack_apply(add, (strided,))
    session = Session(b"key")
    session.serialize(session.msg("apply_request", buffers=frames))
    _, args, _ = unpack_apply(over_the_wire(frames))
    assert bytes(args[0]) == array[::2].tobytes()


def test_apply_frames_survive_a_signed_session_round_trip() -> None:
    array = np.arange(50_000, dtype=np.float32)
    frames = pack_apply(add, (array, b"b" * 100_000))
    sender, receiver = Session(b"key"), Session(b"key")
    wire = sender.serialize(sender.msg("apply_request", buffers=frames))
    msg = receiver.deserialize(over_the_wire(wire))
    _, args, _ = unpack_apply(msg.buffers)
    assert np.array_equal(args[0], array) and args[1] == b"b" * 100_000


def test_unpack_apply_needs_two_frames() -> None:
    with pytest.raises(ProtocolError, match="at least 2"):
        unpack_apply([b"only one"])


@pytest.mark.parametrize(
    "frames",
    [
        [b"garbage", b"garbage"],
        [pickle.dumps(add), b"\x80\x05garbage"],
        [pickle.dumps(add), pickle.dumps(42)],  # not an (args, kwargs) pair
        [pickle.dumps(add), pickle.dumps((5, {}))],  # args not iterable
        [pickle.dumps(add), pickle.dumps(((), []))],  # kwargs not a dict
        [pickle.dumps(add), cloudpickle.dumps(((serialize._RawBuffer(-3, True),), {}))],  # no such frame
        [pickle.dumps(add), pickle.dumps((), protocol=5)],
    ],
    ids=["garbage", "truncated", "not-pair", "args", "kwargs", "raw-index", "empty"],
)
def test_unpickle_errors_are_protocol_errors_with_cause(frames: list[Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        unpack_apply(frames)
    assert info.value.__cause__ is not None


# -- results ------------------------------------------------------------------


def test_serialize_object_round_trip_plain_values() -> None:
    value = {"a": [1, 2.5, "x"], "b": (None, True), "c": {1, 2}}
    frames = serialize_object(value)
    assert len(frames) == 1
    assert deserialize_object(over_the_wire(frames)) == value


def test_serialize_object_large_arrays_out_of_band() -> None:
    big = np.ones((512, 256))
    result = {"big": big, "small": np.zeros(3)}
    frames = serialize_object(result)
    assert len(frames) == 2
    received = over_the_wire(frames)
    got = deserialize_object(received)
    assert np.array_equal(got["big"], big) and np.array_equal(got["small"], np.zeros(3))
    assert np.shares_memory(got["big"], np.frombuffer(received[1], dtype=np.uint8))


def test_serialize_object_bytes_and_bytearray_round_trip() -> None:
    for data in (bytearray(b"q" * (INLINE_THRESHOLD + 1)), b"r" * (INLINE_THRESHOLD + 1)):
        got = deserialize_object(over_the_wire(serialize_object(data)))
        assert type(got) is type(data) and got == data


def test_deserialize_object_errors() -> None:
    with pytest.raises(ProtocolError, match="no frames"):
        deserialize_object([])
    with pytest.raises(ProtocolError) as info:
        deserialize_object([b"not a pickle"])
    assert info.value.__cause__ is not None
    big = serialize_object(np.ones(100_000))
    with pytest.raises(ProtocolError) as info:
        deserialize_object(big[:1])  # its buffer frame is missing
    assert info.value.__cause__ is not None


# -- function pickle cache -----------------------------------------------------


def test_cache_hits_for_function_with_immutable_globals() -> None:
    namespace = by_value("import math\nSCALE = 3\nNAME = 'n'\ndef f(x, k=(1, 2)):\n    return math.floor(x * SCALE)\n")
    cache = FunctionPickleCache()
    first = cache.dumps(namespace["f"])
    assert (cache.hits, cache.misses) == (0, 1)
    for _ in range(5):
        assert cache.dumps(namespace["f"]) is first
    assert (cache.hits, cache.misses) == (5, 1)
    assert call_pickled(first, 2.5) == 7


def test_cache_misses_when_a_global_int_changes() -> None:
    namespace = by_value("SCALE = 3\ndef f(x):\n    return x * SCALE\n")
    cache = FunctionPickleCache()
    assert call_pickled(cache.dumps(namespace["f"]), 2) == 6
    namespace["SCALE"] = 4
    assert call_pickled(cache.dumps(namespace["f"]), 2) == 8
    assert cache.misses == 2 and cache.hits == 0


def test_a_cached_function_whose_defaults_closure_or_dict_change_is_pickled_again() -> None:
    namespace = by_value(
        "def make():\n    k = 1\n    def f(x=2):\n        return x * k\n"
        "    def bump():\n        nonlocal k\n        k += 1\n    return f, bump\n"
    )
    f, bump = namespace["make"]()
    cache = FunctionPickleCache()
    assert call_pickled(cache.dumps(f)) == 2
    assert call_pickled(cache.dumps(f)) == 2 and cache.hits == 1  # the fast path
    bump()
    assert call_pickled(cache.dumps(f)) == 4, "a closure cell rebound"
    f.__defaults__ = (5,)
    assert call_pickled(cache.dumps(f)) == 10, "new defaults"
    f.tag = "x"
    assert pickle.loads(cache.dumps(f)).tag == "x", "a new attribute"
    assert cache.hits == 1


def test_cache_not_fooled_by_equal_values_of_another_type() -> None:
    namespace = by_value("FLAG = 1\ndef f():\n    return FLAG\n")
    cache = FunctionPickleCache()
    assert call_pickled(cache.dumps(namespace["f"])) == 1
    namespace["FLAG"] = True  # == 1, but a different value
    assert call_pickled(cache.dumps(namespace["f"])) is True


def test_cache_not_fooled_by_a_reused_object_id() -> None:
    # A freed int's address is soon reused by a new int: a fingerprint of ids alone
    # would mistake the new value for the old one.
    namespace = by_value("N = 1000001\ndef f():\n    return N\n")
    cache = FunctionPickleCache()
    base = 2_000_000  # one allocation per new value, so freed addresses are reused at once
    stale = []
    for step in range(80):
        namespace["N"] = base + 3 * step
        cache.dumps(namespace["f"])
        namespace["N"] = base + (3 * step + 1)
        namespace["N"] = base + (3 * step + 2)
        data = cache.dumps(namespace["f"])
        if call_pickled(data) != namespace["N"]:
            stale.append(step)
    assert stale == []


@pytest.mark.parametrize("mutable", ["[1, 2]", "{'a': 1}", "np.ones(3)", "bytearray(b'ab')", "([1],)"])
def test_cache_never_holds_a_function_reading_a_mutable_global(mutable: str) -> None:
    namespace = by_value(f"import numpy as np\nDATA = {mutable}\ndef f():\n    return DATA\n")
    cache = FunctionPickleCache()
    cache.dumps(namespace["f"])
    cache.dumps(namespace["f"])
    assert cache.hits == 0 and cache.misses == 2


def test_mutated_global_list_and_array_travel() -> None:
    namespace = by_value(
        "import numpy as np\nITEMS = [1]\nWEIGHTS = np.zeros(2)\ndef f():\n    return list(ITEMS), WEIGHTS.tolist()\n"
    )
    f = namespace["f"]
    _, _, _ = unpack_apply(pack_apply(f))
    namespace["ITEMS"].append(2)
    namespace["WEIGHTS"][1] = 5.0
    g, _, _ = unpack_apply(over_the_wire(pack_apply(f)))
    assert g() == ([1, 2], [0.0, 5.0])


def test_mutable_global_read_through_a_helper_travels() -> None:
    namespace = by_value("ITEMS = [1]\ndef helper():\n    return list(ITEMS)\ndef f():\n    return helper()\n")
    cache = FunctionPickleCache()
    assert call_pickled(cache.dumps(namespace["f"])) == [1]
    namespace["ITEMS"].append(2)
    assert call_pickled(cache.dumps(namespace["f"])) == [1, 2]
    assert cache.hits == 0


def test_helper_with_immutable_globals_is_cached_and_follows_rebinding() -> None:
    namespace = by_value("K = 2\ndef helper(x):\n    return x * K\ndef f(x):\n    return helper(x) + 1\n")
    cache = FunctionPickleCache()
    assert call_pickled(cache.dumps(namespace["f"]), 3) == 7
    assert call_pickled(cache.dumps(namespace["f"]), 3) == 7
    assert cache.hits == 1
    namespace["K"] = 10
    assert call_pickled(cache.dumps(namespace["f"]), 3) == 31


def test_recursive_function_is_cached() -> None:
    namespace = by_value("def fact(n):\n    return 1 if n < 2 else n * fact(n - 1)\n")
    cache = FunctionPickleCache()
    cache.dumps(namespace["fact"])
    assert call_pickled(cache.dumps(namespace["fact"]), 5) == 120
    assert cache.hits == 1


def test_class_defined_by_value_is_not_cached() -> None:
    namespace = by_value("class Config:\n    size = 1\ndef f():\n    return Config.size\n")
    cache = FunctionPickleCache()
    assert call_pickled(cache.dumps(namespace["f"])) == 1
    namespace["Config"].size = 2
    assert call_pickled(cache.dumps(namespace["f"])) == 2


def test_closure_cells_and_defaults_are_checked() -> None:
    cache = FunctionPickleCache()

    def make(value: Any) -> Any:
        def f() -> Any:
            return value

        return f

    frozen = make((1, "a"))
    cache.dumps(frozen)
    cache.dumps(frozen)
    assert cache.hits == 1
    mutable = make([1])
    cache.dumps(mutable)
    cache.dumps(mutable)
    assert cache.hits == 1

    namespace = by_value("def f(x=[]):\n    return x\n")
    cache.dumps(namespace["f"])
    cache.dumps(namespace["f"])
    assert cache.hits == 1
    namespace = by_value("def f(x=3):\n    return x\n")
    cache.dumps(namespace["f"])
    namespace["f"].__defaults__ = (4,)
    assert call_pickled(cache.dumps(namespace["f"])) == 4


def test_closure_cell_rebinding_is_seen() -> None:
    cache = FunctionPickleCache()
    value = 1

    def f() -> int:
        return value

    assert call_pickled(cache.dumps(f)) == 1
    value = 2  # noqa: F841 - read through the closure
    assert call_pickled(cache.dumps(f)) == 2


def test_function_attributes_are_checked() -> None:
    namespace = by_value("def f():\n    return f.setting\n")
    namespace["f"].setting = 1
    cache = FunctionPickleCache()
    assert call_pickled(cache.dumps(namespace["f"])) == 1
    namespace["f"].setting = 2
    assert call_pickled(cache.dumps(namespace["f"])) == 2


def test_non_functions_are_never_cached() -> None:
    cache = FunctionPickleCache()
    cache.dumps(len)
    cache.dumps(len)
    assert cache.hits == 0 and cache.misses == 2


def test_cache_is_bounded() -> None:
    cache = FunctionPickleCache(size=4)
    functions = [by_value(f"def f():\n    return {n}\n")["f"] for n in range(10)]
    for f in functions:
        cache.dumps(f)
    assert len(cache._entries) == 4
    cache.dumps(functions[-1])
    assert cache.hits == 1
    cache.dumps(functions[0])
    assert cache.hits == 1


def test_pack_apply_uses_the_module_cache() -> None:
    namespace = by_value("def f(x):\n    return x\n")
    before = serialize._function_cache.hits
    first = pack_apply(namespace["f"], (1,))[0]
    second = pack_apply(namespace["f"], (2,))[0]
    assert second is first
    assert serialize._function_cache.hits == before + 1


# -- Reference ----------------------------------------------------------------


def test_reference_travels_in_apply_args_and_resolves() -> None:
    _, args, kwargs = unpack_apply(over_the_wire(pack_apply(add, (Reference("a"),), {"b": Reference("b")})))
    assert isinstance(args[0], Reference) and args[0].name == "a"
    assert repr(kwargs["b"]) == "Reference('b')"
    assert args[0].resolve({"a": 5}) == 5
    with pytest.raises(NameError, match="'a' is not defined on the engine"):
        args[0].resolve({})


@pytest.mark.parametrize("name", ["", "1x", "a b", "a[", None, 3])
def test_reference_needs_a_variable_name_or_an_expression(name: Any) -> None:
    with pytest.raises(TypeError, match="variable name or an expression"):
        Reference(name)


def test_reference_expressions_and_nested_references_resolve() -> None:
    from types import SimpleNamespace

    from taskyard.protocol.reference import resolve_references

    ns = {"g": [7, 8], "a": SimpleNamespace(b=128)}
    assert Reference("g[0]").resolve(ns) == 7 and Reference("a.b").resolve(ns) == 128
    with pytest.raises(NameError):
        Reference("missing + 1").resolve(dict(ns))
    nested = ([Reference("g[1]"), {"k": Reference("a.b")}], "plain")
    assert resolve_references(nested, ns) == ([8, {"k": 128}], "plain")
    untouched = [1, {"x": 2}]
    assert resolve_references(untouched, ns) is untouched  # nothing to replace: the same object
    with pytest.raises(TypeError, match="called on the engine"):
        Reference("f")()


def test_a_lambda_recreated_in_a_loop_is_pickled_once() -> None:
    cache = FunctionPickleCache()
    for _ in range(5):
        cache.dumps(lambda: None)
    assert (cache.hits, cache.misses) == (4, 1)


def test_changed_annotations_are_seen() -> None:
    cache = FunctionPickleCache()
    namespace = by_value("def f():\n    return f.__annotations__.get('return')\n")
    f = namespace["f"]
    f.__annotations__["return"] = "old"
    cache.dumps(f)
    f.__annotations__["return"] = "new"
    assert call_pickled(cache.dumps(f)) == "new"


def test_engine_side_function_cache_never_shares_closure_state() -> None:
    from taskyard.protocol.serialize import pack_apply, unpack_apply

    def make() -> Any:
        count = 0

        def bump() -> int:
            nonlocal count
            count += 1
            return count

        return bump

    frames = pack_apply(make())
    assert [unpack_apply(frames)[0]() for _ in range(3)] == [1, 1, 1]
    # Functions without closures are unpickled once and reused.
    plain = pack_apply(lambda: 1)
    assert unpack_apply(plain)[0] is unpack_apply(plain)[0]


def test_plain_arguments_and_results_use_the_c_pickler_and_round_trip() -> None:
    from taskyard.protocol.serialize import deserialize_object, pack_apply, serialize_object, unpack_apply

    values = (None, True, 3, 2.5, 1j, "s", b"b", (1, "x"), [1, [2, 3]])
    f, args, kwargs = unpack_apply(pack_apply(print, values))
    assert args == values and kwargs == {}
    for value in values:
        assert deserialize_object(serialize_object(value)) == value
    # A tuple holding a function still goes through cloudpickle.
    assert deserialize_object(serialize_object((1, lambda: 5)))[1]() == 5
