"""The provider, launched for real by plugwire's ProviderPlugin the way dr-provision does."""

from __future__ import annotations

from pathlib import Path

import pytest
from plugwire.http.drp import (
    ActionRefusedError,
    ConfigRefusedError,
    ProviderError,
    ProviderPlugin,
)

from {{ cookiecutter.package_name }}.provider import GREETING_PARAM, SHOUT_PARAM, STATUS_COMMAND

pytestmark = pytest.mark.anyio

MACHINE = {"Uuid": "0b3f1e9a-0000-4000-8000-000000000042", "Name": "node-1"}


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # define/unpack run no server
async def test_define_and_unpack(
    provider_command: list[str], provider_env: dict[str, str], tmp_path: Path
) -> None:
    provider = ProviderPlugin(provider_command, env=provider_env)
    definition = await provider.define()
    assert definition.name == "{{ cookiecutter.provider_name }}"
    assert definition.version == "{{ cookiecutter.version }}"
    assert definition.required_params == (GREETING_PARAM,)
    assert [(a.command, a.model) for a in definition.available_actions] == [
        ("greet", "machines"),
        (STATUS_COMMAND, ""),
    ]
    files = await provider.unpack(tmp_path / "files")
    assert (files / "{{ cookiecutter.provider_name }}.txt").read_text().strip()


async def test_session(provider_command: list[str], provider_env: dict[str, str]) -> None:
    async with ProviderPlugin(provider_command, token="test-token", env=provider_env) as host:
        # The definition's RequiredParams are checked before anything is sent.
        with pytest.raises(ConfigRefusedError):
            await host.config({})
        await host.config({GREETING_PARAM: "Howdy"})
        assert await host.action(STATUS_COMMAND) == {"greeted": 0}

        assert await host.action("greet", model=MACHINE) == "Howdy, node-1!"
        shouted = await host.action("greet", model=MACHINE, params={SHOUT_PARAM: True})
        assert shouted == "HOWDY, NODE-1!"
        assert await host.action(STATUS_COMMAND) == {"greeted": 2}

        # What the provider sent back: events and log lines.
        greeted = [e for e in host.events if e.action == "greeted"]
        assert [e.key for e in greeted] == [MACHINE["Uuid"]] * 2
        assert any("configured" in line.message for line in host.logs)

        # The provider's own errors come back as its models.Error ...
        with pytest.raises(ProviderError) as nameless:
            await host.action("greet", model={"Uuid": MACHINE["Uuid"]})
        assert nameless.value.code == 422
        # ... and undeclared commands are refused by the host before the call.
        with pytest.raises(ActionRefusedError):
            await host.action("wave", model=MACHINE)
        assert await host.action(STATUS_COMMAND) == {"greeted": 2}  # still serving

        await host.aclose()  # POST /stop, then (if need be) SIGTERM, SIGKILL
        assert host.returncode == 0
    assert host.error is None
