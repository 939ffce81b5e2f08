"""AutoMTLS: every socket an AutoMTLS plugin process listens on refuses a client
without the host's certificate -- not only the public TLS front end but whatever
sits behind it (the private leg to the gRPC server), found by reading
``/proc/<pid>/fd`` and ``/proc/<pid>/net/{unix,tcp,tcp6}`` of the plugin. And the
host's private originator socket (plaintext in, TLS with the host's certificate
out) refuses a connection from any other process, even of the same user."""

from __future__ import annotations

import os
import socket
import ssl
import sys
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from plugwire.core.process import PluginProcess
from plugwire.core.transport import Address
from plugwire.grpc._tlsproxy import TLSOriginator
from plugwire.grpc.goplugin import ClientConfig, PluginClient
from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2
from plugwire.grpc.goplugin.examples.kv import KVPlugin
from plugwire.grpc.mtls import Certificate, TLSConfig, generate_cert

pytestmark = [pytest.mark.anyio, pytest.mark.goplugin]

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")
_SO_ACCEPTCON = 0x10000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def listening_sockets(pid: int) -> list[tuple[str, str]]:
    """``(family, address)`` of every listening socket among ``pid``'s open fds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:[") : -1])
    found: list[tuple[str, str]] = []
    with open(f"/proc/{pid}/net/unix") as fh:
        next(fh)
        for row in fh:
            cols = row.split()
            # Num RefCount Protocol Flags Type St Inode [Path]
            if cols[6] in inodes and int(cols[3], 16) & _SO_ACCEPTCON and len(cols) > 7:
                found.append(("unix", cols[7]))
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as fh:
            next(fh)
            for row in fh:
                cols = row.split()
                if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                    port = int(cols[1].rsplit(":", 1)[1], 16)
                    host = "127.0.0.1" if table == "tcp" else "::1"
                    found.append(("tcp", f"{host}:{port}"))
    return found


def _connect(family: str, address: str) -> socket.socket:
    if family == "unix":
        raw = socket.socket(socket.AF_UNIX)
        target: str | tuple[str, int] = address
    else:
        host, _, port = address.rpartition(":")
        raw = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        target = (host, int(port))
    raw.settimeout(5)
    raw.connect(target)
    return raw


def probe(family: str, address: str, cert: Certificate | None, tls: bool, tmp: Path) -> bytes:
    """What a socket answers to an HTTP/2 preface (an HTTP/2 server answers with a
    SETTINGS frame; b"" or an error text means refused)."""
    raw = _connect(family, address)
    try:
        if not tls:
            raw.sendall(H2_PREFACE)
            try:
                return raw.recv(64)
            except (ConnectionError, TimeoutError) as exc:
                return f"refused: {exc}".encode()
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
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as exc:
            return f"refused: {exc}".encode()
    finally:
        raw.close()


def is_h2(answer: bytes) -> bool:
    return len(answer) >= 9 and answer[3] == 4


def _config(tmp_path: Path) -> ClientConfig:
    return ClientConfig(
        handshake=HANDSHAKE,
        plugins={"kv_grpc": KVPlugin()},
        cmd=[sys.executable, "-m", "plugwire.grpc.goplugin.examples.kv"],
        env={"KV_DIR": str(tmp_path)},
        auto_mtls=True,
        start_timeout=30,
    )


async def test_every_listening_socket_of_the_plugin_refuses_without_cert(tmp_path: Path) -> None:
    async with PluginClient(_config(tmp_path)) as client:
        assert client.pid is not None and client.address is not None
        own = client._own_cert
        assert own is not None
        sockets = listening_sockets(client.pid)
        public = (client.address.network, client.address.address)
        # the front end and at least the private leg behind it
        assert public in sockets and len(sockets) >= 2, sockets
        answers: dict[tuple[str, str, str], bytes] = {}
        for family, address in sockets:
            for name, cert, tls in [
                ("plaintext", None, False),
                ("tls without cert", None, True),
                ("stranger cert", generate_cert(), True),
                ("stranger P-256 cert", generate_cert(curve="P-256"), True),
                ("host cert", own, True),
            ]:
                answers[(address, name, family)] = await anyio.to_thread.run_sync(
                    probe, family, address, cert, tls, tmp_path
                )
        # the plugin still serves its host afterwards
        kv = client.dispense("kv_grpc")
        await kv.Put(kv_pb2.PutRequest(key="k", value=b"v"))
        assert (await kv.Get(kv_pb2.GetRequest(key="k"))).value == b"v"
    for (address, name, _family), answer in answers.items():
        if address == public[1] and name == "host cert":
            assert is_h2(answer), answer  # the positive control
        else:
            assert not is_h2(answer), (address, name, answer)


PROBE = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
try:
    s.sendall(bytes.fromhex(sys.argv[2]))
    data = s.recv(64)
except OSError:
    data = b""
print("ANSWER", data.hex(), flush=True)
"""


async def test_host_originator_refuses_other_processes(tmp_path: Path) -> None:
    async with PluginClient(_config(tmp_path)) as client:
        assert client.address is not None
        tls = client._tls  # the host's AutoMTLS config: its certificate, the plugin's
        assert isinstance(tls, TLSConfig) and tls.cert_pem is not None
        addr = Address(client.address.network, client.address.address)
        originator = TLSOriginator(tls.client_context(), addr, tls.server_name)
        path = await originator.start()
        try:
            lines: list[str] = []
            proc = PluginProcess(
                [sys.executable, "-c", PROBE, path, H2_PREFACE.hex()],
                env={"PATH": os.environ.get("PATH", "")},
                name="same-user prober",
                on_stdout=lines.append,
            )
            async with proc:
                assert await proc.wait() == 0, proc.stderr_tail
            reply = next(x for x in lines if x.startswith("ANSWER"))
            answer = bytes.fromhex(reply.removeprefix("ANSWER").strip())
            assert not is_h2(answer), answer
            assert originator.refused == 1
            # the positive control: this process gets the plugin's HTTP/2 answer
            mine = await anyio.to_thread.run_sync(probe, "unix", path, None, False, tmp_path)
            assert is_h2(mine), mine
        finally:
            await originator.aclose()
