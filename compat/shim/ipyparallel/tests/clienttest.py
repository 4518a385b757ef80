"""``ClusterTestCase`` and the helpers ipyparallel's test modules import, for taskyard.

Written from what those modules use (a ``client`` per test on the ``iptest``
cluster with at least ``engine_count`` engines, clean namespaces, a bounded
``wait``, ``raises_remote``), not from ipyparallel's own helper module.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ipyparallel import Client, error
from ipyparallel.tests import add_engines, launchers  # noqa: F401


def segfault() -> None:
    import ctypes

    ctypes.memset(-1, 0, 1)


def crash() -> None:
    import os

    os._exit(1)


def conditional_crash(condition: bool) -> None:
    if condition:
        import os

        os._exit(1)


def wait(n: float) -> float:
    import time

    time.sleep(n)
    return n


def raiser(eclass: type[BaseException]) -> None:
    raise eclass()


def generate_output() -> Any:
    """Two outputs of each kind, and a rich value (as the magics tests expect)."""
    import sys

    from IPython.display import HTML, Math, display

    print("stdout")
    print("stderr", file=sys.stderr)
    display(HTML("<b>HTML</b>"))
    print("stdout2")
    print("stderr2", file=sys.stderr)
    display(Math(r"\alpha=\beta"))
    return Math("42")


def skip_without(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def run(*args: Any, **kwargs: Any) -> Any:
            for name in names:
                try:
                    __import__(name)
                except ImportError:
                    pytest.skip(f"needs {name}")
            return f(*args, **kwargs)

        return run

    return decorate


@contextlib.contextmanager
def raises_remote(etype: type[BaseException] | str) -> Iterator[None]:
    expected = etype if isinstance(etype, str) else etype.__name__
    try:
        try:
            yield
        except error.CompositeError as exc:
            exc.raise_exception()
    except error.RemoteError as exc:
        assert exc.ename == expected, f"raised {exc.ename}, expected {expected}"
    else:
        pytest.fail("should have raised a RemoteError")


@pytest.mark.usefixtures("cluster")
class ClusterTestCase:
    timeout = 10
    engine_count = 2
    test_timeout = 30

    def add_engines(self, n: int = 1, block: bool = True) -> None:
        self.engines.extend(add_engines(n))
        if block:
            self.wait_on_engines()

    def minimum_engines(self, n: int = 1, block: bool = True) -> None:
        self.engines.extend(add_engines(n, total=True))
        if block:
            self.wait_on_engines()

    def wait_on_engines(self, timeout: float = 5) -> None:
        n = len(self.engines) + self.base_engine_count
        self.client.wait_for_engines(n, timeout=timeout)
        assert len(self.client.ids) >= n, "waiting for engines timed out"

    def client_wait(self, client: Any, jobs: Any = None, timeout: float = -1) -> Any:
        if timeout is None or timeout < 0:
            timeout = self.timeout
        return Client.wait(client, jobs, timeout)

    def connect_client(self) -> Any:
        c = Client(profile="iptest")
        c.wait = lambda *a, **kw: self.client_wait(c, *a, **kw)
        return c

    def assertRaisesRemote(self, etype: Any, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        with raises_remote(etype):
            f(*args, **kwargs)

    def _wait_for(self, f: Callable[[], Any], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() <= deadline:
            if f():
                return
            time.sleep(0.1)

    def setup_method(self) -> None:
        if hasattr(signal, "SIGALRM"):

            def on_alarm(sig: int, frame: Any) -> None:
                raise TimeoutError(f"test did not finish in {self.test_timeout} s")

            signal.signal(signal.SIGALRM, on_alarm)
            signal.alarm(self.test_timeout)
        add_engines(self.engine_count, total=True)
        self.client = self.connect_client()
        self.client.clear(block=True)
        self.base_engine_count = len(self.client.ids)
        self.engines: list[Any] = []

    def teardown_method(self) -> None:
        try:
            self.client.wait(timeout=2)
        finally:
            self.client.close()
            if hasattr(signal, "SIGALRM"):
                signal.alarm(0)
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
