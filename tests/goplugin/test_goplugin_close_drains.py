"""A closing PluginClient lets the tasks reading its streams end by themselves.

Closing the channel cancels the client's ``StreamStdio`` and broker streams. When the
tasks reading them were cancelled too, a read still pending in gRPC core completed
later, and grpc.aio's poller handed that completion to the loop the call was made on:
once that loop had been closed (a program, or a test suite, running one event loop
after another) that raised ``RuntimeError: Event loop is closed`` into the next loop.
It failed CI runs of tests/goplugin/test_goplugin_python_host.py about once in eight;
the late completion was always ``pump_stdio``'s read. Now the readers see their calls
end (the completion is consumed on its own loop) and only what is still running after
:data:`plugwire.grpc._drain.DRAIN_TIMEOUT` is cancelled.

The race needs a read still pending at the moment of the close, so the first test
catches a regression only when that timing occurs; the tests of ``drain_tasks`` are
the deterministic part.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from goplugin_support import GoBinaries

from plugwire.grpc import _drain
from plugwire.grpc.goplugin import ClientConfig, PluginClient, client, stdio
from plugwire.grpc.goplugin.examples import HANDSHAKE
from plugwire.grpc.goplugin.examples.counter import CounterPlugin
from plugwire.grpc.goplugin.examples.kv import KVPlugin

pytestmark = pytest.mark.anyio


@pytest.mark.interop
@pytest.mark.parametrize("mux", [False, True], ids=["direct", "multiplexed"])
async def test_stream_readers_are_not_cancelled_by_the_close(
    go: GoBinaries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mux: bool
) -> None:
    """go-plugin's own counter example (it calls back through the broker, so the host
    has its stdio stream, its broker stream and a broker server open)."""
    ends: dict[str, int] = {}

    def recorded(name: str, real: Any) -> Any:
        async def reader(*args: Any, **kwargs: Any) -> None:
            try:
                await real(*args, **kwargs)
            finally:
                task = asyncio.current_task()
                assert task is not None
                ends[name] = task.cancelling()  # > 0: the task itself was cancelled

        return reader

    monkeypatch.setattr(client, "pump_stdio", recorded("stdio", stdio.pump_stdio))
    config = ClientConfig(
        handshake=HANDSHAKE,
        plugins={"kv_grpc": KVPlugin(), "counter": CounterPlugin()},
        cmd=[str(go.upstream_counter_plugin)],
        cwd=str(tmp_path),
        env={"KV_DIR": str(tmp_path)},
        multiplex=mux,
        start_timeout=30,
    )
    async with PluginClient(config) as plugin:
        counter = plugin.dispense("counter")
        await counter.put("n", 2)
        assert await counter.get("n") == 2
    assert ends == {"stdio": 0}


async def test_drain_waits_for_tasks_then_cancels_the_stuck_ones() -> None:
    async def ends_soon() -> str:
        await asyncio.sleep(0.01)
        return "done"

    quick = asyncio.ensure_future(ends_soon())
    stuck = asyncio.ensure_future(asyncio.Event().wait())
    failing = asyncio.ensure_future(asyncio.sleep(0.01, result=None))
    await _drain.drain_tasks([quick, stuck, failing], timeout=0.2)
    assert quick.result() == "done" and not quick.cancelled()
    assert stuck.cancelled()
    assert failing.done() and not failing.cancelled()


async def test_drain_cancels_the_tasks_when_the_caller_is_cancelled() -> None:
    stuck = asyncio.ensure_future(asyncio.Event().wait())
    waiter = asyncio.ensure_future(_drain.drain_tasks([stuck], timeout=30))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert stuck.cancelled()
