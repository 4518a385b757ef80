"""The exception hierarchy: pickling, ``except`` clauses, rebuilding from reply content."""

from __future__ import annotations

import builtins
import inspect
import pickle

import cloudpickle
import pytest

import taskyard
from taskyard import error
from taskyard.error import (
    CompositeError,
    ConfigError,
    DependencyTimeout,
    EngineError,
    ImpossibleDependency,
    InvalidDependency,
    RemoteError,
    TaskyardError,
    UnmetDependency,
    error_from_content,
)

CLASSES = [
    getattr(error, name)
    for name in error.__all__
    if inspect.isclass(getattr(error, name)) and issubclass(getattr(error, name), BaseException)
]
INFO = {"engine_id": 3, "engine_uuid": "u-3", "method": "apply"}


def sample(cls: type[BaseException]) -> BaseException:
    if cls is CompositeError:
        return CompositeError(
            "one or more exceptions", [RemoteError("ValueError", "bad", "tb", INFO), EngineError("dead")]
        )
    if cls is error.AlreadyDisplayedError:
        return cls(sample(CompositeError))  # type: ignore[arg-type]
    if issubclass(cls, RemoteError):
        return cls("ZeroDivisionError", "division by zero", "Traceback...\nZeroDivisionError", INFO)
    return cls(f"a {cls.__name__} happened")


def test_all_lists_every_exception_class() -> None:
    defined = {
        name
        for name, value in vars(error).items()
        if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == error.__name__
    }
    assert defined <= set(error.__all__)
    assert len(CLASSES) == len(defined) >= 14


def test_every_class_has_a_docstring_saying_who_raises_it() -> None:
    for cls in CLASSES:
        assert cls.__doc__ and len(cls.__doc__.split()) >= 6, cls


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_every_class_pickles_with_its_attributes(cls: type[BaseException], dumps: object) -> None:
    original = sample(cls)
    copy = pickle.loads(dumps(original))  # type: ignore[operator]
    assert type(copy) is cls
    assert repr(copy.args) == repr(original.args)
    assert str(copy) == str(original)
    assert issubclass(cls, TaskyardError)
    for attribute in ("ename", "evalue", "traceback", "engine_info", "message"):
        if hasattr(original, attribute):
            assert getattr(copy, attribute) == getattr(original, attribute), attribute


def test_remote_error_attributes_survive_pickling() -> None:
    original = RemoteError("KeyError", "'x'", "Traceback (most recent call last):\n  ...\nKeyError: 'x'", INFO)
    copy = pickle.loads(pickle.dumps(original))
    assert (copy.ename, copy.evalue, copy.traceback, copy.engine_info) == ("KeyError", "'x'", original.traceback, INFO)
    assert copy.engine_id == 3


def test_attributes_set_after_construction_survive_pickling() -> None:
    remote = RemoteError("E", "v")
    remote.engine_info = dict(INFO)  # as the client does when the reply lacks it
    assert pickle.loads(pickle.dumps(remote)).engine_id == 3
    engine_error = EngineError("engine 3 died")
    engine_error.engine_info = dict(INFO)  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(engine_error)).engine_info == INFO


def test_remote_error_without_engine_info_pickles() -> None:
    copy = pickle.loads(pickle.dumps(RemoteError("E", "v")))
    assert copy.engine_info == {} and copy.engine_id is None and copy.traceback == ""


def test_composite_error_elist_survives_pickling() -> None:
    original = sample(CompositeError)
    assert isinstance(original, CompositeError)
    copy = pickle.loads(pickle.dumps(original))
    assert [type(e) for e in copy.errors] == [RemoteError, EngineError]
    assert copy.errors[0].engine_info == INFO and copy.errors[0].ename == "ValueError"  # type: ignore[attr-defined]
    assert str(copy.errors[1]) == "dead"
    # ipyparallel's shape: (ename, evalue, traceback, engine_info) tuples
    ename, evalue, _tb, engine_info = copy.elist[0]
    assert (ename, evalue, engine_info) == ("ValueError", "bad", INFO)
    assert copy.elist[0][-1] == INFO and copy.elist[1].ename == "EngineError" and copy.elist[1].evalue == "dead"
    with pytest.raises(EngineError, match="dead"):
        copy.raise_exception(1)
    assert (copy.ename, copy.evalue, copy.engine_info) == ("ValueError", "bad", INFO)
    assert copy.message == "one or more exceptions"


