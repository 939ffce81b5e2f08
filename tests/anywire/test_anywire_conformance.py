"""One servicer, every wire: the same calls over each installed transport.

Every test runs once per entry of ``available_transports()`` (see conftest.py) and
per anyio backend the transport supports. A test skips only where the wire cannot
carry the feature (``Transport.rpc_unsupported`` gives the reason).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from anywire._generated import conformance_pb2 as pb
from anywire.conftest import SERVICE, ConformanceServicer, Serving, wire_feature
from google.protobuf import any_pb2

from plugwire.core.errors import ConnectionClosedError, MessageTooLargeError
from plugwire.core.rpc import RpcError, StatusCode, bind
from plugwire.core.transport import Address, Transport, available_transports, load_transport

pytestmark = pytest.mark.anyio


async def test_unary(serving: Serving) -> None:
    async with serving(ConformanceServicer()) as (_, stub):
        reply = await stub.Unary(pb.Msg(text="hi", blob=b"x" * 1000))
        assert isinstance(reply, pb.Msg)
        assert reply.text == "hi|md=|deadline=no"
        assert reply.count == 1000
        # many calls in flight on one stub
        async with anyio.create_task_group() as tg:
            results: dict[int, str] = {}

            async def one(i: int) -> None:
                results[i] = (await stub.Unary(pb.Msg(text=str(i)))).text

            for i in range(20):
                tg.start_soon(one, i)
        assert results == {i: f"{i}|md=|deadline=no" for i in range(20)}


async def test_done_callback_runs_once_the_call_has_ended(serving: Serving) -> None:
    """``context.add_done_callback`` fires after a call that ended normally, on every
    wire (go-plugin's Shutdown stops the plugin from there, once its reply is out)."""
    servicer = ConformanceServicer()
    async with serving(servicer) as (_, stub):
        reply = await stub.Unary(pb.Msg(text="note-done"))
        assert reply.text.startswith("note-done|")
        with anyio.fail_after(5):
            await servicer.done_event.wait()
        assert servicer.done == ["Unary:False"]


@wire_feature("unary_stream")
async def test_done_callback_runs_after_a_stream(transport: Transport, serving: Serving) -> None:
    servicer = ConformanceServicer()
    async with serving(servicer) as (_, stub):
        replies = [m async for m in stub.ServerStream(pb.Msg(text="note-done", count=2))]
        assert len(replies) == 2
        with anyio.fail_after(5):
            await servicer.done_event.wait()
        assert servicer.done == ["ServerStream:False"]


async def test_servicer_found_from_generated_class(transport: Transport) -> None:
    svc = bind(ConformanceServicer())
    assert svc.spec.full_name == "plugwire.anywire.Conformance"
    assert {m.name: m.kind for m in svc.spec.methods.values()} == {
        "Unary": "unary_unary",
        "ServerStream": "unary_stream",
        "ClientStream": "stream_unary",
        "Bidi": "stream_stream",
        "Hang": "unary_unary",
        "Missing": "unary_unary",
    }


@wire_feature("unary_stream")
async def test_server_streaming(transport: Transport, serving: Serving) -> None:
    async with serving(ConformanceServicer()) as (_, stub):
        replies = [m async for m in stub.ServerStream(pb.Msg(text="n", count=5))]
        assert [(m.text, m.count) for m in replies] == [(f"n{i}", i) for i in range(5)]
        assert [m async for m in stub.ServerStream(pb.Msg(count=0))] == []


@wire_feature("unary_stream")
async def test_server_streaming_fails_midway(transport: Transport, serving: Serving) -> None:
    async with serving(ConformanceServicer()) as (_, stub):
        call = stub.ServerStream(
            pb.Msg(text="stop", count=5, fail_after=2, fail_code=StatusCode.ABORTED)
        )
        got = []
        with pytest.raises(RpcError) as info:
            async for m in call:
                got.append(m.count)
        assert got == [0, 1]
        assert info.value.code == StatusCode.ABORTED
        assert info.value.message == "stop"


@wire_feature("stream_unary")
async def test_client_streaming(transport: Transport, serving: Serving) -> None:
    async with serving(ConformanceServicer()) as (_, stub):
        reply = await stub.ClientStream([pb.Msg(text=t) for t in "abcd"])
        assert (reply.text, reply.count) == ("a+b+c+d", 4)

        async def gen() -> Any:
            for t in ("x", "y"):
                yield pb.Msg(text=t)

        reply = await stub.ClientStream(gen())
        assert (reply.text, reply.count) == ("x+y", 2)
        reply = await stub.ClientStream([])
        assert (reply.text, reply.count) == ("", 0)


@wire_feature("stream_stream")
async def test_bidirectional_ping_pong(transport: Transport, serving: Serving) -> None:
    async with serving(ConformanceServicer()) as (_, stub):
        call = stub.Bidi()
        try:
            for i, word in enumerate(["ping", "pong", "again"]):
                await call.write(pb.Msg(text=word, count=i))
                reply = await call.read()
                assert (reply.text, reply.count) == (word.upper(), i + 1)
            await call.done_writing()
            assert await call.read() is None
        finally:
            await call.aclose()
        # with a request iterator
        replies = [m.text async for m in stub.Bidi([pb.Msg(text="a"), pb.Msg(text="b")])]
        assert replies == ["A", "B"]


async def test_request_metadata(serving: Serving) -> None:
    async with serving(ConformanceServicer()) as (_, stub):
        reply = await stub.Unary(pb.Msg(text="m"), metadata={"x-echo": "v1"})
        assert reply.text == "m|md=v1|deadline=no"


@wire_feature("response_metadata")
async def test_response_metadata(transport: Transport, serving: Serving) -> None:
    async with serving(ConformanceServicer()) as (_, stub):
        call = stub.Unary(pb.Msg(text="m"), metadata=(("x-echo", "v2"),))
        await call
        assert ("x-initial", "v2") in await call.initial_metadata()
        assert ("x-trailing", "v2-t") in await call.trailing_metadata()
        if "unary_stream" not in transport.rpc_unsupported:
            stream = stub.ServerStream(pb.Msg(count=2), metadata={"x-echo": "s"})
            assert len([m async for m in stream]) == 2
            assert ("x-initial", "s") in await stream.initial_metadata()
            assert ("x-trailing", "s-t") in await stream.trailing_metadata()
        # trailing metadata travels with an error status too
        with pytest.raises(RpcError) as info:
            await stub.Unary(
                pb.Msg(text="bad", fail_code=StatusCode.NOT_FOUND), metadata={"x-echo": "e"}
            )
        assert ("x-trailing", "e-t") in info.value.trailing_metadata


@pytest.mark.parametrize(
    "code",
    [
        StatusCode.INVALID_ARGUMENT,
        StatusCode.NOT_FOUND,
        StatusCode.PERMISSION_DENIED,
        StatusCode.FAILED_PRECONDITION,
        StatusCode.UNAUTHENTICATED,
    ],
)
async def test_status_code_with_details(serving: Serving, code: StatusCode) -> None:
    async with serving(ConformanceServicer()) as (_, stub):
        with pytest.raises(RpcError) as info:
            await stub.Unary(pb.Msg(text=f"no {code.name}", fail_code=code, detail=b"why"))
        err = info.value
        assert err.code == code and err.status is code
        assert err.message == f"no {code.name}"
        assert len(err.details) == 1
        box = any_pb2.Any.FromString(err.details[0])
        detail = pb.Msg()
        assert box.Unpack(detail)
        assert detail.text == "why"
        assert code.name in str(err)
        # the stub keeps working after an error status
        assert (await stub.Unary(pb.Msg(text="ok"))).text.startswith("ok|")


async def test_generated_default_is_unimplemented(serving: Serving) -> None:
    async with serving(ConformanceServicer()) as (_, stub):
        with pytest.raises(RpcError) as info:
            await stub.Missing(pb.Msg())
        assert info.value.code == StatusCode.UNIMPLEMENTED


async def test_deadline_exceeded(serving: Serving) -> None:
    async with serving(ConformanceServicer()) as (_, stub):
        start = anyio.current_time()
        with pytest.raises(RpcError) as info:
            await stub.Unary(pb.Msg(text="slow", sleep=10), timeout=0.3)
        assert info.value.code == StatusCode.DEADLINE_EXCEEDED
        assert anyio.current_time() - start < 3
        # the servicer sees the deadline
        reply = await stub.Unary(pb.Msg(text="t"), timeout=10)
        assert reply.text == "t|md=|deadline=yes"


async def test_client_cancel_returns_promptly(serving: Serving) -> None:
    servicer = ConformanceServicer()
    async with serving(servicer) as (_, stub):
        start = anyio.current_time()
        with anyio.move_on_after(0.3) as scope:
            await stub.Hang(pb.Msg())
        assert scope.cancelled_caught
        assert anyio.current_time() - start < 3
        assert servicer.hang_started.is_set()
        assert (await stub.Unary(pb.Msg(text="after"))).text.startswith("after|")


@wire_feature("cancellation")
async def test_client_cancel_reaches_servicer(transport: Transport, serving: Serving) -> None:
    servicer = ConformanceServicer()
    async with serving(servicer) as (_, stub):

        async def hang() -> None:
            await stub.Hang(pb.Msg())

        async with anyio.create_task_group() as tg:
            tg.start_soon(hang)
            with anyio.fail_after(5):
                await servicer.hang_started.wait()
            tg.cancel_scope.cancel()
        with anyio.fail_after(5):
            await servicer.hang_ended.wait()
        assert servicer.hang_saw_cancelled is True


async def test_oversized_request_is_a_typed_error(serving: Serving) -> None:
    async with serving(ConformanceServicer(), max_message_size=64 * 1024) as (_, stub):
        assert (await stub.Unary(pb.Msg(blob=b"x" * 32 * 1024))).count == 32 * 1024
        with pytest.raises((RpcError, MessageTooLargeError)) as info:
            await stub.Unary(pb.Msg(blob=b"x" * 200 * 1024))
        assert info.value.code == StatusCode.RESOURCE_EXHAUSTED  # type: ignore[union-attr]
        # the stub is still usable
        assert (await stub.Unary(pb.Msg(text="small"))).text.startswith("small|")


async def test_peer_dying_mid_call_is_a_typed_error(
    transport: Transport, new_address: Callable[[], Address]
) -> None:
    """The server goes away (its serve block is cancelled) while a call waits on it."""
    servicer = ConformanceServicer()
    server_scope = anyio.CancelScope()
    ready = anyio.Event()
    bound: list[Address] = []

    async def run_server() -> None:
        with server_scope:
            async with transport.serve(new_address(), [servicer]) as where:
                bound.append(where)
                ready.set()
                await anyio.sleep_forever()

    async def kill_server() -> None:
        await servicer.hang_started.wait()
        server_scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_server)
        await ready.wait()
        async with await transport.stub(bound[0], SERVICE) as stub:
            tg.start_soon(kill_server)
            start = anyio.current_time()
            with pytest.raises(ConnectionClosedError) as info, anyio.fail_after(10):
                await stub.Hang(pb.Msg(), timeout=30)
            assert anyio.current_time() - start < 5
    # the error says which peer and which step failed
    assert info.value.peer and info.value.step, repr(info.value)
    assert servicer.hang_ended.is_set()


def test_anywire_unsupported_features_have_reasons() -> None:
    """What a wire cannot carry is declared with a reason, and only known features
    (the ones conformance tests are deselected for) may be declared."""
    known = {"unary_stream", "stream_unary", "stream_stream", "response_metadata", "cancellation"}
    for name in available_transports():
        transport = load_transport(name)
        for feature, reason in transport.rpc_unsupported.items():
            assert feature in known, (name, feature)
            assert len(reason) > 20, (name, feature, reason)
    assert "unary_unary" not in known  # unary calls run on every wire
