"""The message catalog: one rule for reply types, error replies and task flags."""

from __future__ import annotations

import pytest

from taskyard.controller.hub import Controller
from taskyard.controller.tasks import PYTHON_SCHEDULER_FEATURES
from taskyard.engine.engine import REQUEST_TYPES
from taskyard.error import EngineError, ImpossibleDependency, RemoteError, error_from_content
from taskyard.protocol import catalog
from taskyard.protocol.catalog import CATALOG, TASK_FLAGS, error_content, reply_type, request_of, result_kind


def test_every_request_has_its_own_reply_and_back() -> None:
    replies = [kind.reply_type for kind in CATALOG.values()]
    assert len(set(replies)) == len(replies)
    for name, kind in CATALOG.items():
        assert name.endswith("_request") and kind.msg_type == name
        assert reply_type(name) == kind.reply_type
        assert request_of(kind.reply_type) is kind


@pytest.mark.parametrize("msg_type", ["", "apply", "apply_reply", "nonsense_request", "x" * 1000])
def test_an_unknown_request_is_still_answered(msg_type: str) -> None:
    assert reply_type(msg_type) == catalog.ERROR_REPLY
    assert request_of(catalog.ERROR_REPLY) is None
    assert result_kind(catalog.ERROR_REPLY) == "message"


def test_what_a_successful_reply_means() -> None:
    assert result_kind("apply_reply") == "buffers"
    assert result_kind("execute_reply") == "execute_result"
    for reply in catalog.CONTROL_REPLIES:
        assert result_kind(reply) == "message"
    assert catalog.RECORDED_REQUESTS == {"apply_request", "execute_request"}


def test_the_processes_agree_with_the_catalog() -> None:
    # every request the hub answers has a handler there, and the engine runs what the catalog calls work
    for name, kind in CATALOG.items():
        if "registration" in kind.channels:
            assert callable(getattr(Controller, f"_handle_{name}", None)), name
    assert set(REQUEST_TYPES) == {n for n, k in CATALOG.items() if "mux" in k.channels}
    assert set(TASK_FLAGS) <= set(PYTHON_SCHEDULER_FEATURES)
    assert CATALOG["apply_request"].flags == TASK_FLAGS


def test_error_replies_from_every_origin_read_back_typed() -> None:
    for origin in ("engine", "scheduler", "hub"):
        error = error_from_content(error_content("ImpossibleDependency", "never", origin))  # type: ignore[arg-type]
        assert isinstance(error, ImpossibleDependency) and str(error) == "never"
    assert isinstance(error_from_content(error_content("EngineError", "died", "scheduler")), EngineError)
    # user code raising a class with one of our names is still the user's error
    user = error_from_content(error_content("EngineError", "mine", "user", traceback="tb"))
    assert isinstance(user, RemoteError) and user.ename == "EngineError" and user.traceback == "tb"


def test_error_content_keeps_extra_keys() -> None:
    content = error_content("TaskAborted", "aborted", "engine", status="aborted", engine_info={"engine_id": 1})
    assert content["status"] == "aborted" and content["engine_info"] == {"engine_id": 1}
    assert content["origin"] == "engine" and content["traceback"] == ""


def test_the_docstring_examples_hold() -> None:
    import doctest

    from taskyard import schemes

    for module in (catalog, schemes):
        failures, tried = doctest.testmod(module)
        assert tried > 0 and failures == 0, module.__name__
