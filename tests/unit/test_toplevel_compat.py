"""ipyparallel's top-level helpers that need no cluster: serialization switches, wait constants."""

from __future__ import annotations

import concurrent.futures

import pytest

import taskyard as ty


def test_use_cloudpickle_is_a_no_op_returning_none_as_in_ipyparallel() -> None:
    assert ty.use_cloudpickle() is None


@pytest.mark.parametrize("switch", [ty.use_dill], ids=lambda f: f.__name__)
def test_other_serializers_are_refused_with_the_reason(switch: object) -> None:
    with pytest.raises(NotImplementedError, match="always serializes with cloudpickle"):
        switch()  # type: ignore[operator]


def test_wait_constants_are_concurrent_futures_ones() -> None:
    assert ty.ALL_COMPLETED is concurrent.futures.ALL_COMPLETED
    assert ty.FIRST_COMPLETED is concurrent.futures.FIRST_COMPLETED
    assert ty.FIRST_EXCEPTION is concurrent.futures.FIRST_EXCEPTION


def test_every_public_name_is_listed_and_exists() -> None:
    for name in ("remote", "parallel", "AsyncHubResult", "use_cloudpickle", "use_dill", "use_pickle"):
        assert name in ty.__all__
        assert getattr(ty, name) is not None
    assert issubclass(ty.AsyncHubResult, ty.AsyncResult)
