"""ProviderPlugin running real provider processes (the Python incrementer example
and purpose-built misbehaving providers), on asyncio and trio."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import anyio
import pytest
from drp_support import (  # type: ignore[import-not-found,unused-ignore]
    EXAMPLE,
    PROVIDERS,
    TOKEN,
    FakeApi,
    python_provider,
)

from plugwire.core.errors import (
    ClosedError,
    PluginExitedError,
    PluginStartError,
    PluginTimeoutError,
    ProtocolError,
)
from plugwire.http.drp import (
    ActionRefusedError,
    ConfigRefusedError,
    Event,
    LogLine,
    ProviderError,
    ProviderPlugin,
)

pytestmark = pytest.mark.anyio

MACHINE = {"Uuid": "3c1b5e0a-0000-4000-8000-000000000001", "Name": "m1"}


async def test_incrementer_session(
    fake_api: FakeApi, provider_env: dict[str, str], sockdir: Path
) -> None:
    plugin = ProviderPlugin(
        python_provider(EXAMPLE),
        name="incrementer",
        endpoint=fake_api.endpoint,
        token=TOKEN,
        env=provider_env,
    )
    definition = await plugin.define()
    assert definition.name == "incrementer"
    assert [a.command for a in definition.available_actions] == [
        "increment",
        "reset_count",
        "incrstatus",
    ]
    files = await plugin.unpack(sockdir / "files")
    assert (files / "testFile").read_text() == "ImaFile"
    async with plugin:
        assert plugin.socket_dir is not None
        assert stat.S_IMODE(os.stat(plugin.socket_dir).st_mode) == 0o700
        assert sorted(p.name for p in plugin.socket_dir.iterdir()) == ["from.sock", "to.sock"]
        await plugin.config({"some": "param"})
        assert await plugin.action("incrstatus") == "Running"
        assert await plugin.action("increment", model=MACHINE) == 1
        assert (
            await plugin.action(
                "increment",
                model=MACHINE,
                params={"incrementer/step": 5, "incrementer/parameter": "p/x"},
            )
            == 5
        )
        assert await plugin.action("increment", model=MACHINE) == 2
        uuid = MACHINE["Uuid"]
        assert fake_api.params == {
            (uuid, "incrementer/default"): 2,
            (uuid, "p/x"): 5,
            (uuid, "incrementer/touched"): 3,
        }
        assert (
            await plugin.action("reset_count", model=MACHINE, params={"incrementer/touched": 0})
            == "Success"
        )
        assert (uuid, "incrementer/touched") not in fake_api.params
        # refused before the call: nothing reaches the provider or the API
        calls = len(fake_api.calls)
        with pytest.raises(ActionRefusedError) as missing:
            await plugin.action("reset_count", model=MACHINE)
        assert missing.value.code == 400 and "incrementer/touched" in str(missing.value)
        with pytest.raises(ActionRefusedError) as unknown:
            await plugin.action("decrement", model=MACHINE)
        assert unknown.value.code == 404
        assert "increment" in unknown.value.message  # names what is declared
        with pytest.raises(ActionRefusedError, match="needs a machines object"):
            await plugin.action("increment")
        assert len(fake_api.calls) == calls
        # the provider's own models.Error comes back typed
        with pytest.raises(ProviderError) as bad:
            await plugin.action("increment", model="not a machine")
        assert bad.value.code == 409
        assert bad.value.error.key == "incrementer" and bad.value.error.type == "plugin"
        await plugin.publish(Event(type="machines", action="save", key=uuid))
        assert any("Config" in line.message for line in plugin.logs)
        await plugin.aclose()  # the shutdown sequence: POST /stop first
        assert plugin.returncode == 0
        assert plugin.error is None
    assert not plugin.socket_dir.exists()


async def test_config_needs_token(provider_env: dict[str, str]) -> None:
    async with ProviderPlugin(python_provider(EXAMPLE), env=provider_env) as plugin:
        with pytest.raises(ProviderError) as info:
            await plugin.config({})
        assert info.value.code == 400
        assert info.value.error.messages == ("Must have a token specified",)
        assert plugin.running


async def test_callbacks_and_environment(provider_env: dict[str, str], sockdir: Path) -> None:
    chatter_logged = anyio.Event()

    def on_log(line: LogLine) -> None:
        if line.message == "chatter 3":
            chatter_logged.set()

    plugin = ProviderPlugin(
        python_provider(PROVIDERS / "features.py"),
        on_log=on_log,
        token="tok",
        endpoint="https://drp.example:8092",
        fileserver="http://files:8091",
        webroot=str(sockdir),
        env=provider_env,
        objects={"cows": [{"Name": "bessie"}, {"Name": "bertie"}]},
    )
    async with plugin:
        with pytest.raises(ConfigRefusedError) as refused:
            await plugin.config({"z": 1})
        assert refused.value.code == 400
        assert refused.value.error.messages == ("Missing required parameter: features/mode",)
        await plugin.config({"z": 1, "a": 2, "features/mode": "x"})
        env = await plugin.action("env")
        assert env["endpoint"] == "https://drp.example:8092"
        assert env["token"] == "tok"
        assert env["fileserver"] == "http://files:8091"
        assert env["webroot"] == str(sockdir)
        assert env["cwd"] != os.getcwd()  # a scratch directory
        assert await plugin.action("chatter", params={"n": 3}) == "ok"
        assert [(e.type, e.action, e.key, e.object) for e in plugin.events] == [
            ("cows", "moo", "bessie", {"Spotted": True})
        ]
        with anyio.fail_after(5):
            await chatter_logged.wait()
        levels = {line.message: line.level for line in plugin.logs}
        assert levels["chatter 3"] == "warn"
        assert levels["direct line"] == "error"
        assert levels["configured with ['a', 'features/mode', 'z']"] == "info"
        assert all(line.service == "features" for line in plugin.logs)
        assert await plugin.action("cows") == [{"Name": "bessie"}, {"Name": "bertie"}]
        assert await plugin.action("print") == "printed"
        assert await plugin.action("needs", model={"Uuid": "x"}, params={"a": 1, "b": 2}) == {
            "a": 1,
            "b": 2,
        }
        with pytest.raises(ActionRefusedError, match="a, b"):
            await plugin.action("needs", model={"Uuid": "x"})


async def test_leaving_stops_the_provider(provider_env: dict[str, str]) -> None:
    async with ProviderPlugin(
        python_provider(PROVIDERS / "features.py"), token="t", env=provider_env
    ) as plugin:
        assert await plugin.action("leave") == "bye"
        with anyio.fail_after(10):
            await plugin.left.wait()
            assert await plugin.wait() == 0
        assert plugin.leaving is not None and plugin.leaving.code == 200
        assert plugin.returncode == 0
        assert plugin.error is None


async def test_provider_dying_mid_action(provider_env: dict[str, str]) -> None:
    async with ProviderPlugin(
        python_provider(PROVIDERS / "features.py"), token="t", env=provider_env
    ) as plugin:
        with anyio.fail_after(10), pytest.raises(PluginExitedError) as info:
            await plugin.action("die")
        assert info.value.returncode == 7
        assert info.value.peer == "features.py"
        assert plugin.error is not None and plugin.error.returncode == 7
        with pytest.raises(PluginExitedError):
            await plugin.action("env")


async def test_provider_killed_while_idle_is_noticed(provider_env: dict[str, str]) -> None:
    async with ProviderPlugin(
        python_provider(PROVIDERS / "features.py"), token="t", env=provider_env
    ) as plugin:
        os.kill(plugin.pid, signal.SIGKILL)
        with anyio.fail_after(10):
            assert await plugin.wait() == -signal.SIGKILL
        assert plugin.error is not None and "SIGKILL" in str(plugin.error)
        with pytest.raises(PluginExitedError, match="SIGKILL"):
            await plugin.action("env")


async def test_junk_then_exit_is_a_clear_start_error(provider_env: dict[str, str]) -> None:
    plugin = ProviderPlugin(
        python_provider(PROVIDERS / "misbehave.py"),
        env={**provider_env, "MISBEHAVE": "junk"},
    )
    await plugin.define()
    with pytest.raises(PluginStartError) as info:
        async with plugin:
            pass
    text = str(info.value)
    assert "READY!" in text
    assert "Starting up, please wait" in text and "{oops}" in text
    assert "fatal: no config" in text
    assert plugin.junk == ["Starting up, please wait", "{oops}"]
    assert plugin.socket_dir is not None and not plugin.socket_dir.exists()


async def test_never_ready_times_out(provider_env: dict[str, str]) -> None:
    plugin = ProviderPlugin(
        python_provider(PROVIDERS / "misbehave.py"),
        env={**provider_env, "MISBEHAVE": "silent"},
        ready_timeout=1.0,
    )
    await plugin.define()
    with anyio.fail_after(15), pytest.raises(PluginTimeoutError) as info:
        async with plugin:
            pass
    assert "READY!" in str(info.value)
    assert "almost ready..." in str(info.value)
    assert not plugin.running


async def test_ready_without_socket(provider_env: dict[str, str]) -> None:
    plugin = ProviderPlugin(
        python_provider(PROVIDERS / "misbehave.py"),
        env={**provider_env, "MISBEHAVE": "ready-no-socket"},
    )
    await plugin.define()
    with anyio.fail_after(15), pytest.raises(PluginStartError, match="does not listen"):
        async with plugin:
            pass


@pytest.mark.parametrize(
    ("mode", "error", "text"),
    [
        ("define-junk", ProtocolError, "not JSON"),
        ("define-invalid", ProtocolError, "Name is empty"),
        ("define-fail", PluginExitedError, "cannot define today"),
    ],
)
async def test_bad_define(mode: str, error: type[Exception], text: str) -> None:
    plugin = ProviderPlugin(python_provider(PROVIDERS / "misbehave.py"), env={"MISBEHAVE": mode})
    with pytest.raises(error) as info:
        await plugin.define()
    assert text in str(info.value)
    assert plugin.definition is None


async def test_define_that_hangs_times_out() -> None:
    plugin = ProviderPlugin(
        python_provider(PROVIDERS / "misbehave.py"),
        env={"MISBEHAVE": "define-hang"},
        define_timeout=1.0,
    )
    with anyio.fail_after(15), pytest.raises(PluginTimeoutError, match="define"):
        await plugin.define()


async def test_missing_executable() -> None:
    with pytest.raises(PluginStartError, match="cannot execute"):
        await ProviderPlugin("/nonexistent/provider").define()


async def test_calls_before_start() -> None:
    plugin = ProviderPlugin(python_provider(EXAMPLE))
    with pytest.raises(ClosedError):
        await plugin.config({})


async def test_server_api_bad_input_keeps_host_running(provider_env: dict[str, str]) -> None:
    from plugwire.core.transport import Address
    from plugwire.http import HttpClient

    async with ProviderPlugin(
        python_provider(PROVIDERS / "features.py"),
        token="t",
        env=provider_env,
        objects=lambda prefix: [{"prefix": prefix}],
    ) as plugin:
        assert plugin.socket_dir is not None
        sock = Address("unix", str(plugin.socket_dir / "from.sock"))
        async with HttpClient(sock) as client:
            api = "/api-server-plugin/v4"
            bad_json = await client.request(
                "POST", f"{api}/log", body=b"{no", headers={"content-type": "application/json"}
            )
            assert bad_json.status == 400 and bad_json.decode_json()["Code"] == 400
            wrong_type = await client.request(
                "POST", f"{api}/publish", body=b"{}", headers={"content-type": "text/plain"}
            )
            assert wrong_type.status == 400
            assert wrong_type.decode_json()["Messages"] == ["Invalid content type: text/plain"]
            bad_level = await client.post_json(f"{api}/log", {"Message": "x", "Level": "loud"})
            assert bad_level.status == 400 and "log level" in bad_level.decode_json()["Messages"][0]
            unknown = await client.post_json(f"{api}/nothing", {})
            assert unknown.status == 404 and unknown.decode_json()["Key"] == f"{api}/nothing"
            assert (await client.get(f"{api}/log")).status == 404
            assert (await client.get("/elsewhere")).status == 404
            forbidden = await client.get(f"{api}/objects/horses")
            assert forbidden.status == 403
        assert plugin.events == [] and plugin.leaving is None
        # the provider is unaffected and objects come from the callable
        assert await plugin.action("cows") == [{"prefix": "cows"}]
