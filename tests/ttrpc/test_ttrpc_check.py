"""``plugwire check ttrpc`` against plugwire's example server, the Go containerd/ttrpc
harness server (tests/interop/ttrpc/cmd/ttrpcpeer), a server with a ttrpc Health
service, and bogus servers (garbage bytes, a closed connection, a wrong stream id,
a world-writable socket)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from support.gobuild import build_go  # type: ignore[import-not-found,unused-ignore]

from plugwire.core.check import CheckReport
from plugwire.ttrpc import MethodHandler, ServerContext
from plugwire.ttrpc._envelope import encode_response
from plugwire.ttrpc._frame import encode_frame
from plugwire.ttrpc.check import HEALTH, TtrpcCheck
from plugwire.ttrpc.testing import make_server

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
STREAMING = "ttrpc.integration.streaming.Streaming"


def rows(report: CheckReport) -> dict[str, Any]:
    return {row.name: row for row in report.results}


async def test_example_server_passes(served: str) -> None:
    report = await TtrpcCheck(served, services=[STREAMING]).run()
    assert report.ok, report.table()
    checks = rows(report)
    assert checks["unknown method"].detail == (
        "stream 1 response: UNIMPLEMENTED 'service plugwire.check.NoSuchService'"
    )
    assert checks[f"service {STREAMING}"].status == "pass"
    assert checks["health"].status == "skip"
    assert report.services == [STREAMING]


async def test_service_not_served_fails(served: str) -> None:
    report = await TtrpcCheck(served, services=["no.Such"]).run()
    assert not report.ok
    row = rows(report)["service no.Such"]
    assert row.status == "fail" and row.evidence.endswith("UNIMPLEMENTED 'service no.Such'")


def _health(status: int) -> MethodHandler:
    async def check(payload: bytes, ctx: ServerContext) -> bytes:
        return bytes([0x08, status])

    return MethodHandler(check)


@pytest.mark.parametrize(("status", "ok"), [(1, True), (2, False)])
async def test_health_service_is_called(sock_path: str, status: int, ok: bool) -> None:
    server = make_server()
    server.register(HEALTH, {"Check": _health(status)})
    async with server.listen(f"unix:{sock_path}") as bound:
        report = await TtrpcCheck(str(bound)).run()
    row = rows(report)["health"]
    assert report.ok is ok, report.table()
    if ok:
        assert row.detail == "Health/Check: SERVING"
        assert HEALTH in report.services
    else:
        assert row.status == "fail" and row.detail == "not serving: NOT_SERVING"


@pytest.mark.interop
async def test_go_containerd_ttrpc_server_passes(tmp_path: Path) -> None:
    peer = build_go("ttrpc", "./cmd/ttrpcpeer")
    path = str(tmp_path / "go.sock")
    async with await anyio.open_process([str(peer), "server", path]) as proc:
        assert proc.stdout is not None
        try:
            with anyio.fail_after(10):
                line = await proc.stdout.receive()
            assert line.startswith(b"READY"), line
            report = await TtrpcCheck(f"unix:{path}", services=[STREAMING]).run()
        finally:
            proc.terminate()
    assert report.ok, report.table()
    checks = rows(report)
    # containerd/ttrpc's own words for an unknown service and method
    assert checks["unknown method"].detail == (
        "stream 1 response: UNIMPLEMENTED 'service plugwire.check.NoSuchService'"
    )
    assert "'method PlugwireCheckNoSuchMethod'" in checks[f"service {STREAMING}"].detail


Handler = Callable[[anyio.abc.SocketStream], Awaitable[None]]


@contextlib.asynccontextmanager
async def _bogus(path: str, handler: Handler) -> AsyncIterator[str]:
    listener = await anyio.create_unix_listener(path)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        yield f"unix:{path}"
        tg.cancel_scope.cancel()
    await listener.aclose()


async def _garbage(stream: anyio.abc.SocketStream) -> None:
    await stream.receive()
    await stream.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    await stream.aclose()


async def _hang_up(stream: anyio.abc.SocketStream) -> None:
    await stream.receive()
    await stream.aclose()


async def _wrong_stream(stream: anyio.abc.SocketStream) -> None:
    await stream.receive()
    await stream.send(encode_frame(7, 2, 0, encode_response(b"", 12, "nope")))
    await anyio.sleep(10)


async def test_garbage_server_fails_with_the_bytes(sock_path: str) -> None:
    async with _bogus(sock_path, _garbage) as address:
        report = await TtrpcCheck(address, timeout=1).run()
    assert not report.ok
    row = rows(report)["unknown method"]
    assert row.status == "fail" and row.detail == "no ttrpc status for an unknown method"
    assert "HTTP/1.1 400 Bad Request" in row.evidence, row.evidence
    assert rows(report)["health"].status == "fail"


async def test_server_closing_the_connection_fails(sock_path: str) -> None:
    async with _bogus(sock_path, _hang_up) as address:
        report = await TtrpcCheck(address, timeout=1).run()
    row = rows(report)["unknown method"]
    assert row.status == "fail" and row.evidence == "connection closed after no bytes"


async def test_response_on_the_wrong_stream_fails(sock_path: str) -> None:
    async with _bogus(sock_path, _wrong_stream) as address:
        report = await TtrpcCheck(address, timeout=1).run()
    row = rows(report)["unknown method"]
    assert row.status == "fail" and "response on stream 7, asked on 1" in row.evidence


async def test_world_writable_socket_fails(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o777)
    open_dir.chmod(0o777)
    path = str(open_dir / "t.sock")
    async with make_server().listen(f"unix:{path}") as bound:
        os.chmod(path, 0o777)
        report = await TtrpcCheck(str(bound)).run()
    row = rows(report)["socket"]
    assert row.status == "fail" and row.detail == "any user may connect", row
    assert "mode 777" in row.evidence


async def test_nothing_listening_fails_connect(tmp_path: Path) -> None:
    report = await TtrpcCheck(f"unix:{tmp_path / 'none.sock'}", timeout=1).run()
    checks = rows(report)
    assert checks["socket"].status == "fail" and "No such file" in checks["socket"].evidence
    assert checks["connect"].status == "fail"
    assert checks["unknown method"].status == "skip"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_cli_against_the_example_server(tmp_path: Path) -> None:
    path = str(tmp_path / "ex.sock")
    server = [sys.executable, str(ROOT / "docs" / "examples" / "ttrpc" / "server.py"), path]
    async with await anyio.open_process(server) as proc:
        assert proc.stdout is not None
        try:
            with anyio.fail_after(20):
                line = await proc.stdout.receive()
            assert line.startswith(b"READY"), line
            cmd = [sys.executable, "-m", "plugwire", "check", "ttrpc"]
            ok = await anyio.run_process(
                [*cmd, "--json", "--address", f"unix:{path}", "--service", STREAMING],
                check=False,
            )
            bad = await anyio.run_process(
                [*cmd, "--address", f"unix:{path}", "--service", "no.Such"], check=False
            )
        finally:
            proc.terminate()
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["ok"] and report["services"] == [STREAMING]
    assert bad.returncode == 1
    assert b"evidence: PlugwireCheckNoSuchMethod: UNIMPLEMENTED 'service no.Such'" in bad.stdout
