"""The first connection through a fresh port-forward may find nothing answering yet.

A gRPC call on a channel whose first connection failed fails at once (UNAVAILABLE,
"Socket closed"): a CI run failed that way on the first plugin of a cold cluster.
KubePlugin connects again until the start check answers, within its start deadline;
other start errors are final. No cluster needed: ``connect`` is replaced.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client as k8s

from plugwire.core.errors import HandshakeError, PluginStartError
from plugwire.grpc.goplugin.examples import HANDSHAKE
from plugwire.kube import KubePlugin, PluginSpec
from plugwire.kube import plugin as kube_plugin
from plugwire.kube.goplugin import Announce

pytestmark = pytest.mark.anyio

ANNOUNCE = Announce(app_version=1, network="tcp", address="127.0.0.1:1", protocol="grpc")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _plugin() -> KubePlugin:
    plugin = KubePlugin(
        handshake=HANDSHAKE,
        plugins={},
        spec=PluginSpec(name="kv", image="example/kv:1"),
        api_client=k8s.ApiClient(),
        auto_mtls=False,
    )
    plugin.address = "127.0.0.1:1"
    plugin.announce = ANNOUNCE
    return plugin


def _refused() -> PluginStartError:
    return PluginStartError(
        "plugin does not answer at the address it announced",
        peer="kv",
        step="health check",
        expected="SERVING",
        seen="UNAVAILABLE: Socket closed",
    )


async def test_connects_again_until_the_start_check_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcomes: list[Any] = [_refused(), _refused(), "connected"]
    calls: list[str] = []

    async def connect(target: str, announce: Announce, **kwargs: Any) -> Any:
        calls.append(target)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(kube_plugin, "connect", connect)
    got = await _plugin()._connect_until_answered(time.monotonic() + 10)
    assert got == "connected"
    assert calls == ["127.0.0.1:1"] * 3


async def test_gives_up_at_the_deadline_with_the_last_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0

    async def connect(target: str, announce: Announce, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        raise _refused()

    monkeypatch.setattr(kube_plugin, "connect", connect)
    started = time.monotonic()
    with pytest.raises(PluginStartError) as info:
        await _plugin()._connect_until_answered(started + 0.5)
    assert info.value.step == "health check" and calls >= 2
    assert time.monotonic() - started < 2.0


async def test_other_start_errors_are_final(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    async def connect(target: str, announce: Announce, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        raise HandshakeError("the plugin serves TLS", peer="kv", step="connect")

    monkeypatch.setattr(kube_plugin, "connect", connect)
    with pytest.raises(HandshakeError):
        await _plugin()._connect_until_answered(time.monotonic() + 10)
    assert calls == 1
