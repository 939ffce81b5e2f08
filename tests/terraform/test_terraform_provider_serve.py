"""Serving: the handshake Terraform expects, protocol negotiation, the cookie check,
debug mode's TF_REATTACH_PROVIDERS line, and lazy loading of what a launch needs."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import anyio
import pytest
from provider_support import EXAMPLE, anyio_backend, client_config, launch, modules

from plugwire.core.handshake import Handshake
from plugwire.core.process import PluginProcess
from plugwire.grpc.goplugin import ClientConfig, PluginClient, ReattachConfig
from plugwire.grpc.mtls import generate_cert
from plugwire.grpc.terraform.serving import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE

__all__ = ["anyio_backend"]

pytestmark = [pytest.mark.terraform, pytest.mark.anyio]

PROBE = Path(__file__).with_name("provider_lazy_probe.py")


async def test_both_versions_offered_negotiates_6() -> None:
    cfg = client_config(6)
    both = ClientConfig(
        handshake=Handshake(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, (5, 6)),
        versioned_plugins={5: cfg.versioned_plugins[6], 6: cfg.versioned_plugins[6]},
        cmd=EXAMPLE,
        auto_mtls=True,
        start_timeout=30,
    )
    async with PluginClient(both) as client:
        assert client.negotiated_version == 6


async def test_only_5_offered_serves_tfplugin5() -> None:
    async with launch(5) as tf:
        resp = await tf.stub.GetSchema(tf.pb.GetProviderSchema.Request())
        assert "example_thing" in resp.resource_schemas


async def test_without_cookie_exits_1_with_the_go_plugin_message() -> None:
    async with anyio.create_task_group() as tg:
        proc = PluginProcess(EXAMPLE, env={}, name="nocookie")
        await proc.start(tg)
        with anyio.fail_after(30):
            code = await proc.wait()
    assert code == 1
    assert any("This binary is a plugin" in line for line in proc.stderr_tail)


async def test_debug_mode_prints_tf_reattach_providers() -> None:
    async with anyio.create_task_group() as tg:
        proc = PluginProcess([*EXAMPLE, "--debug"], env={}, name="tfdebug")
        await proc.start(tg)
        line = ""
        with anyio.fail_after(30):
            while "TF_REATTACH_PROVIDERS=" not in line:
                got = await proc.readline_stdout()
                assert got is not None, f"debug provider exited: {proc.stderr_tail}"
                line = got
        value = line.split("TF_REATTACH_PROVIDERS=", 1)[1].strip()
        assert value.startswith("'") and value.endswith("'")
        providers = json.loads(value[1:-1])
        entry = providers["registry.terraform.io/plugwire/example"]
        assert entry["Protocol"] == "grpc" and entry["ProtocolVersion"] == 6
        assert entry["Test"] is True and entry["Pid"] == proc.pid
        assert entry["Addr"]["Network"] == "unix"
        reattach = ReattachConfig.from_json(entry)
        cfg = client_config(6)
        client = PluginClient(
            ClientConfig(
                handshake=cfg.handshake, versioned_plugins=cfg.versioned_plugins, reattach=reattach
            )
        )
        async with client:
            stub = client.dispense("provider")
            pb = modules(6)[0]
            resp = await stub.GetProviderSchema(pb.GetProviderSchema.Request())
            assert "example_thing" in resp.resource_schemas
        # plugwire's client sends GRPCController.Shutdown when it closes: honoured.
        with anyio.fail_after(15):
            code = await proc.wait()
    assert code == 0


async def test_debug_mode_stops_on_ctrl_c() -> None:
    async with anyio.create_task_group() as tg:
        proc = PluginProcess([*EXAMPLE, "--debug"], env={}, name="tfdebug")
        await proc.start(tg)
        with anyio.fail_after(30):
            while True:
                line = await proc.readline_stdout()
                assert line is not None, proc.stderr_tail
                if "TF_REATTACH_PROVIDERS=" in line:
                    break
        proc.send_signal(signal.SIGINT)
        with anyio.fail_after(15):
            code = await proc.wait()
    assert code == 0


async def _probe(version: str, env: dict[str, str]) -> dict[str, object]:
    async with anyio.create_task_group() as tg:
        proc = PluginProcess([sys.executable, str(PROBE), version], env=env, name="probe")
        await proc.start(tg)
        with anyio.fail_after(60):
            while True:
                line = await proc.readline_stdout()
                assert line is not None, proc.stderr_tail
                if line.startswith("REPORT "):
                    break
            await proc.wait()
    report: dict[str, object] = json.loads(line[len("REPORT ") :])
    return report


async def test_only_the_negotiated_protocol_and_no_tls_library_load() -> None:
    gen = "plugwire.grpc.terraform._generated."
    plain = await _probe("6", {})
    assert plain["code"] == 0 and str(plain["announce"]).startswith("1|6|unix|")
    assert plain["after_import"] == [], "importing the package must not load grpc/protobuf"
    assert plain["loaded"] == sorted(
        [gen + "tfplugin6_pb2", gen + "tfplugin6_pb2_grpc", "plugwire.grpc.terraform._server6"]
    )
    v5 = await _probe("5", {})
    assert gen + "tfplugin6_pb2" not in v5["loaded"]  # type: ignore[operator]
    assert gen + "tfplugin5_pb2" in v5["loaded"]  # type: ignore[operator]
    # AutoMTLS: cryptography loads, and the announce line carries the certificate.
    pem = generate_cert().cert_pem.decode()
    tls = await _probe("6", {"PLUGIN_CLIENT_CERT": pem})
    assert "cryptography" in tls["loaded"]  # type: ignore[operator]
    assert str(tls["announce"]).split("|")[5]
