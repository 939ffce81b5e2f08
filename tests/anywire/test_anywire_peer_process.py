"""The serving peer is a real process of its own, SIGKILLed while calls are in flight.

Over every wire of ``available_transports()`` that another process can reach: the
server runs in ``anywire_peer.py`` (launched through ``PluginProcess``, the one spawn
path), a unary call (``Hang``) and a server-streaming call are in flight when the
process is killed; both fail within 1 s with a typed error naming the peer and the
step, and the client side goes on working: a new connection to a fresh server answers.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest
from anywire._generated import conformance_pb2 as pb
from anywire.conftest import SERVICE, wire_feature

from plugwire.core.errors import ConnectionClosedError
from plugwire.core.process import PluginProcess
from plugwire.core.transport import Address, Transport

pytestmark = [pytest.mark.anyio, wire_feature("separate_process")]

PEER = Path(__file__).with_name("anywire_peer.py")


@contextlib.asynccontextmanager
async def peer_process(
    transport: Transport, address: Address
) -> AsyncIterator[tuple[PluginProcess, Address]]:
    """A conformance server of ``transport`` in its own process; (process, bound)."""
    argv = [sys.executable, str(PEER), transport.name, str(address)]
    async with PluginProcess(
        argv, env={}, inherit_env=True, name=f"anywire-{transport.name}-peer"
    ) as proc:
        line = await proc.readline_stdout(timeout=60)
        assert line is not None and line.startswith("READY "), (line, proc.stderr_tail)
        yield proc, Address.parse(line.split(" ", 1)[1])


async def test_peer_process_sigkilled_mid_calls(
    transport: Transport, new_address: Callable[[], Address]
) -> None:
    outcome: dict[str, tuple[BaseException | None, float]] = {}
    streamed = anyio.Event()

    async with (
        peer_process(transport, new_address()) as (proc, bound),
        await transport.stub(bound, SERVICE) as stub,
    ):

        async def unary() -> None:
            try:
                await stub.Hang(pb.Msg(), timeout=30)
            except Exception as exc:
                outcome["unary"] = (exc, anyio.current_time())
            else:
                outcome["unary"] = (None, anyio.current_time())

        async def streaming() -> None:
            try:
                async for _ in stub.ServerStream(pb.Msg(text="s", count=10**6, sleep=0.02)):
                    streamed.set()
            except Exception as exc:
                outcome["stream"] = (exc, anyio.current_time())
            else:
                outcome["stream"] = (None, anyio.current_time())

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(unary)
                tg.start_soon(streaming)
                # both calls are in flight: Hang reached the servicer, the stream flows
                assert await proc.readline_stdout(timeout=20) == "HANG"
                await streamed.wait()
                proc.expect_exit()
                killed = anyio.current_time()
                proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL

    assert set(outcome) == {"unary", "stream"}
    for kind, (exc, when) in outcome.items():
        assert isinstance(exc, ConnectionClosedError), (kind, repr(exc))
        assert when - killed < 1.0, (kind, when - killed, repr(exc))
        # the error names the peer (its address) and the step that failed
        assert exc.peer and exc.step, (kind, repr(exc))
        assert bound.address in exc.peer or str(bound) in exc.peer, (kind, exc.peer, bound)

    # the client side keeps working: a fresh server in a new process answers
    async with (
        peer_process(transport, new_address()) as (_, again),
        await transport.stub(again, SERVICE) as stub,
    ):
        with anyio.fail_after(10):
            reply = await stub.Unary(pb.Msg(text="again"))
            assert reply.text.startswith("again|")
            assert [m.count async for m in stub.ServerStream(pb.Msg(count=3))] == [0, 1, 2]
