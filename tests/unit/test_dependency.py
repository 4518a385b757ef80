"""Dependency algebra and the functional-dependency decorators."""

from __future__ import annotations

import json
import pickle
import textwrap
from types import SimpleNamespace
from typing import Any

import cloudpickle
import pytest

from taskyard.dependency import Dependency, depend, dependent, require
from taskyard.error import UnmetDependency

# --------------------------------------------------------------------- algebra

# States of the two ids "a" and "b": P pending, S succeeded, F failed. The order
# of the pair does not matter for any rule, so unordered pairs cover everything.
PAIRS = ["PP", "PS", "PF", "SS", "SF", "FF"]

CHECK = {
    # (all, success_only): met? for each pair in PAIRS
    (True, True): [False, False, False, True, False, False],
    (True, False): [False, False, False, True, True, True],
    (False, True): [False, True, False, True, True, False],
    (False, False): [False, True, True, True, True, True],
}

UNREACHABLE = {
    (True, True): [False, False, True, False, True, True],
    (True, False): [False] * 6,
    (False, True): [False, False, False, False, False, True],
    (False, False): [False] * 6,
}


def _sets(pair: str) -> tuple[set[str], set[str]]:
    completed = {name for name, state in zip("ab", pair, strict=True) if state == "S"}
    failed = {name for name, state in zip("ab", pair, strict=True) if state == "F"}
    return completed, failed


@pytest.mark.parametrize("mode", list(CHECK))
@pytest.mark.parametrize("index", range(len(PAIRS)), ids=PAIRS)
def test_check_truth_table(mode: tuple[bool, bool], index: int) -> None:
    all_, success_only = mode
    dep = Dependency(["a", "b"], all=all_, success_only=success_only)
    for pair in {PAIRS[index], PAIRS[index][::-1]}:
        completed, failed = _sets(pair)
        assert dep.check(completed, failed) is CHECK[mode][index], pair


@pytest.mark.parametrize("mode", list(UNREACHABLE))
@pytest.mark.parametrize("index", range(len(PAIRS)), ids=PAIRS)
def test_unreachable_truth_table(mode: tuple[bool, bool], index: int) -> None:
    all_, success_only = mode
    dep = Dependency(["a", "b"], all=all_, success_only=success_only)
    for pair in {PAIRS[index], PAIRS[index][::-1]}:
        completed, failed = _sets(pair)
        assert dep.unreachable(completed, failed) is UNREACHABLE[mode][index], pair


@pytest.mark.parametrize("mode", list(CHECK))
def test_met_and_unreachable_exclude_each_other(mode: tuple[bool, bool]) -> None:
    dep = Dependency(["a", "b"], all=mode[0], success_only=mode[1])
    for pair in PAIRS:
        completed, failed = _sets(pair)
        assert not (dep.check(completed, failed) and dep.unreachable(completed, failed))


@pytest.mark.parametrize("mode", list(CHECK))
def test_empty_is_always_met(mode: tuple[bool, bool]) -> None:
    dep = Dependency([], all=mode[0], success_only=mode[1])
    assert dep.check(set(), set())
    assert dep.check({"x"}, {"y"})
    assert not dep.unreachable(set(), {"x"})


def test_check_does_not_need_sets() -> None:
    # The scheduler passes its own containers; nothing may call set methods on them.
    done = {"a": True}
    assert Dependency(["a"]).check(done.keys(), ())


# ----------------------------------------------------------------- construction


def test_defaults() -> None:
    dep = Dependency()
    assert dep == set()
    assert dep.all is True
    assert dep.success_only is True
    assert Dependency(None) == set()


def test_from_strings_iterables_and_async_results() -> None:
    result = SimpleNamespace(msg_ids=["r1", "r2"])
    dep = Dependency(["a", result, ("b", "c"), Dependency("d")])
    assert dep == {"a", "r1", "r2", "b", "c", "d"}
    assert Dependency("solo") == {"solo"}
    assert Dependency(result) == {"r1", "r2"}
    assert Dependency({"x", "y"}) == {"x", "y"}


