"""GrpcTransport: the core Transport interface over grpc.aio, and its refusal of trio."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from plugwire.core.errors import ConnectionClosedError, RemoteError, TransportNotAvailableError
from plugwire.core.transport import Address, load_transport
from plugwire.grpc import GrpcTransport


async def echo(payload: bytes, metadata: Mapping[str, str]) -> bytes:
    return payload[::-1] + metadata.get("x-tag", "").encode()


async def fail(payload: bytes, metadata: Mapping[str, str]) -> bytes:
    raise RemoteError("nope", code=9)


@pytest.mark.anyio
@pytest.mark.parametrize("network", ["unix", "tcp"])
async def test_serve_and_call(tmp_path: Path, network: str) -> None:
    address = (
        Address("unix", str(tmp_path / "s")) if network == "unix" else Address("tcp", "127.0.0.1:0")
    )
    transport = load_transport("grpc")
    assert isinstance(transport, GrpcTransport)
    async with transport.serve(address, {"/t.S/Echo": echo, "/t.S/Fail": fail}) as bound:
        if network == "tcp":
            assert not bound.address.endswith(":0")
        channel = await transport.connect(bound)
        async with channel:
            assert await channel.unary("/t.S/Echo", b"abc", metadata={"x-tag": "!"}) == b"cba!"
            with pytest.raises(RemoteError) as info:
                await channel.unary("/t.S/Fail", b"")
            assert info.value.code == 9 and info.value.message == "nope"
            with pytest.raises(RemoteError) as info:
                await channel.unary("/t.S/Missing", b"")
            assert info.value.code == 12  # UNIMPLEMENTED
    if network == "unix":
        assert not (tmp_path / "s").exists()


@pytest.mark.anyio
async def test_connect_to_nothing(tmp_path: Path) -> None:
    channel = await GrpcTransport().connect(Address("unix", str(tmp_path / "none")))
    async with channel:
        with pytest.raises(ConnectionClosedError):
            await channel.unary("/t.S/Echo", b"", timeout=2)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(TransportNotAvailableError) as info:
        await GrpcTransport().connect(Address("unix", str(tmp_path / "s")))
    assert "asyncio" in str(info.value) and info.value.seen == "trio"
    with pytest.raises(TransportNotAvailableError):
        async with GrpcTransport().serve(Address("unix", str(tmp_path / "s")), {}):
            pass
