"""HttpTransport on the core Transport interface."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from plugwire.core.errors import ProtocolError, RemoteError
from plugwire.core.status import StatusCode
from plugwire.core.transport import Address, available_transports, load_transport
from plugwire.http import HttpClient, HttpServer, HttpTransport, Request, Response
from plugwire.http.transport import HttpChannel

pytestmark = pytest.mark.anyio


async def upper(payload: bytes, metadata: Mapping[str, str]) -> bytes:
    return payload.upper() + b"|" + metadata.get("tenant", "-").encode()


async def deny(payload: bytes, metadata: Mapping[str, str]) -> bytes:
    raise RemoteError("no entry", code=StatusCode.PERMISSION_DENIED)


async def crash(payload: bytes, metadata: Mapping[str, str]) -> bytes:
    raise ValueError("bad payload")


HANDLERS = {"/t.Svc/Upper": upper, "/t.Svc/Deny": deny, "/t.Svc/Crash": crash}


def test_registered_as_entry_point() -> None:
    assert "http" in available_transports()
    assert isinstance(load_transport("http"), HttpTransport)


@pytest.mark.parametrize("network", ["unix", "tcp"])
async def test_unary_calls(network: str, sockdir: Path) -> None:
    transport = load_transport("http")
    address = (
        Address("unix", str(sockdir / "t.sock"))
        if network == "unix"
        else Address("tcp", "127.0.0.1:0")
    )
    async with transport.serve(address, HANDLERS) as bound:
        channel = await transport.connect(bound)
        async with channel:
            assert (
                await channel.unary("/t.Svc/Upper", b"abc", metadata={"Tenant": "t1"}) == b"ABC|t1"
            )
            assert await channel.unary("/t.Svc/Upper", b"") == b"|-"
            with pytest.raises(RemoteError) as denied:
                await channel.unary("/t.Svc/Deny", b"")
            assert denied.value.code == StatusCode.PERMISSION_DENIED
            assert denied.value.message == "no entry"
            with pytest.raises(RemoteError) as crashed:
                await channel.unary("/t.Svc/Crash", b"")
            assert crashed.value.code == StatusCode.UNKNOWN
            assert "bad payload" in crashed.value.message
            with pytest.raises(RemoteError) as missing:
                await channel.unary("/t.Svc/Nope", b"")
            assert missing.value.code == StatusCode.UNIMPLEMENTED


async def test_non_plugwire_error_reply_is_protocol_error(sockdir: Path) -> None:
    async def teapot(request: Request) -> Response:
        return Response.text("short and stout", 418)

    address = Address("unix", str(sockdir / "tea.sock"))
    async with HttpServer(teapot).serve(address):
        channel = HttpChannel(HttpClient(address))
        async with channel:
            with pytest.raises(ProtocolError) as info:
                await channel.unary("/t.Svc/Upper", b"x")
            assert "418" in str(info.value)
