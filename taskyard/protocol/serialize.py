"""Turning functions, arguments and results into frames and back.

Objects are pickled with cloudpickle at protocol 5. Large contiguous buffers
(numpy arrays anywhere, and top-level ``bytes``/``memoryview`` arguments of an
apply request) do not go into the pickle: they become frames of their own, sent without a copy and
loaded as views on the received frame.

A function's pickle is cached per function object, so ``map`` over 10,000 items
or an ``apply_async`` loop pickles the function once. The cache is only used when
it cannot go stale: the function's code, defaults, closure cells and the globals
it names must all be immutable values (numbers, strings, tuples of those,
modules, importable functions and classes, and functions pickled by value whose
own code, globals, closures and defaults pass the same test). A function that
reads a list or an array from its globals, directly or through a helper it
calls, is pickled afresh each time, as the user expects.
"""

from __future__ import annotations

import operator
import pickle
import types
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

import cloudpickle

from taskyard.error import ProtocolError

#: Buffers smaller than this stay inside the pickle: a frame costs more than a copy.
INLINE_THRESHOLD = 64 * 1024

_IMMUTABLE_TYPES = (
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    range,
    frozenset,
    types.ModuleType,
    types.BuiltinFunctionType,
)


def _keep_inline(buffer: pickle.PickleBuffer) -> bool:
    # pickle calls this for each out-of-band candidate; a true value keeps it in-band.
    return memoryview(buffer).nbytes < INLINE_THRESHOLD


class _RawBuffer:
    """Stands in a pickle for a top-level bytes/memoryview argument sent as a frame."""

    __slots__ = ("index", "as_bytes")

    def __init__(self, index: int, as_bytes: bool) -> None:
        self.index = index
        self.as_bytes = as_bytes

    def __reduce__(self) -> tuple[Any, ...]:
        return (_RawBuffer, (self.index, self.as_bytes))


class _RawFunction:
    """Stands in a pickle for a top-level function argument sent as its own (cached) pickle.

    ``view.map(f, ...)`` sends ``f`` as an argument of every chunk; as a frame
    of its own it goes through the same caches as the function being applied
    (pickled once by the client, unpickled once by each engine).
    """

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self) -> tuple[Any, ...]:
        return (_RawFunction, (self.index,))


def _frame_view(frame: Any) -> memoryview:
    if isinstance(frame, memoryview):
        return frame
    buffer = getattr(frame, "buffer", None)
    if buffer is not None:
        return buffer  # type: ignore[no-any-return]
    return memoryview(frame)


#: Values the C pickler handles exactly as cloudpickle would (no functions or
#: classes, which it would send by a name the other side may not have).
_PLAIN_TYPES = frozenset({type(None), bool, int, float, complex, str, bytes})


#: Placeholders the C pickler may write (by reference to this module).
_PLACEHOLDER_TYPES = frozenset({_RawBuffer, _RawFunction})


def _is_plain(value: Any, depth: int = 0) -> bool:
    kind = type(value)
    if kind in _PLAIN_TYPES:
        return True
    if depth < 2 and (kind is tuple or kind is list) and len(value) <= 16:
        return all(_is_plain(v, depth + 1) for v in value)
    return False


def _dumps(obj: Any, frames: list[Any]) -> bytes:
    # The C pickler is several times faster than cloudpickle's for plain data.
    if _is_plain(obj):
        return pickle.dumps(obj, protocol=5)
    data: bytes = cloudpickle.dumps(obj, protocol=5, buffer_callback=lambda b: _collect(b, frames))
    return data


def serialize_object(obj: Any) -> list[Any]:
    """``obj`` as ``[pickle, buffer frames...]``."""
    frames: list[Any] = []
    data = _dumps(obj, frames)
    return [data, *frames]


def _collect(buffer: pickle.PickleBuffer, frames: list[Any]) -> bool:
    if _keep_inline(buffer):
        return True
    frames.append(buffer.raw())
    return False


def deserialize_object(frames: Sequence[Any]) -> Any:
    """Inverse of :func:`serialize_object`; buffers become views on the frames."""
    if not frames:
        raise ProtocolError("no frames to deserialize")
    views = [_frame_view(f) for f in frames[1:]]
    try:
        return pickle.loads(_frame_view(frames[0]), buffers=views)
    except Exception as exc:
        raise ProtocolError(f"cannot unpickle: {type(exc).__name__}: {exc}") from exc