def test_switches_inherited_from_a_dependency() -> None:
    inner = Dependency(["a"], all=False, success_only=False)
    copied = Dependency(inner)
    assert (copied.all, copied.success_only) == (False, False)
    overridden = Dependency(inner, success_only=True)
    assert (overridden.all, overridden.success_only) == (False, True)
    # Flattened inside a list, only the ids travel.
    listed = Dependency([inner])
    assert (listed.all, listed.success_only) == (True, True)


@pytest.mark.parametrize("bad", [3, b"bytes", [1], [None], object()])
def test_bad_types_are_rejected(bad: Any) -> None:
    with pytest.raises(TypeError, match="dependency"):
        Dependency(bad)


def test_wire_form_round_trip() -> None:
    dep = Dependency(["b", "a"], all=False, success_only=False)
    wire = dep.as_dict()
    assert wire == {"dependencies": ["a", "b"], "all": False, "success": True, "failure": True}
    back = Dependency.from_dict(json.loads(json.dumps(wire)))
    assert back == dep
    assert (back.all, back.success_only) == (False, False)
    # The dict form is accepted by the constructor too, as in ipyparallel.
    again = Dependency(wire)
    assert again == dep and again.all is False and again.success_only is False


def test_from_dict_defaults_and_errors() -> None:
    dep = Dependency.from_dict({"dependencies": ["a"]})
    assert dep == {"a"} and dep.all and dep.success_only
    with pytest.raises(TypeError, match="dependencies"):
        Dependency.from_dict({"dependencies": "abc"})
    with pytest.raises(TypeError, match="dependencies"):
        Dependency.from_dict({"dependencies": [1]})
    with pytest.raises(TypeError, match="all"):
        Dependency.from_dict({"dependencies": [], "all": "yes"})
    with pytest.raises(TypeError, match="success_only"):
        Dependency.from_dict({"dependencies": [], "success_only": 1})
    with pytest.raises(TypeError, match="failure"):
        Dependency.from_dict({"dependencies": [], "failure": None})
    # the older wire form still reads
    older = Dependency.from_dict({"dependencies": ["a"], "all": True, "success_only": False})
    assert (older.success, older.failure) == (True, True)


@pytest.mark.parametrize("dumps, loads", [(pickle.dumps, pickle.loads), (cloudpickle.dumps, pickle.loads)])
def test_dependency_pickles_with_switches(dumps: Any, loads: Any) -> None:
    dep = Dependency(["a", "b"], all=False, success_only=False)
    back = loads(dumps(dep))
    assert type(back) is Dependency
    assert back == dep
    assert (back.all, back.success_only) == (False, False)


def test_repr_names_switches() -> None:
    assert repr(Dependency(["b", "a"], all=False)) == "Dependency(['a', 'b'], all=False, success=True, failure=False)"


# ipyparallel 9.2's switches: which outcomes count as done
OUTCOMES = {"ok": ({"a"}, set()), "failed": (set(), {"a"}), "pending": (set(), set())}


@pytest.mark.parametrize(
    "success, failure, outcome, met, unreachable",
    [
        (True, False, "ok", True, False),
        (True, False, "failed", False, True),
        (True, True, "ok", True, False),
        (True, True, "failed", True, False),
        (False, True, "ok", False, True),
        (False, True, "failed", True, False),
        (False, False, "ok", False, True),
        (False, False, "failed", False, True),
        (False, True, "pending", False, False),
    ],
)
def test_success_and_failure_switches(success: bool, failure: bool, outcome: str, met: bool, unreachable: bool) -> None:
    completed, failed = OUTCOMES[outcome]
    for all_ in (True, False):
        dep = Dependency(["a"], all=all_, success=success, failure=failure)
        assert dep.check(completed, failed) is met
        assert dep.unreachable(completed, failed) is unreachable
        back = Dependency.from_dict(dep.as_dict())
        assert (back.success, back.failure) == (success, failure)


def test_success_only_is_a_view_of_the_switches() -> None:
    dep = Dependency(["a"], success_only=False)
    assert (dep.success, dep.failure, dep.success_only) == (True, True, False)
    dep.success_only = True
    assert (dep.success, dep.failure) == (True, False)
    assert Dependency(["a"], success=False, failure=True).success_only is False
    # explicit switches win over the older spelling
    assert Dependency(["a"], success_only=True, failure=True).failure is True
    inherited = Dependency(Dependency(["a"], success=False, failure=True), all=False)
    assert (inherited.all, inherited.success, inherited.failure) == (False, False, True)