def test_composite_error_shows_every_error_and_raises_one() -> None:
    composite = sample(CompositeError)
    assert isinstance(composite, CompositeError)
    text = str(composite)
    assert "2 errors" in text and "[engine 3] ValueError: bad" in text and "dead" in text
    rendered = str(composite.render_traceback())
    assert "[engine 3:apply]" in rendered and "EngineError: dead" in rendered
    assert composite.render_traceback(1) == ["EngineError: dead"]
    with pytest.raises(IndexError, match="index 2"):
        composite.render_traceback(2)
    with pytest.raises(EngineError):
        composite.raise_exception(1)
    with pytest.raises(RemoteError, match="bad"):
        composite.raise_exception()
    empty = CompositeError("nothing", [])
    assert empty.ename == "" and "0 errors" in str(empty)


def test_remote_error_str_and_traceback_name_the_engine() -> None:
    remote = RemoteError(
        "ZeroDivisionError", "division by zero", "Traceback ...\nZeroDivisionError: division by zero", INFO
    )
    assert str(remote) == "[engine 3] ZeroDivisionError: division by zero"
    # lines, as ipyparallel's, headed by the engine and the kind of request (its "[3:apply]")
    assert remote.render_traceback()[0] == "[engine 3:apply] Traceback ..."
    assert str(remote.render_traceback()) == "[engine 3:apply] Traceback ...\nZeroDivisionError: division by zero"
    assert remote._render_traceback_() == remote.render_traceback()
    anonymous = RemoteError("ValueError", "x")
    assert str(anonymous) == "ValueError: x"
    assert anonymous.render_traceback() == ["[engine ?] ValueError: x"]
    assert "[engine 0]" in str(RemoteError("E", "v", engine_info={"engine_id": 0}))


def test_print_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    RemoteError("E", "v", "the traceback", INFO).print_traceback()
    assert capsys.readouterr().out == "[engine 3:apply] the traceback\n"


def test_hierarchy() -> None:
    assert issubclass(ImpossibleDependency, UnmetDependency)
    assert issubclass(DependencyTimeout, ImpossibleDependency)
    assert issubclass(InvalidDependency, ImpossibleDependency)
    assert not issubclass(DependencyTimeout, InvalidDependency)
    assert issubclass(CompositeError, RemoteError)
    assert issubclass(ConfigError, ValueError)
    for cls in CLASSES:
        assert issubclass(cls, TaskyardError)
    with pytest.raises(UnmetDependency):
        raise DependencyTimeout("expired")
    with pytest.raises(ImpossibleDependency):
        raise InvalidDependency("unknown msg_id")


def test_reachable_as_ty_error() -> None:
    assert taskyard.error is error
    try:
        raise DependencyTimeout("t")
    except taskyard.error.ImpossibleDependency as caught:
        assert isinstance(caught, taskyard.error.UnmetDependency)


def test_taskyard_timeout_is_a_builtin_timeout() -> None:
    assert error.TimeoutError is not builtins.TimeoutError
    with pytest.raises(builtins.TimeoutError):
        raise error.TimeoutError("waited 5 s")
    timeout = error.TimeoutError("waited 5 s")
    assert str(timeout) == "waited 5 s"
    assert isinstance(timeout, TaskyardError)
    copy = pickle.loads(pickle.dumps(timeout))
    assert type(copy) is error.TimeoutError and str(copy) == "waited 5 s"


# -- error_from_content -------------------------------------------------------------