# -- functions ----------------------------------------------------------


#: How many by-value functions one fingerprint may walk through before giving up.
_MAX_FUNCTIONS = 32

_ABSENT = object()


def _pickled_by_reference(obj: Any) -> bool:
    # cloudpickle stores importable functions and classes by name: their pickle cannot go stale.
    check = getattr(cloudpickle.cloudpickle, "_should_pickle_by_reference", None)
    if check is None:
        return False
    try:
        return bool(check(obj))
    except Exception:
        return False


_NAMES_BY_CODE: weakref.WeakKeyDictionary[types.CodeType, tuple[str, ...]] = weakref.WeakKeyDictionary()


def _global_names(code: types.CodeType) -> tuple[str, ...]:
    names = _NAMES_BY_CODE.get(code)
    if names is None:
        collected = set(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                collected.update(_global_names(const))
        names = tuple(sorted(collected))
        _NAMES_BY_CODE[code] = names
    return names


def _depends(f: types.FunctionType) -> list[Any]:
    """What a by-value function's pickle is made of: code, names, closure, globals, defaults, __dict__."""
    depends: list[Any] = [f.__code__, f.__name__, f.__qualname__, f.__module__, f.__doc__]
    # The annotations dict travels with the function: its items count too.
    for item in f.__annotations__.items():
        depends.extend(item)
    for cell in f.__closure__ or ():
        try:
            depends.append(cell.cell_contents)
        except ValueError:  # empty cell
            depends.append(_ABSENT)
    names = _global_names(f.__code__)
    if names:
        depends.extend(map(f.__globals__.get, names, repeat(_ABSENT, len(names))))
    depends.extend(f.__defaults__ or ())
    if f.__kwdefaults__:
        depends.extend(f.__kwdefaults__.values())
    depends.extend(f.__dict__.values())
    return depends


class _Fingerprint:
    """Everything a function's pickle depends on, if all of it is immutable."""

    def __init__(self) -> None:
        #: held strongly, so that an id is never reused while the cache compares against it
        self.values: list[Any] = []
        self._visited: set[int] = set()

    def function(self, f: types.FunctionType) -> bool:
        # A by-value function pickles its code, closure, globals, defaults and __dict__.
        if id(f) in self._visited:
            return True
        if len(self._visited) >= _MAX_FUNCTIONS:
            return False
        self._visited.add(id(f))
        depends = _depends(f)
        self.values.extend(depends)
        return all(self.is_immutable(v) for v in depends)

    def is_immutable(self, value: Any, depth: int = 0) -> bool:
        if value is _ABSENT or isinstance(value, types.CodeType):
            return True
        if isinstance(value, tuple):
            return depth < 3 and all(self.is_immutable(v, depth + 1) for v in value)
        if isinstance(value, types.FunctionType):
            return _pickled_by_reference(value) or self.function(value)
        if isinstance(value, type):
            # a class pickled by value carries its (mutable) class dict
            return _pickled_by_reference(value)
        return isinstance(value, _IMMUTABLE_TYPES)


def _fingerprint(f: types.FunctionType) -> tuple[Any, ...] | None:
    """The objects ``f``'s pickle is made of (compared by identity), or None if any is mutable."""
    fingerprint = _Fingerprint()
    if not fingerprint.function(f):
        return None
    return tuple(fingerprint.values)


def _same(one: Sequence[Any], other: Sequence[Any]) -> bool:
    # identity, not equality: 1 == True == 1.0, but their pickles differ
    return len(one) == len(other) and all(map(operator.is_, one, other))


class FunctionPickleCache:
    """Caches the pickles of functions whose pickle cannot change (see module doc)."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        # Keyed by code object: a lambda re-created in a loop is a new function
        # each time, but the same code with the same fingerprint pickles the same.
        # An entry is (fingerprint, pickle, whether the fingerprint is the function's
        # own dependencies alone, with no other function's among them).
        self._entries: OrderedDict[types.CodeType, tuple[tuple[Any, ...], bytes, bool]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def dumps(self, f: Callable[..., Any]) -> bytes:
        if not isinstance(f, types.FunctionType):
            self.misses += 1
            pickled: bytes = cloudpickle.dumps(f, protocol=5)
            return pickled
        key = f.__code__
        entry = self._entries.get(key)
        if entry is not None and entry[2] and _same(entry[0], _depends(f)):
            # The fast path: the very objects that were all immutable when the entry was
            # made (so they still are); no immutability checks needed.
            self.hits += 1
            self._entries.move_to_end(key)
            return entry[1]
        fingerprint = _fingerprint(f)
        if fingerprint is not None and entry is not None and _same(entry[0], fingerprint):
            self.hits += 1
            self._entries.move_to_end(key)
            return entry[1]
        self.misses += 1
        data: bytes = cloudpickle.dumps(f, protocol=5)
        if fingerprint is not None:
            self._entries[key] = (fingerprint, data, len(fingerprint) == len(_depends(f)))
            self._entries.move_to_end(key)
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return data


_function_cache = FunctionPickleCache()


def _is_large_contiguous(view: memoryview) -> bool:
    return view.nbytes >= INLINE_THRESHOLD and view.c_contiguous


def pack_apply(f: Callable[..., Any], args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None) -> list[Any]:
    """Frames for an apply request: ``[function pickle, (args, kwargs) pickle, buffers...]``.

    Large top-level ``bytes``/``memoryview`` arguments and large array buffers
    become frames of their own.
    """
    raw: list[Any] = []
    placeholders: list[_RawBuffer | _RawFunction] = []

    def lift(value: Any) -> Any:
        if type(value) is types.FunctionType:
            raw.append(_function_cache.dumps(value))
            placeholders.append(_RawFunction(len(raw) - 1))
            return placeholders[-1]
        # a non-contiguous memoryview cannot be a frame; cloudpickle copies it into the pickle
        if isinstance(value, (bytes, memoryview)) and _is_large_contiguous(memoryview(value)):
            raw.append(value)
            placeholders.append(_RawBuffer(len(raw) - 1, isinstance(value, bytes)))
            return placeholders[-1]
        return value

    args = tuple(lift(a) for a in args)
    kwargs = {k: lift(v) for k, v in (kwargs or {}).items()}
    # pickle.loads consumes out-of-band buffers from the front of the list, so the
    # raw frames go last and their placeholders count from the end.
    for placeholder in placeholders:
        placeholder.index -= len(raw)
    frames: list[Any] = []
    if not kwargs and all(type(a) in _PLACEHOLDER_TYPES or _is_plain(a) for a in args):
        data = pickle.dumps((args, kwargs), protocol=5)
    else:
        data = cloudpickle.dumps((args, kwargs), protocol=5, buffer_callback=lambda b: _collect(b, frames))
    return [_function_cache.dumps(f), data, *frames, *raw]


#: Unpickled functions by their pickle: the client sends the same bytes for the
#: same function, so an engine unpickles each function once.
_LOADED_FUNCTIONS: OrderedDict[bytes, Any] = OrderedDict()
_LOADED_FUNCTIONS_SIZE = 256


def _function_loads(frame: Any) -> Any:
    data = frame.bytes if hasattr(frame, "bytes") else bytes(frame)
    f = _LOADED_FUNCTIONS.get(data)
    if f is None:
        f = pickle.loads(data)
        # Closure cells can be rebound (nonlocal) by a call: such a function is
        # unpickled afresh each time, so no call sees another's state.
        if isinstance(f, types.FunctionType) and f.__closure__ is None:
            _LOADED_FUNCTIONS[data] = f
            if len(_LOADED_FUNCTIONS) > _LOADED_FUNCTIONS_SIZE:
                _LOADED_FUNCTIONS.popitem(last=False)
    else:
        _LOADED_FUNCTIONS.move_to_end(data)
    return f


def unpack_apply(frames: Sequence[Any]) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """Inverse of :func:`pack_apply`."""
    if len(frames) < 2:
        raise ProtocolError(f"apply request needs at least 2 buffers, got {len(frames)}")
    views = [_frame_view(f) for f in frames[2:]]

    def lower(value: Any) -> Any:
        if isinstance(value, _RawFunction):
            return _function_loads(views[value.index])
        if isinstance(value, _RawBuffer):
            view = views[value.index]
            return bytes(view) if value.as_bytes else view
        return value

    try:
        f = _function_loads(frames[0])
        args, kwargs = pickle.loads(_frame_view(frames[1]), buffers=views)
        return f, tuple(lower(a) for a in args), {k: lower(v) for k, v in kwargs.items()}
    except Exception as exc:
        raise ProtocolError(f"cannot unpickle apply request: {type(exc).__name__}: {exc}") from exc
