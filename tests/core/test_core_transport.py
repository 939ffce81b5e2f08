from __future__ import annotations

from collections.abc import Mapping

import pytest

from plugwire.core import (
    Address,
    ConfigError,
    ConnectionClosedError,
    InProcessTransport,
    RemoteError,
    StatusCode,
    TransportNotAvailableError,
    available_transports,
    load_transport,
)

pytestmark = pytest.mark.anyio


def test_address_parse() -> None:
    assert Address.parse("unix:/tmp/a.sock") == Address("unix", "/tmp/a.sock")
    assert Address.parse("/tmp/a.sock") == Address("unix", "/tmp/a.sock")
    assert Address.parse("127.0.0.1:80") == Address("tcp", "127.0.0.1:80")
    assert str(Address.parse("tcp:127.0.0.1:80")) == "tcp:127.0.0.1:80"
    with pytest.raises(ConfigError):
        Address.parse("nonsense")
    with pytest.raises(ConfigError):
        Address("udp", "x")  # type: ignore[arg-type]


async def test_inprocess_transport_roundtrip() -> None:
    async def echo(payload: bytes, metadata: Mapping[str, str]) -> bytes:
        return payload + metadata.get("suffix", "").encode()

    async def fail(payload: bytes, metadata: Mapping[str, str]) -> bytes:
        raise RemoteError("no", code=StatusCode.PERMISSION_DENIED)

    transport = load_transport("inproc")
    assert isinstance(transport, InProcessTransport)
    handlers = {"/t.Echo/Echo": echo, "/t.Echo/Fail": fail}
    async with (
        transport.serve(Address("inproc", "t1"), handlers) as addr,
        await transport.connect(addr) as channel,
    ):
        assert await channel.unary("/t.Echo/Echo", b"hi", metadata={"suffix": "!"}) == b"hi!"
        with pytest.raises(RemoteError) as info:
            await channel.unary("/t.Echo/Fail", b"")
        assert info.value.code == StatusCode.PERMISSION_DENIED
        assert "PERMISSION_DENIED" in str(info.value)
        with pytest.raises(RemoteError) as info:
            await channel.unary("/t.Echo/Nope", b"")
        assert info.value.code == StatusCode.UNIMPLEMENTED
    with pytest.raises(ConnectionClosedError):
        await transport.connect(Address("inproc", "t1"))


def test_registry_names_the_extra_to_install() -> None:
    assert "inproc" in available_transports()
    with pytest.raises(TransportNotAvailableError) as info:
        load_transport("carrier-pigeon")
    assert "plugwire[carrier-pigeon]" in str(info.value)


def test_core_imports_no_transport() -> None:
    import subprocess
    import sys

    code = (
        "import sys, plugwire.core, plugwire.core.cli, plugwire.core.blocking;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('grpc', 'httpx', 'kubernetes')"
        " or m.startswith(('plugwire.grpc', 'plugwire.ttrpc', 'plugwire.http', 'plugwire.kube'))];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