@pytest.mark.parametrize(
    "ename",
    [
        "EngineError",
        "ImpossibleDependency",
        "DependencyTimeout",
        "InvalidDependency",
        "UnmetDependency",
        "TaskAborted",
        "KernelError",
        "TimeoutError",
        "NoEnginesRegistered",
    ],
)
def test_taskyard_errors_come_back_typed(ename: str) -> None:
    for origin in ("scheduler", "engine", None):
        content = {"status": "error", "ename": ename, "evalue": "why", "traceback": ""}
        if origin:
            content["origin"] = origin
        rebuilt = error_from_content(content)
        cls = getattr(error, ename)
        assert isinstance(rebuilt, cls) and type(rebuilt).__name__ == ename
        # a request's fate is also a RemoteError, as ipyparallel delivers it
        assert isinstance(rebuilt, RemoteError) == issubclass(cls, error.KernelError)
        assert str(rebuilt) == "why"
        assert dict(rebuilt.engine_info) == {}  # type: ignore[attr-defined]
        # which engine it concerns survives, as for RemoteError, and pickling keeps it
        located = error_from_content(content, INFO)
        assert located.engine_info == INFO  # type: ignore[attr-defined]
        assert pickle.loads(pickle.dumps(located)).engine_info == INFO


@pytest.mark.parametrize("ename", ["TimeoutError", "EngineError", "ValueError", "ImpossibleDependency"])
def test_user_raised_errors_are_remote_errors_even_with_our_names(ename: str) -> None:
    content = {"ename": ename, "evalue": "v", "traceback": ["line 1", "line 2"], "origin": "user"}
    rebuilt = error_from_content(content, INFO)
    assert type(rebuilt) is RemoteError
    assert rebuilt.ename == ename and rebuilt.evalue == "v"
    assert rebuilt.traceback == "line 1\nline 2"
    assert rebuilt.engine_info == INFO


def test_unknown_names_are_remote_errors() -> None:
    rebuilt = error_from_content({"ename": "KeyError", "evalue": "'a'", "traceback": "tb", "engine_info": INFO})
    assert type(rebuilt) is RemoteError
    assert rebuilt.engine_info == INFO and rebuilt.traceback == "tb"
    assert "[engine 3]" in str(rebuilt)
    # builtin names are not ours: "ValueError" does not become ConfigError or anything typed
    assert type(error_from_content({"ename": "RemoteError", "evalue": "x"})) is RemoteError


def test_error_from_content_with_missing_fields() -> None:
    rebuilt = error_from_content({})
    assert isinstance(rebuilt, RemoteError)
    assert rebuilt.ename == "Error" and rebuilt.evalue == "" and rebuilt.engine_info == {}


def test_explicit_engine_info_wins_over_content() -> None:
    rebuilt = error_from_content({"ename": "X", "engine_info": {"engine_id": 1}}, {"engine_id": 2})
    assert isinstance(rebuilt, RemoteError) and rebuilt.engine_id == 2


def test_remote_errors_render_in_ipython_and_notebooks() -> None:
    from IPython.lib.pretty import pretty

    error = RemoteError(
        "KeyError",
        "'x'",
        "Traceback (most recent call last):\n  File \"<stdin>\", line 1\nKeyError: 'x'",
        {"engine_id": 3},
    )
    text = pretty(error)
    assert "RemoteError: [engine 3] KeyError: 'x'" in text and 'File "<stdin>"' in text
    page = error._repr_html_()
    assert "[engine 3]" in page and "KeyError: &#x27;x&#x27;" in page and "<pre>" in page
    composite = CompositeError("two failed", [error, RemoteError("ValueError", "bad", "", {"engine_id": 4})])
    assert "[engine 4]" in composite._repr_html_()


IPP_TOP_LEVEL_ERRORS = [
    "RemoteError",
    "CompositeError",
    "EngineError",
    "TimeoutError",
    "NoEnginesRegistered",
    "UnmetDependency",
    "ImpossibleDependency",
    "InvalidDependency",
    "DependencyTimeout",
    "KernelError",
    "TaskTimeout",
    "TaskAborted",
]


