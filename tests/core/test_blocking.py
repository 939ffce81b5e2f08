from __future__ import annotations

import sys

import pytest

from plugwire.core import ClosedError, ProcessPlugin
from plugwire.core.blocking import BlockingHost, run

CAT = [sys.executable, "-c", "import sys\nfor l in sys.stdin: print(l.strip()[::-1], flush=True)"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_blocking_host(backend: str) -> None:
    with BlockingHost(backend=backend) as host:
        rev = host.launch(ProcessPlugin("rev", CAT, env={}, stdin=True, polite_signal=None))
        assert rev.handle.name == "rev" and rev.started
        rev.process.write_stdin(b"hello\n")  # a coroutine method, called plainly
        assert rev.process.readline_stdout(20) == "olleh"
        host.close(rev)
        assert rev.process.returncode == 0 and rev.closed
    with pytest.raises(ClosedError):
        host.call(rev.handle.process.wait)


def test_run() -> None:
    async def add(a: int, b: int) -> int:
        return a + b

    assert run(add, 2, 3) == 5
    assert run(add, 2, 3, backend="trio") == 5


def test_blocking_enter_wraps_async_context_managers() -> None:
    class Resource:
        entered = False

        async def __aenter__(self) -> Resource:
            self.entered = True
            return self

        async def __aexit__(self, *exc: object) -> None:
            self.entered = False

        async def double(self, x: int) -> int:
            return 2 * x

    res = Resource()
    with BlockingHost() as host:
        wrapped = host.enter(res)
        assert res.entered and wrapped.double(21) == 42
        assert host.wrap(res).double(2) == 4
    assert not res.entered


def test_blocking_wrap_runs_plain_callables_on_the_loop_and_awaits_results() -> None:
    import threading

    import anyio

    class Stub:  # like a grpc.aio stub: a plain callable returning an awaitable
        def __init__(self) -> None:
            self.threads: list[str] = []

        def Echo(self, value: str) -> object:
            self.threads.append(threading.current_thread().name)

            async def reply() -> str:
                await anyio.lowlevel.checkpoint()
                return value.upper()

            return reply()

    stub = Stub()
    with BlockingHost() as host:
        assert host.wrap(stub).Echo("hi") == "HI"
    assert stub.threads and stub.threads[0] != threading.current_thread().name
