"""Interop 3: bad plugins are handled by plugwire's runtime as by upstream's adaptation.

Each case runs against containerd/nri's adaptation (Go harness) and against
plugwire's :class:`Runtime`, with the same misbehaving peer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from nri_support import GoRuntime, container, pod

from plugwire.ttrpc.nri import Adjustment, NriError, PluginRejectedError, Runtime, Stub
from plugwire.ttrpc.nri.api import pb

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


@asynccontextmanager
async def go_plugin(binary: Path, sock: Path, *args: str) -> AsyncIterator[anyio.abc.Process]:
    async with await anyio.open_process([str(binary), "-socket", str(sock), *args]) as proc:
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.terminate()


BAD_PLUGINS = {
    "hangs": ["-hang-create", "5s"],
    "exits": ["-exit-on-create"],
}


@pytest.mark.parametrize("case", list(BAD_PLUGINS))
async def test_bad_plugin_is_dropped_and_the_operation_continues(
    case: str, go_runtime: GoRuntime, go_plugin_bin: Path, sockdir: Path
) -> None:
    bad = ["-idx", "10", "-name", "bad", *BAD_PLUGINS[case]]
    good = ["-idx", "20", "-name", "good", "-env", "GOOD=1"]
    request = {"pod": pod(), "container": container("c1")}

    go_sock = sockdir / "go.sock"
    await go_runtime.ok("start", socket=str(go_sock), request_timeout=0.5)
    async with go_plugin(go_plugin_bin, go_sock, *bad), go_plugin(go_plugin_bin, go_sock, *good):
        await go_runtime.ok("wait_plugins", count=2, timeout=10)
        expected = await go_runtime.ok("create_container", request=request)
        go_left = await go_runtime.ok("plugin_count")

    py_sock = sockdir / "py.sock"
    async with (
        Runtime("plugwire", "0.1", socket_path=py_sock, request_timeout=0.5) as rt,
        go_plugin(go_plugin_bin, py_sock, *bad),
        go_plugin(go_plugin_bin, py_sock, *good),
    ):
        await rt.wait_for_plugins(2)
        with anyio.fail_after(10):
            got = await rt.create_container(
                pb.PodSandbox(**request["pod"]), pb.Container(**request["container"])
            )
        py_left = [p.name for p in rt.plugins]

    assert [e["key"] for e in expected["adjust"]["env"]] == ["GOOD"]
    assert [e.key for e in got.adjust.env] == ["GOOD"]
    assert go_left == {"value": "1"}
    assert py_left == ["20-good"]


async def test_silent_connection_is_closed_after_registration_timeout(
    go_runtime: GoRuntime, sockdir: Path
) -> None:
    async def closed_by_runtime(sock: Path) -> float:
        async with await anyio.connect_unix(sock) as silent:
            started = anyio.current_time()
            with anyio.fail_after(10):
                try:
                    while await silent.receive():
                        pass
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    pass
            return anyio.current_time() - started

    go_sock = sockdir / "go.sock"
    await go_runtime.ok("start", socket=str(go_sock), registration_timeout=0.5)
    go_waited = await closed_by_runtime(go_sock)
    async with Runtime(
        "plugwire", "0.1", socket_path=sockdir / "py.sock", registration_timeout=0.5
    ) as rt:
        py_waited = await closed_by_runtime(sockdir / "py.sock")
        assert rt.plugins == []
    assert 0.4 < go_waited < 5
    assert 0.4 < py_waited < 5


async def test_oversized_reply_fails_the_request_on_both(
    go_runtime: GoRuntime, sockdir: Path
) -> None:
    class Huge:
        async def create_container(self, p: pb.PodSandbox, c: pb.Container) -> Adjustment:
            return Adjustment().add_annotation("huge", "x" * (5 << 20))

    async def run_stub(sock: Path, body: Any) -> Any:
        stub = Stub(Huge(), name="huge", idx="10", socket_path=sock)
        async with anyio.create_task_group() as tg:
            tg.start_soon(stub.serve_async)
            with anyio.fail_after(10):
                await stub.started.wait()
            try:
                return await body()
            finally:
                stub.stop()

    go_sock = sockdir / "go.sock"
    await go_runtime.ok("start", socket=str(go_sock))

    async def go_body() -> Any:
        await go_runtime.ok("wait_plugins", count=1, timeout=10)
        return await go_runtime.cmd(
            "create_container", request={"pod": pod(), "container": container("c1")}
        )

    reply = await run_stub(go_sock, go_body)
    assert not reply["ok"]
    assert "exceed maximum message size" in reply["error"]

    async with Runtime("plugwire", "0.1", socket_path=sockdir / "py.sock") as rt:

        async def py_body() -> Any:
            await rt.wait_for_plugins(1)
            with pytest.raises(NriError, match="exceed maximum message size"):
                await rt.create_container(pb.PodSandbox(id="pod0"), pb.Container(id="c1"))
            return len(rt.plugins)

        # the connection survives an oversized message, as upstream's does
        assert await run_stub(sockdir / "py.sock", py_body) == 1


class PyValidator:
    async def validate_container_adjustment(
        self, req: pb.ValidateContainerAdjustmentRequest
    ) -> None:
        owner = req.owners.owners["c1"].compound[pb.Env].owners["FORBIDDEN"]
        raise ValueError(f"FORBIDDEN set by {owner}")


async def test_validator_rejection_matches_upstream(
    go_runtime: GoRuntime, go_plugin_bin: Path, sockdir: Path
) -> None:
    """A Go validator plugin rejects another plugin's adjustment on both runtimes, and a
    plugwire validator does the same under upstream's adaptation."""
    setter = ["-idx", "10", "-name", "setter", "-env", "FORBIDDEN=1"]
    validator = ["-idx", "90", "-name", "validator", "-reject-env", "FORBIDDEN"]
    request = {"pod": pod(), "container": container("c1")}

    go_sock = sockdir / "go.sock"
    await go_runtime.ok("start", socket=str(go_sock))
    async with go_plugin(go_plugin_bin, go_sock, *setter):
        async with go_plugin(go_plugin_bin, go_sock, *validator) as govalidator:
            await go_runtime.ok("wait_plugins", count=2, timeout=10)
            go_reply = await go_runtime.cmd("create_container", request=request)
            govalidator.terminate()
        # now a plugwire validator under upstream's adaptation
        stub = Stub(PyValidator(), name="pyvalidator", idx="95", socket_path=go_sock)
        async with anyio.create_task_group() as tg:
            tg.start_soon(stub.serve_async)
            with anyio.fail_after(10):
                await stub.synchronized.wait()
            # the adaptation lists a plugin just after its Synchronize reply: retry
            # until the new validator is consulted
            for _ in range(100):
                go_py_reply = await go_runtime.cmd("create_container", request=request)
                if not go_py_reply["ok"]:
                    break
                await anyio.sleep(0.05)
            stub.stop()

    py_sock = sockdir / "py.sock"
    async with (
        Runtime("plugwire", "0.1", socket_path=py_sock) as rt,
        go_plugin(go_plugin_bin, py_sock, *setter),
        go_plugin(go_plugin_bin, py_sock, *validator),
    ):
        await rt.wait_for_plugins(2)
        with pytest.raises(PluginRejectedError) as info:
            await rt.create_container(
                pb.PodSandbox(**request["pod"]), pb.Container(**request["container"])
            )

    expected = 'validator "90-validator" rejected container adjustment, reason: env FORBIDDEN'
    assert not go_reply["ok"] and expected in go_reply["error"]
    assert info.value.message.startswith(expected)
    assert not go_py_reply["ok"]
    assert 'validator "95-pyvalidator"' in go_py_reply["error"]
    assert "FORBIDDEN set by 10-setter" in go_py_reply["error"]
