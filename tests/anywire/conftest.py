"""Fixtures of the anywire conformance suite: every installed transport, one servicer.

``transport`` is parametrized over :func:`plugwire.core.transport.available_transports`,
so installing a transport adds it to every test here. The servicer is an ordinary
grpcio-tools ``ConformanceServicer`` subclass (tests/anywire/_generated, see codegen.sh),
served unchanged on each wire.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from anywire._generated import conformance_pb2 as pb
from anywire._generated import conformance_pb2_grpc as pb_grpc
from google.protobuf import any_pb2

from plugwire.core.rpc import Stub
from plugwire.core.transport import Address, Transport, available_transports, load_transport

SERVICE = pb.DESCRIPTOR.services_by_name["Conformance"]
_names = itertools.count()

#: Wires whose servers no other process can reach, and why: tests marked
#: ``wire_feature("separate_process")`` (the serving peer in a process of its own)
#: are deselected for them.
IN_PROCESS_ONLY = {
    "inproc": "an inproc server lives in this process's registry: no other process reaches it"
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "wire_feature(name): the test needs a feature some wires cannot carry"
    )


def _not_applicable(item: pytest.Item) -> str | None:
    """Why ``item`` does not apply to its transport (None: it does).

    A wire that cannot carry a feature (``Transport.rpc_unsupported``, with its reason,
    checked by test_anywire_unsupported_features_have_reasons) or a transport that does
    not run on the item's async backend is not tested for it: such items are
    deselected at collection, not skipped, so a skip here always means a missing tool.
    """
    params = getattr(item, "callspec", None)
    name = params.params.get("transport_name") if params is not None else None
    if name is None:
        return None
    transport = load_transport(str(name))
    backend = params.params.get("anyio_backend") if params is not None else None
    if isinstance(backend, tuple):
        backend = backend[0]
    if backend is not None and str(backend) not in transport.backends:
        return f"{name} runs on {sorted(transport.backends)}"
    for mark in item.iter_markers("wire_feature"):
        if mark.args[0] == "separate_process" and name in IN_PROCESS_ONLY:
            return IN_PROCESS_ONLY[str(name)]
        if mark.args[0] in transport.rpc_unsupported:
            return transport.rpc_unsupported[mark.args[0]]
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    keep, drop = [], []
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.anywire)
            if _not_applicable(item) is not None:
                drop.append(item)
                continue
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


class ConformanceServicer(pb_grpc.ConformanceServicer):
    """Behaviour driven by the request fields (see protos/anywire/conformance.proto).

    ``Missing`` is left to the generated default (set_code UNIMPLEMENTED, raise
    NotImplementedError)."""

    def __init__(self) -> None:
        self.hang_started = anyio.Event()
        self.hang_ended = anyio.Event()
        self.hang_saw_cancelled: bool | None = None
        self.hang_done_callback = False
        self.done: list[str] = []  # "<method>:<cancelled>" per finished call asking for it
        self.done_event = anyio.Event()

    @staticmethod
    def _detail(request: pb.Msg) -> list[bytes]:
        if not request.detail:
            return []
        box = any_pb2.Any()
        box.Pack(pb.Msg(text=request.detail.decode()))
        return [box.SerializeToString()]

    async def _answer_metadata(self, context: Any) -> str:
        md = dict(context.invocation_metadata())
        echo = md.get("x-echo")
        if echo is not None:
            await context.send_initial_metadata((("x-initial", echo),))
            context.set_trailing_metadata((("x-trailing", echo + "-t"),))
        return echo or ""

    def _note_done(self, method: str, context: Any) -> None:
        def done(ctx: Any) -> None:
            self.done.append(f"{method}:{ctx.cancelled()}")
            self.done_event.set()

        context.add_done_callback(done)

    async def Unary(self, request: pb.Msg, context: Any) -> pb.Msg:
        if request.text == "note-done":
            self._note_done("Unary", context)
        echo = await self._answer_metadata(context)
        if request.sleep:
            await anyio.sleep(request.sleep)
        if request.fail_code:
            await context.abort(request.fail_code, request.text, self._detail(request))
        remaining = context.time_remaining()
        return pb.Msg(
            text=f"{request.text}|md={echo}|deadline={'yes' if remaining else 'no'}",
            count=len(request.blob),
        )

    async def ServerStream(self, request: pb.Msg, context: Any) -> AsyncIterator[pb.Msg]:
        if request.text == "note-done":
            self._note_done("ServerStream", context)
        await self._answer_metadata(context)
        for i in range(request.count):
            if request.fail_code and i == request.fail_after:
                await context.abort(request.fail_code, request.text, self._detail(request))
            if request.sleep:
                await anyio.sleep(request.sleep)
            yield pb.Msg(text=f"{request.text}{i}", count=i)

    async def ClientStream(self, request_iterator: AsyncIterator[pb.Msg], context: Any) -> pb.Msg:
        await self._answer_metadata(context)
        texts = [m.text async for m in request_iterator]
        return pb.Msg(text="+".join(texts), count=len(texts))

    async def Bidi(
        self, request_iterator: AsyncIterator[pb.Msg], context: Any
    ) -> AsyncIterator[pb.Msg]:
        await self._answer_metadata(context)
        async for m in request_iterator:
            if m.fail_code:
                await context.abort(m.fail_code, m.text, self._detail(m))
            yield pb.Msg(text=m.text.upper(), count=m.count + 1)

    async def Hang(self, request: pb.Msg, context: Any) -> pb.Msg:
        def done(_ctx: Any) -> None:
            self.hang_done_callback = True

        context.add_done_callback(done)
        self.hang_started.set()
        try:
            await anyio.sleep_forever()
        finally:
            self.hang_saw_cancelled = context.cancelled()
            self.hang_ended.set()
        raise AssertionError("unreachable")


@pytest.fixture(params=sorted(available_transports()))
def transport_name(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    name = str(request.param)
    transport = load_transport(name)
    if anyio_backend not in transport.backends:
        pytest.skip(f"{name} runs on {sorted(transport.backends)} only, not {anyio_backend}")
    return name


@pytest.fixture
def transport(transport_name: str) -> Transport:
    return load_transport(transport_name)


def wire_feature(feature: str) -> pytest.MarkDecorator:
    """Mark a test as needing ``feature``; wires that cannot carry it (their
    ``rpc_unsupported``) are deselected for it at collection."""
    return pytest.mark.wire_feature(feature)


Serving = Callable[..., contextlib.AbstractAsyncContextManager[tuple[Address, Stub]]]


@pytest.fixture
def new_address(transport: Transport, tmp_path: Path) -> Callable[[], Address]:
    """A fresh address for ``transport`` (a unix socket; a name for inproc)."""

    def make() -> Address:
        if transport.name == "inproc":
            return Address("inproc", f"anywire-{next(_names)}")
        return Address("unix", str(tmp_path / f"s{next(_names)}.sock"))

    return make


@pytest.fixture
def serving(transport: Transport, new_address: Callable[[], Address]) -> Serving:
    """``async with serving(servicer, max_message_size=None) as (address, stub)``."""

    @contextlib.asynccontextmanager
    async def serve(
        servicer: object, *, max_message_size: int | None = None
    ) -> AsyncIterator[tuple[Address, Stub]]:
        address = new_address()
        async with (
            transport.serve(address, [servicer], max_message_size=max_message_size) as bound,
            await transport.stub(bound, SERVICE) as stub,
        ):
            yield bound, stub

    return serve
