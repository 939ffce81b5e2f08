"""The h11 server and httpx client over unix sockets and TCP, on asyncio and trio."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from plugwire.core.errors import (
    ClosedError,
    ConfigError,
    ConnectionClosedError,
    MessageTooLargeError,
    PluginTimeoutError,
)
from plugwire.core.transport import Address
from plugwire.http import HttpClient, HttpServer, Limits, Request, Response

pytestmark = pytest.mark.anyio


async def echo(request: Request) -> Response:
    if request.path == "/boom":
        raise RuntimeError("handler exploded")
    if request.path == "/slow":
        await anyio.sleep(5)
    if request.path == "/big":
        return Response(200, b"x" * 5000)
    doc = {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "ctype": request.content_type,
        "body": request.body.decode(),
    }
    return Response.json(doc, 201)


@pytest.fixture(params=["unix", "tcp"])
def address(request: pytest.FixtureRequest, sockdir: Path) -> Address:
    if request.param == "unix":
        return Address("unix", str(sockdir / "s.sock"))
    return Address("tcp", "127.0.0.1:0")


async def test_round_trip_and_keep_alive(address: Address) -> None:
    server = HttpServer(echo)
    async with server.serve(address) as bound, HttpClient(bound) as client:
        if address.network == "tcp":
            assert bound.address.startswith("127.0.0.1:") and not bound.address.endswith(":0")
        for i in range(3):
            resp = await client.post_json(f"/p/{i}?q=1", {"n": i})
            assert resp.status == 201
            doc = resp.decode_json()
            assert doc == {
                "method": "POST",
                "path": f"/p/{i}",
                "query": "q=1",
                "ctype": "application/json",
                "body": json.dumps({"n": i}, separators=(",", ":")),
            }
            assert resp.body.endswith(b"\n")
        got = await client.get("/g")
        assert got.decode_json()["method"] == "GET"
        assert server.connections == 1  # keep-alive reused one connection


async def test_unix_socket_removed_on_exit(sockdir: Path) -> None:
    path = sockdir / "gone.sock"
    async with HttpServer(echo).serve(Address("unix", str(path))):
        assert path.is_socket()
    assert not path.exists()


async def test_refuses_to_replace_regular_file(sockdir: Path) -> None:
    path = sockdir / "file"
    path.write_text("keep me")
    with pytest.raises(ConfigError, match="non-socket"):
        async with HttpServer(echo).serve(Address("unix", str(path))):
            pass
    assert path.read_text() == "keep me"


async def test_body_limit_gives_413_and_server_lives(address: Address) -> None:
    server = HttpServer(echo, limits=Limits(max_body_size=1000))
    async with server.serve(address) as bound:
        async with HttpClient(bound) as client:
            resp = await client.request("POST", "/x", body=b"y" * 1001)
            assert resp.status == 413
            assert b"exceeds the limit" in resp.body
        async with HttpClient(bound) as client:
            ok = await client.request("POST", "/x", body=b"y" * 1000)
            assert ok.status == 201


async def test_chunked_body_over_limit_gives_413(address: Address) -> None:
    server = HttpServer(echo, limits=Limits(max_body_size=100))

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"z" * 50

    async with server.serve(address) as bound:
        client = HttpClient(bound)
        try:
            request = client._client.build_request("POST", "/c", content=chunks())
            resp = await client._client.send(request)
            assert resp.status_code == 413
        finally:
            await client.aclose()


async def test_header_limit_gives_431(address: Address) -> None:
    server = HttpServer(echo, limits=Limits(max_header_size=2048))
    async with server.serve(address) as bound, HttpClient(bound) as client:
        resp = await client.request("GET", "/h", headers={"x-big": "a" * 4096})
        assert resp.status == 431
    async with server.serve(address) as bound, HttpClient(bound) as client:
        assert (await client.request("GET", "/h", headers={"x-small": "a" * 100})).status == 201


async def test_malformed_http_gives_400(sockdir: Path) -> None:
    path = str(sockdir / "m.sock")
    async with HttpServer(echo).serve(Address("unix", path)):
        async with await anyio.connect_unix(path) as stream:
            await stream.send(b"NOT HTTP AT ALL\r\n\r\n")
            data = b""
            with anyio.fail_after(5):
                try:
                    while True:
                        data += await stream.receive()
                except anyio.EndOfStream:
                    pass
        assert data.startswith(b"HTTP/1.1 400 ")
        # the server still serves
        async with HttpClient(Address("unix", path)) as client:
            assert (await client.get("/")).status == 201


async def test_handler_exception_gives_500(address: Address) -> None:
    async with HttpServer(echo).serve(address) as bound, HttpClient(bound) as client:
        resp = await client.get("/boom")
        assert resp.status == 500
        assert b"handler exploded" in resp.body
        assert (await client.get("/after")).status == 201


async def test_client_response_limit(address: Address) -> None:
    async with HttpServer(echo).serve(address) as bound:
        async with HttpClient(bound, limits=Limits(max_body_size=4096)) as client:
            with pytest.raises(MessageTooLargeError) as info:
                await client.get("/big")
            assert info.value.size == 5000 and info.value.limit == 4096
        async with HttpClient(bound, limits=Limits(max_body_size=10)) as client:
            with pytest.raises(MessageTooLargeError):
                await client.request("POST", "/x", body=b"0123456789a")


async def test_client_timeout(address: Address) -> None:
    async with HttpServer(echo).serve(address) as bound, HttpClient(bound) as client:
        with pytest.raises(PluginTimeoutError):
            await client.get("/slow", timeout=0.2)


async def test_connect_to_nothing(sockdir: Path) -> None:
    async with HttpClient(Address("unix", str(sockdir / "nobody.sock")), peer="ghost") as client:
        with pytest.raises(ConnectionClosedError) as info:
            await client.get("/")
        assert info.value.peer == "ghost"
    async with HttpClient(Address("tcp", "127.0.0.1:1")) as client:
        with pytest.raises(ConnectionClosedError):
            await client.get("/")


async def test_closed_client(address: Address) -> None:
    async with HttpServer(echo).serve(address) as bound:
        client = HttpClient(bound)
        await client.aclose()
        with pytest.raises(ClosedError):
            await client.get("/")


async def test_server_dropping_connection_is_connection_closed(sockdir: Path) -> None:
    path = str(sockdir / "drop.sock")
    listener = await anyio.create_unix_listener(path)

    async def drop(stream: anyio.abc.SocketStream) -> None:
        await stream.receive()
        await stream.aclose()

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, drop)
        async with HttpClient(Address("unix", path)) as client:
            with pytest.raises(ConnectionClosedError):
                await client.get("/")
        tg.cancel_scope.cancel()


def test_limits_validate() -> None:
    with pytest.raises(ConfigError):
        Limits(max_body_size=0)
    with pytest.raises(ConfigError):
        Limits(max_header_size=-1)
