"""AutoMTLS: the plugin's TLS front end refuses every client that does not hold the
host's certificate -- a plaintext gRPC client, a TLS client without a certificate,
one with a certificate of its own -- even a local process of the same user. The
host's own certificate (the positive control) gets an HTTP/2 answer."""

from __future__ import annotations

import socket
import ssl
import sys
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from plugwire.grpc.goplugin import ClientConfig, PluginClient
from plugwire.grpc.goplugin.examples import HANDSHAKE
from plugwire.grpc.goplugin.examples.kv import KVPlugin
from plugwire.grpc.mtls import Certificate, generate_cert

pytestmark = [pytest.mark.anyio, pytest.mark.goplugin]

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _probe(path: str, cert: Certificate | None, tls: bool, tmp: Path) -> bytes:
    """What the front end answers to an HTTP/2 preface (b"" or an error: refused)."""
    raw = socket.socket(socket.AF_UNIX)
    raw.settimeout(5)
    raw.connect(path)
    try:
        if not tls:
            raw.sendall(H2_PREFACE)
            return raw.recv(64)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        if cert is not None:
            (tmp / "c.pem").write_bytes(cert.cert_pem)
            (tmp / "k.pem").write_bytes(cert.key_pem)
            ctx.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as conn:
                conn.sendall(H2_PREFACE)
                return conn.recv(64)  # TLS 1.3 checks the client cert after Finished
        except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
            return f"refused: {exc}".encode()
    finally:
        raw.close()


async def test_automtls_front_end_refuses_clients_without_the_host_cert(tmp_path: Path) -> None:
    config = ClientConfig(
        handshake=HANDSHAKE,
        plugins={"kv_grpc": KVPlugin()},
        cmd=[sys.executable, "-m", "plugwire.grpc.goplugin.examples.kv"],
        env={"KV_DIR": str(tmp_path)},
        auto_mtls=True,
        start_timeout=30,
    )
    async with PluginClient(config) as client:
        assert client.address is not None
        path = client.address.address
        own = client._own_cert
        assert own is not None

        async def probe(cert: Certificate | None, tls: bool) -> bytes:
            return await anyio.to_thread.run_sync(_probe, path, cert, tls, tmp_path)

        plaintext = await probe(None, tls=False)
        no_cert = await probe(None, tls=True)
        stranger = await probe(generate_cert(), tls=True)
        control = await probe(own, tls=True)
    # an HTTP/2 server answers the preface with a SETTINGS frame (type 4)
    assert len(control) >= 9 and control[3] == 4, control
    for name, answer in {"plaintext": plaintext, "no cert": no_cert, "stranger": stranger}.items():
        assert not (len(answer) >= 9 and answer[3] == 4), (name, answer)
