"""plugwire.kube refuses trio before it creates anything (grpc.aio is asyncio-only)."""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from plugwire.core.errors import TransportNotAvailableError
from plugwire.core.handshake import Handshake
from plugwire.kube import KubePlugin, PluginSpec
from plugwire.kube.kv_example import KVStub


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


@pytest.mark.anyio
async def test_trio_is_refused_clearly() -> None:
    config = k8s.Configuration()
    config.host = "https://127.0.0.1:1"  # nothing may be contacted
    plugin = KubePlugin(
        handshake=Handshake("BASIC_PLUGIN", "hello"),
        plugins={"kv_grpc": KVStub},
        spec=PluginSpec(name="kv", image="example/kv:1"),
        api_client=k8s.ApiClient(configuration=config),
    )
    with pytest.raises(TransportNotAvailableError, match="asyncio"):
        async with plugin:
            pytest.fail("entered")
    assert plugin.created == []
