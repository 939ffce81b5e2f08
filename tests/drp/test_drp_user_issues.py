"""Issue 20, dr-provision items 9-13: what a user of the real library runs into.

Each behaviour is checked against the plugwire provider and, where it is the
provider's side, against the Go stand-in (tests/interop/drp, Go's encoding/json and
net/http) as well.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from drp_support import EXAMPLE, PROVIDERS  # type: ignore[import-not-found,unused-ignore]
from support.gobuild import build_go  # type: ignore[import-not-found,unused-ignore]

from plugwire.core.errors import (
    ConnectionClosedError,
    MessageTooLargeError,
    PluginExitedError,
    PluginTimeoutError,
)
from plugwire.core.transport import Address
from plugwire.http import HttpServer, Limits, Request, Response
from plugwire.http.drp import (
    Action,
    Event,
    PluginProvider,
    ProviderContext,
    ProviderHost,
    PublishRefusedError,
)
from plugwire.http.drp.models import go_field, go_json_pairs, go_names_match

FEATURES = [sys.executable, str(PROVIDERS / "features.py")]
INCREMENTER = [sys.executable, str(EXAMPLE)]


@pytest.fixture(scope="module")
def goprovider() -> Path:
    return Path(build_go("drp", "./cmd/goprovider"))


def _no_group(exc: BaseException) -> None:
    assert not isinstance(exc, BaseExceptionGroup), repr(exc)


# -- item 9: typed errors, never an ExceptionGroup ------------------------------


@pytest.mark.anyio
async def test_call_timeout_is_a_typed_error_not_an_exception_group(
    provider_env: dict[str, str],
) -> None:
    async with ProviderHost(token="t", env=provider_env) as drp:
        plugin = await drp.launch(FEATURES, call_timeout=0.5)
        with pytest.raises(PluginTimeoutError) as caught:
            await plugin.action("sleep", params={"seconds": 5})
        _no_group(caught.value)
        assert caught.value.peer == "features.py"
        # the provider still answers afterwards
        assert await plugin.action("sleep", params={"seconds": 0}) == "slept"


@pytest.mark.anyio
async def test_reply_over_the_size_limit_is_a_typed_error(provider_env: dict[str, str]) -> None:
    async with ProviderHost(token="t", env=provider_env) as drp:
        plugin = await drp.launch(FEATURES, limits=Limits(max_body_size=4096))
        with pytest.raises(MessageTooLargeError) as caught:
            await plugin.action("big", params={"size": 100_000})
        _no_group(caught.value)
        with pytest.raises(MessageTooLargeError):
            await plugin.config({"features/mode": "x" * 10_000})  # request too large


@pytest.mark.anyio
async def test_close_of_a_provider_whose_stop_times_out_raises_nothing(
    provider_env: dict[str, str],
) -> None:
    env = {**provider_env, "FEATURES_STOP": "slow"}
    async with ProviderHost(token="t", env=env, close_timeout=10) as drp:
        plugin = await drp.launch(FEATURES, call_timeout=0.3)
        started = time.monotonic()
        await drp.close(plugin)  # /stop times out: the sequence goes on, no error
        assert plugin.closed and not plugin.running
        assert time.monotonic() - started < 9


@pytest.mark.anyio
async def test_calls_after_a_death_are_plugin_exited(provider_env: dict[str, str]) -> None:
    async with ProviderHost(token="t", env=provider_env) as drp:
        plugin = await drp.launch(FEATURES)
        with pytest.raises(PluginExitedError) as caught:
            await plugin.action("die")
        _no_group(caught.value)
        with pytest.raises(PluginExitedError):
            await plugin.config({"features/mode": "x"})


# -- item 10: define/unpack with the environment dr-provision gives -------------


@pytest.mark.anyio
async def test_host_defines_a_go_provider_that_validates_with_its_api(goprovider: Path) -> None:
    env = {"GOPROVIDER_VALIDATE": "1"}
    seen: list[str] = []

    async def api(request: Request) -> Response:
        seen.append(f"{request.method} {request.path}")
        return Response.json({"Version": "test"})

    # the host serves its own API behind a token it minted
    async with ProviderHost(env=env, api=api) as drp:
        assert drp.token and drp.endpoint.startswith("http://127.0.0.1:")
        definition = await drp.define(goprovider)
        assert definition.name == "incrementer"
        assert seen == ["GET /api/v3/info"]
        # unpack gets the same environment
        out = await drp.unpack(goprovider, Path(os.environ.get("TMPDIR", "/tmp")) / "i20-unpack")
        assert (out / "testFile").read_text() == "ImaFile"
    # define outside `async with` serves the API for the call alone
    assert (await ProviderHost(env=env).define(goprovider)).name == "incrementer"


@pytest.mark.anyio
async def test_host_api_refuses_a_wrong_token(goprovider: Path) -> None:
    from plugwire.http import HttpClient

    async with ProviderHost() as drp:
        host, port = drp.endpoint.removeprefix("http://").rsplit(":", 1)
        async with HttpClient(Address("tcp", f"{host}:{port}")) as client:
            bad = await client.request(
                "GET", "/api/v3/info", headers={"authorization": "Bearer nope"}
            )
            good = await client.request(
                "GET", "/api/v3/info", headers={"authorization": f"Bearer {drp.token}"}
            )
        assert bad.status == 401 and good.status == 200


def test_go_provider_that_validates_crashes_without_a_token(goprovider: Path) -> None:
    """What the upstream library does, and so what the host must avoid."""
    env = {"PATH": os.environ["PATH"], "GOPROVIDER_VALIDATE": "1"}
    proc = subprocess.run(
        [str(goprovider), "define"], capture_output=True, text=True, env=env, timeout=30
    )
    assert proc.returncode == 2 and "nil pointer dereference" in proc.stderr


# -- item 11: publish to a provider without HasPublish --------------------------


@pytest.mark.anyio
async def test_publish_to_a_provider_without_has_publish_is_refused(goprovider: Path) -> None:
    async with ProviderHost(env={"GOPROVIDER_NO_PUBLISH": "1"}) as drp:
        plugin = await drp.launch(goprovider)
        assert plugin.definition is not None and not plugin.definition.has_publish
        with pytest.raises(PublishRefusedError, match="does not take events") as caught:
            await plugin.publish(Event(type="machines", action="save", key="m1"))
        assert caught.value.code == 404 and caught.value.step == "publish"
        # what upstream answers when it is sent anyway
        raw = await plugin.request("POST", "publish", b'{"Type": "machines"}')
        assert raw.status == 404
    async with ProviderHost() as drp:  # HasPublish true: delivered
        plugin = await drp.launch(goprovider)
        await plugin.publish(Event(type="machines", action="save", key="m1"))


@pytest.mark.anyio
async def test_publish_refused_for_a_python_provider_without_has_publish(
    provider_env: dict[str, str],
) -> None:
    async with ProviderHost(env=provider_env) as drp:
        plugin = await drp.launch(FEATURES)
        with pytest.raises(PublishRefusedError):
            await plugin.publish(Event(type="x", action="y", key="z"))


# -- item 12: the server socket is reached on first use -------------------------


@pytest.mark.parametrize("which", ["python", "go"])
def test_listen_says_ready_before_the_server_socket_exists(
    which: str, tmp_path: Path, goprovider: Path
) -> None:
    to_sock, from_sock = tmp_path / "to.sock", tmp_path / "from.sock"
    argv = INCREMENTER if which == "python" else [str(goprovider)]
    env = {**os.environ, "RS_TOKEN": "tok"}
    logs: list[Any] = []
    logged = anyio.Event()

    async def server_api(request: Request) -> Response:
        logs.append(json.loads(request.body))
        logged.set()
        return Response.json({"Code": 200})

    async def session(proc: subprocess.Popen[str]) -> None:
        from plugwire.http import HttpClient

        assert proc.stdout is not None
        line = await anyio.to_thread.run_sync(proc.stdout.readline)
        assert line.strip() == "READY!"
        assert not from_sock.exists()
        await anyio.sleep(0.3)  # the provider waits for us
        async with (
            HttpServer(server_api).serve(Address("unix", str(from_sock))),
            HttpClient(Address("unix", str(to_sock))) as client,
        ):
            reply = await client.post_json("/api-plugin/v4/config", {})
            assert reply.status == 200, reply.body
            with anyio.fail_after(10):
                await logged.wait()
            # the Go library exits right after writing the reply
            with contextlib.suppress(ConnectionClosedError):
                await client.post_json("/api-plugin/v4/stop", None)
        assert await anyio.to_thread.run_sync(proc.wait) == 0

    with subprocess.Popen(
        [*argv, "listen", str(to_sock), str(from_sock)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            anyio.run(session, proc)
        finally:
            proc.kill()
    assert any("Config" in str(line.get("Message", "")) for line in logs), logs


@pytest.mark.anyio
async def test_server_socket_retry_is_bounded(tmp_path: Path) -> None:
    from plugwire.http import HttpClient

    missing = str(tmp_path / "never.sock")
    async with HttpClient(Address("unix", missing)) as client:
        ctx = ProviderContext(
            PluginProvider(name="p"), client=client, server_socket=missing, connect_timeout=0.5
        )
        started = time.monotonic()
        with pytest.raises(ConnectionClosedError, match="cannot reach the server socket") as c:
            await ctx.log("info", "hello")
        assert 0.4 < time.monotonic() - started < 3
        assert missing in str(c.value)


# -- item 13: Go's field-name matching ------------------------------------------


def test_go_field_matching_rules() -> None:
    assert go_names_match("command", "Command") and go_names_match("COMMAND", "Command")
    assert go_names_match("\u212aey", "Key")  # Kelvin sign folds to k
    assert not go_names_match("Commands", "Command") and not go_names_match("Comand", "Command")
    doc = json.loads('{"Command": "a", "command": "b"}', object_pairs_hook=go_json_pairs)
    assert go_field(doc, "Command") == "b"  # the later key wins
    doc = json.loads(
        '{"Command": "a", "command": "c", "Command": "b"}', object_pairs_hook=go_json_pairs
    )
    assert go_field(doc, "Command") == "b"
    assert go_field({"command": "a", "Command": None}, "Command") == "a"  # null: no change
    assert Action.from_json({"command": "x", "PARAMS": {"k": 1}}).params == {"k": 1}


@pytest.mark.parametrize("which", ["python", "go"])
@pytest.mark.anyio
async def test_action_fields_match_case_insensitively(
    which: str, goprovider: Path, provider_env: dict[str, str]
) -> None:
    command = INCREMENTER if which == "python" else goprovider
    async with ProviderHost(env=provider_env) as drp:
        plugin = await drp.launch(command)
        for body in (b'{"command": "incrstatus"}', b'{"COMMAND": "incrstatus"}'):
            reply = await plugin.request("POST", "action", body)
            assert (reply.status, json.loads(reply.body)) == (200, "Running"), body
        bad = await plugin.request("POST", "action", b'{"command": ')
        assert bad.status == 400
        unknown = await plugin.request("POST", "action", b'{"command": "nope"}')
        assert unknown.status == 404
