"""AutoMTLS certificates and the TLS path (Python ssl in front of grpc.aio)."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from plugwire.grpc import TLSConfig, generate_cert
from plugwire.grpc._listen import ListenConfig
from plugwire.grpc._wire import open_channel, start_server
from plugwire.grpc.goplugin.health import add_health, check_health

pytestmark = pytest.mark.anyio


def test_certificate_matches_go_plugin() -> None:
    cert = generate_cert()
    parsed = x509.load_der_x509_certificate(cert.cert_der)
    key = parsed.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp521r1"
    assert parsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    eku = parsed.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    assert parsed.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert generate_cert().cert_der != cert.cert_der


@pytest.mark.parametrize("network", ["unix", "tcp"])
async def test_mutual_tls_roundtrip(tmp_path: object, network: str) -> None:
    plugin, host = generate_cert(), generate_cert()
    listen = ListenConfig(socket_dir=str(tmp_path))
    server = grpc.aio.server()
    await add_health(server)
    listening = await start_server(
        server, network=network, listen=listen, tls=TLSConfig.mutual(plugin, host.cert_pem)
    )
    try:
        channel = await open_channel(listening.address, TLSConfig.mutual(host, plugin.cert_pem))
        async with channel:
            assert await check_health(channel, timeout=5) == 1
        # A client with another certificate is refused.
        stranger = generate_cert()
        channel = await open_channel(listening.address, TLSConfig.mutual(stranger, plugin.cert_pem))
        async with channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await check_health(channel, timeout=2)
            assert info.value.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            )
        # A client that does not trust the server's certificate gives up too.
        channel = await open_channel(listening.address, TLSConfig.mutual(host, stranger.cert_pem))
        async with channel:
            with pytest.raises(grpc.aio.AioRpcError):
                await check_health(channel, timeout=2)
    finally:
        await server.stop(0)
        await listening.aclose()
    if network == "unix":
        assert not any(p.is_socket() for p in tmp_path.iterdir())  # type: ignore[attr-defined]


def _open_fds() -> int:
    import os

    return len(os.listdir("/proc/self/fd"))


async def test_terminator_preopens_the_private_leg_for_the_first_connection(
    tmp_path: object,
) -> None:
    """The TLS front end opens its first private connection to grpcio as soon as it
    listens (the host's dial and handshake then overlap with it); that connection
    serves the first client, later clients get fresh ones, an unused one is closed."""
    import anyio

    plugin, host = generate_cert(), generate_cert()
    listen = ListenConfig(socket_dir=str(tmp_path))
    server = grpc.aio.server()
    await add_health(server)
    listening = await start_server(
        server, network="unix", listen=listen, tls=TLSConfig.mutual(plugin, host.cert_pem)
    )
    terminator = listening._terminator
    try:
        assert terminator is not None
        spare = terminator._spare
        assert spare is not None
        with anyio.fail_after(5):
            _reader, writer = await spare  # connected to grpcio, TLS done, before any client
        assert not writer.is_closing()
        for _ in range(2):  # the first uses the spare, the second a fresh connection
            channel = await open_channel(listening.address, TLSConfig.mutual(host, plugin.cert_pem))
            async with channel:
                assert await check_health(channel, timeout=5) == 1
            assert terminator._spare is None
    finally:
        await server.stop(0)
        await listening.aclose()

    # Unused: closed with the terminator, nothing left open.
    before = _open_fds()
    server = grpc.aio.server()
    await add_health(server)
    listening = await start_server(
        server, network="unix", listen=listen, tls=TLSConfig.mutual(plugin, host.cert_pem)
    )
    assert listening._terminator is not None and listening._terminator._spare is not None
    with anyio.fail_after(5):
        _reader, writer = await listening._terminator._spare
    await listening.aclose()
    await server.stop(0)
    assert writer.is_closing()
    for _ in range(100):  # grpcio closes its end asynchronously
        if _open_fds() <= before:
            break
        await anyio.sleep(0.05)
    assert _open_fds() <= before


@pytest.mark.parametrize("route", ["memfd", "tempdir"])
def test_loading_a_certificate_and_key_writes_no_file(
    route: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A context loads its certificate and key from memory (Linux memfd) or, where
    that is missing, from a private directory removed at once; a key that does not
    match its certificate is a ConfigError either way."""
    import ssl
    import tempfile

    from plugwire.core.errors import ConfigError
    from plugwire.grpc import mtls

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    if route == "tempdir":
        monkeypatch.delattr(os, "memfd_create")
    own, other = generate_cert(curve="P-256"), generate_cert(curve="P-256")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    mtls._load_chain(ctx, own.cert_pem, own.key_pem)
    assert os.listdir(tmp_path) == []
    with pytest.raises(ConfigError, match="cannot load TLS certificate/key") as info:
        mtls._load_chain(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), own.cert_pem, other.key_pem)
    assert info.value.step == "tls"
    assert os.listdir(tmp_path) == []