# ----------------------------------------------------- functional dependencies

# Source compiled as if typed into an interactive session: its functions live in
# ``__main__`` and so cloudpickle must carry them by value, as it does for users.
MAIN_SOURCE = textwrap.dedent(
    """
    from taskyard.dependency import depend, dependent, require

    def on(flag):
        return flag

    @depend(on, True)
    def allowed(x):
        return x * 2

    @depend(on, False)
    def refused(x):
        return x * 2

    def plain(x, y=1):
        return x + y

    wrapped = dependent(plain, on, True)
    falsy = dependent(plain, lambda: 0)

    def helper(x):
        return x * 10

    class Box:
        def __init__(self, v):
            self.v = v

    @require("json", "os.path", helper, Box, factor=3)
    def uses_requirements(x):
        return json.dumps(helper(x) * factor) + os.path.sep + type(Box(1)).__name__

    @require("taskyard_no_such_module_xyz")
    def needs_missing():
        return 1

    @require("json")
    @depend(on, True)
    def stacked(x):
        return json.dumps([x])
    """
)


def _main_namespace() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(MAIN_SOURCE, "<interactive>", "exec"), namespace)
    return namespace


def _ship(obj: Any) -> Any:
    """What an engine gets: a cloudpickle round trip."""
    return pickle.loads(cloudpickle.dumps(obj))


@pytest.fixture(params=["local", "shipped"])
def main(request: pytest.FixtureRequest) -> dict[str, Any]:
    namespace = _main_namespace()
    if request.param == "local":
        return namespace
    names = ["allowed", "refused", "wrapped", "falsy", "uses_requirements", "needs_missing", "stacked"]
    return {name: _ship(namespace[name]) for name in names}


def test_functions_are_defined_in_main() -> None:
    namespace = _main_namespace()
    assert namespace["plain"].__module__ == "__main__"
    assert namespace["uses_requirements"].f.__module__ == "__main__"


def test_depend_runs_when_check_is_true(main: dict[str, Any]) -> None:
    assert main["allowed"](4) == 8
    assert main["wrapped"](1, y=5) == 6


def test_depend_raises_unmet_when_check_is_falsy(main: dict[str, Any]) -> None:
    with pytest.raises(UnmetDependency, match="on"):
        main["refused"](4)
    with pytest.raises(UnmetDependency):
        main["falsy"](1)


def test_require_imports_and_injects(main: dict[str, Any]) -> None:
    assert main["uses_requirements"](2) == "60/Box"


def test_require_missing_module_is_unmet(main: dict[str, Any]) -> None:
    with pytest.raises(UnmetDependency, match="taskyard_no_such_module_xyz"):
        main["needs_missing"]()


def test_require_over_depend(main: dict[str, Any]) -> None:
    assert main["stacked"](1) == "[1]"


def test_shipped_function_has_its_own_globals() -> None:
    namespace = _main_namespace()
    shipped = _ship(namespace["uses_requirements"])
    assert shipped(1) == "30/Box"
    # The injection went into the engine-side copy, not the sender's namespace.
    assert "json" not in namespace
    assert "factor" not in namespace


def test_wrappers_keep_the_function_identity() -> None:
    namespace = _main_namespace()
    for name in ("allowed", "uses_requirements", "stacked"):
        wrapper = namespace[name]
        assert wrapper.__name__ == name
        assert _ship(wrapper).__name__ == name
    assert "dependent" in repr(namespace["allowed"])
    assert "require" in repr(namespace["uses_requirements"])


def test_depend_passes_arguments_to_check() -> None:
    seen: list[Any] = []

    def check(*args: Any, **kwargs: Any) -> bool:
        seen.append((args, kwargs))
        return True

    @depend(check, 1, 2, key="v")
    def task() -> str:
        return "ran"

    assert task() == "ran"
    assert seen == [((1, 2), {"key": "v"})]
    assert isinstance(task, dependent)


def test_require_accepts_module_objects() -> None:
    import json as json_module

    @require(json_module)
    def task() -> str:
        return "ok"

    assert task() == "ok"


def test_require_rejects_nameless_positional() -> None:
    with pytest.raises(TypeError, match="by keyword"):
        require(42)