@pytest.mark.parametrize("name", IPP_TOP_LEVEL_ERRORS)
def test_ipyparallel_error_names_are_at_top_level(name: str) -> None:
    assert getattr(taskyard, name) is getattr(error, name)
    assert name in taskyard.__all__


@pytest.mark.parametrize(
    "name",
    [
        "RemoteError",
        "CompositeError",
        "EngineError",
        "NoEnginesRegistered",
        "UnmetDependency",
        "ImpossibleDependency",
        "InvalidDependency",
        "DependencyTimeout",
        "TaskTimeout",
        "TaskAborted",
    ],
)
def test_kernel_error_is_the_base_of_request_errors_as_in_ipyparallel(name: str) -> None:
    assert issubclass(getattr(error, name), error.KernelError)


def test_an_expired_task_timeout_is_both_task_timeout_and_dependency_timeout() -> None:
    # the scheduler fails an expired task with ename "DependencyTimeout"
    raised = error_from_content({"ename": "DependencyTimeout", "evalue": "timed out after 1s"})
    assert isinstance(raised, DependencyTimeout) and type(raised).__name__ == "DependencyTimeout"
    assert isinstance(raised, RemoteError) and raised.ename == "TaskTimeout"  # ipyparallel's ename
    assert isinstance(raised, error.TaskTimeout)
    assert isinstance(raised, ImpossibleDependency)
    with pytest.raises(error.TaskTimeout):
        raise pickle.loads(pickle.dumps(raised))
    assert isinstance(error_from_content({"ename": "TaskTimeout", "evalue": "x"}), error.TaskTimeout)


@pytest.mark.parametrize("name", ["EngineError", "TaskAborted", "ImpossibleDependency", "InvalidDependency"])
def test_task_errors_are_also_remote_errors_as_ipyparallel_delivers_them(name: str) -> None:
    info = {"engine_id": 2, "engine_uuid": "u"}
    raised = error_from_content({"ename": name, "evalue": "it failed", "origin": "scheduler"}, info)
    cls = getattr(error, name)
    assert isinstance(raised, cls) and isinstance(raised, RemoteError) and isinstance(raised, error.KernelError)
    assert (raised.ename, raised.evalue, raised.engine_info) == (name, "it failed", info)
    assert str(raised) == "it failed"
    copy = pickle.loads(pickle.dumps(raised))
    assert type(copy) is type(raised) and (copy.ename, copy.evalue, copy.engine_info) == (name, "it failed", info)
    try:  # ipyparallel's idiom
        raise copy
    except RemoteError as caught:
        assert caught.ename == name
    with pytest.raises(cls):  # taskyard's
        raise copy
    # user code raising a class of the same name stays a plain RemoteError
    user = error_from_content({"ename": name, "evalue": "mine", "origin": "user"})
    assert type(user) is RemoteError


def test_composite_traceback_draws_tb_limit_errors_and_counts_the_rest() -> None:
    errors = [RemoteError("RuntimeError", f"oops {i}", f"Traceback\nRuntimeError: oops {i}", {"engine_id": i}) for i in range(6)]
    lines = CompositeError("one or more exceptions", errors).render_traceback()
    text = "\n".join(lines)  # ipyparallel's idiom
    assert text.count("RuntimeError:") == CompositeError.tb_limit == 4
    assert lines[-1] == "... 2 more exceptions ..."
    assert str(lines) == text


def test_already_displayed_error_renders_short_and_pickles() -> None:
    import pickle

    from taskyard.error import AlreadyDisplayedError

    composite = CompositeError("one or more exceptions", [RemoteError("E", str(i)) for i in range(3)])
    shown = AlreadyDisplayedError(composite)
    assert isinstance(shown, RemoteError) and shown.original_error is composite
    assert shown.render_traceback() == ["3 errors"] and str(shown) == "3 errors"
    assert AlreadyDisplayedError(RemoteError("E", "v")).n == 1
    copy = pickle.loads(pickle.dumps(shown))
    assert copy.n == 3 and copy.original_error.errors[2].evalue == "2"
