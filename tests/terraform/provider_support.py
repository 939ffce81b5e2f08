"""Helpers of the provider-framework tests: launch a Python provider as Terraform does.

:func:`launch` starts a provider with plugwire's go-plugin client, Terraform's
handshake (cookie, one protocol version) and AutoMTLS, and yields a :class:`Tf`:
the ``tfplugin5``/``tfplugin6`` stub plus value helpers.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest

from plugwire.core.handshake import Handshake
from plugwire.grpc.goplugin import ClientConfig, GrpcPlugin, PluginClient
from plugwire.grpc.terraform import cty
from plugwire.grpc.terraform.serving import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE

EXAMPLE = [sys.executable, "-m", "plugwire.grpc.terraform.examples.thing"]

THING = cty.Object(
    {
        "id": cty.String,
        "name": cty.String,
        "size": cty.Number,
        "tags": cty.Map(cty.String),
        "secret": cty.String,
        "created": cty.String,
        "password_wo": cty.String,
        "label": cty.String,
    }
)
ECHO = cty.Object({"input": cty.String, "output": cty.String})
TOKEN = cty.Object({"name": cty.String, "token": cty.String})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def modules(version: int) -> tuple[Any, Any]:
    if version == 5:
        from plugwire.grpc.terraform._generated import tfplugin5_pb2, tfplugin5_pb2_grpc

        return tfplugin5_pb2, tfplugin5_pb2_grpc
    from plugwire.grpc.terraform._generated import tfplugin6_pb2, tfplugin6_pb2_grpc

    return tfplugin6_pb2, tfplugin6_pb2_grpc


class _ProviderClient(GrpcPlugin):
    def __init__(self, version: int) -> None:
        self.version = version

    def grpc_client(self, broker: Any, channel: Any) -> Any:
        return modules(self.version)[1].ProviderStub(channel)


@attrs.define
class Tf:
    """A launched provider: ``stub`` (tfplugin5/6 ``ProviderStub``), ``pb`` (its messages)."""

    client: PluginClient
    version: int
    stub: Any
    pb: Any

    def dv(self, value: Any, type_: cty.Type) -> Any:
        return self.pb.DynamicValue(msgpack=cty.encode_msgpack(value, type_))

    def value(self, dv: Any, type_: cty.Type) -> Any:
        return cty.decode_msgpack(dv.msgpack, type_) if dv.msgpack else None

    # protocol 5 and 6 name a few RPCs differently
    def rpc(self, name: str) -> Any:
        if self.version == 5:
            name = {
                "GetProviderSchema": "GetSchema",
                "ValidateProviderConfig": "PrepareProviderConfig",
                "ValidateResourceConfig": "ValidateResourceTypeConfig",
                "ValidateDataResourceConfig": "ValidateDataSourceConfig",
                "ConfigureProvider": "Configure",
                "StopProvider": "Stop",
            }.get(name, name)
        return getattr(self.stub, name)

    def message(self, name: str) -> Any:
        if self.version == 5:
            name = {
                "ValidateProviderConfig": "PrepareProviderConfig",
                "ValidateResourceConfig": "ValidateResourceTypeConfig",
                "ValidateDataResourceConfig": "ValidateDataSourceConfig",
                "ConfigureProvider": "Configure",
                "StopProvider": "Stop",
            }.get(name, name)
        return getattr(self.pb, name)

    async def call(self, rpc: str, /, **fields: Any) -> Any:
        return await self.rpc(rpc)(self.message(rpc).Request(**fields))


def client_config(
    version: int, cmd: Sequence[str] = EXAMPLE, env: dict[str, str] | None = None, **kw: Any
) -> ClientConfig:
    return ClientConfig(
        handshake=Handshake(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, (version,)),
        versioned_plugins={version: {"provider": _ProviderClient(version)}},
        cmd=list(cmd),
        auto_mtls=True,
        env=env or {},
        start_timeout=30,
        **kw,
    )


@asynccontextmanager
async def launch(
    version: int, cmd: Sequence[str] = EXAMPLE, env: dict[str, str] | None = None, **kw: Any
) -> AsyncIterator[Tf]:
    client = PluginClient(client_config(version, cmd, env, **kw))
    async with client:
        assert client.negotiated_version == version
        yield Tf(client, version, client.dispense("provider"), modules(version)[0])


def diag_texts(diagnostics: Any) -> list[str]:
    return [f"{d.summary}: {d.detail}" for d in diagnostics]


def diag_paths(diagnostics: Any) -> list[list[Any]]:
    out = []
    for d in diagnostics:
        steps = []
        for s in d.attribute.steps:
            steps.append(getattr(s, s.WhichOneof("selector")))
        out.append(steps)
    return out
