"""The plugin, launched for real by plugwire's go-plugin host (``PluginClient``)."""

from __future__ import annotations

import io
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from plugwire.core.errors import RemoteError
from plugwire.core.status import StatusCode
from plugwire.grpc.goplugin import ClientConfig, PluginClient, ServicePlugin

from {{ cookiecutter.package_name }}.contract import HANDSHAKE, PLUGIN_KEY, kv_pb2, kv_pb2_grpc

pytestmark = pytest.mark.anyio


def config(plugin_command: list[str], kv_dir: Path, **extra: object) -> ClientConfig:
    return ClientConfig(
        handshake=HANDSHAKE,
        plugins={PLUGIN_KEY: ServicePlugin(stub=kv_pb2_grpc.KVStub)},
        cmd=plugin_command,
        env={"KV_DIR": str(kv_dir)},
        start_timeout=30,
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("auto_mtls", [False, True], ids=["plain", "automtls"])
async def test_put_get_and_errors(
    plugin_command: list[str],
    tmp_path: Path,
    auto_mtls: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="plugwire.plugin")
    printed = io.BytesIO()
    cfg = config(plugin_command, tmp_path, auto_mtls=auto_mtls, sync_stdout=printed)
    async with PluginClient(cfg) as client:
        kv = client.dispense(PLUGIN_KEY)
        await kv.Put(kv_pb2.PutRequest(key="greeting", value=b"hello"))
        reply = await kv.Get(kv_pb2.GetRequest(key="greeting"))
        assert reply.value == b"hello"
        assert (tmp_path / "kv_greeting").read_bytes() == b"hello"

        with pytest.raises(RemoteError) as missing:
            await kv.Get(kv_pb2.GetRequest(key="nothing"))
        assert missing.value.code == StatusCode.NOT_FOUND
        with pytest.raises(RemoteError) as bad:
            await kv.Put(kv_pb2.PutRequest(key="../escape", value=b"x"))
        assert bad.value.code == StatusCode.INVALID_ARGUMENT

        # The plugin's print and log line reach the host (stdio forwarding, hclog).
        with anyio.move_on_after(10):
            while b"stored greeting" not in printed.getvalue():  # noqa: ASYNC110
                await anyio.sleep(0.05)
        assert b"stored greeting" in printed.getvalue()
        logged = [r.getMessage() for r in caplog.records if r.name.startswith("plugwire.plugin")]
        assert any(m.startswith("stored") and "key=greeting" in m for m in logged), logged


def test_refuses_to_run_without_a_host(plugin_command: list[str]) -> None:
    """Started by hand (no magic cookie), the plugin says what it is and exits 1."""
    run = subprocess.run(plugin_command, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1
    assert "plugin" in run.stderr.lower()


def test_host_executable(console_script: Callable[[str, str], str], tmp_path: Path) -> None:
    """The bundled host, as a user runs it: ``...-host --plugin CMD put/get``."""
    host = console_script("{{ cookiecutter.project_slug }}-host", "host")
    plugin = console_script("{{ cookiecutter.project_slug }}", "plugin")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [host, "--plugin", plugin, *args]
        return subprocess.run(
            argv, cwd=tmp_path, capture_output=True, text=True, timeout=90, check=False
        )

    put = run("put", "colour", "blue")
    assert put.returncode == 0, put.stderr
    assert "stored colour" in put.stdout
    got = run("get", "colour")
    assert (got.returncode, got.stdout.strip()) == (0, "blue"), got.stderr
    missing = run("get", "nope")
    assert missing.returncode == 1 and "no value" in missing.stderr
