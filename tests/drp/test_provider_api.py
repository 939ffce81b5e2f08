"""The provider's HTTP API in process: upstream status codes and bodies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from plugwire.core.transport import Address
from plugwire.http import HttpClient, HttpServer
from plugwire.http.drp import (
    Action,
    AvailableAction,
    Event,
    PluginApi,
    PluginProvider,
    Provider,
    ProviderContext,
    ProviderError,
)

pytestmark = pytest.mark.anyio

DEF = PluginProvider(
    name="tester",
    has_publish=True,
    available_actions=[AvailableAction(command="echo"), AvailableAction(command="fail")],
)


class Probe(Provider):
    def __init__(self) -> None:
        self.configs: list[dict[str, Any]] = []
        self.events: list[Event] = []
        self.stopped = False

    def config(self, ctx: ProviderContext, params: dict[str, Any]) -> None:
        if params.get("refuse"):
            raise ProviderError("refused", code=422, model="plugin", key="tester")
        self.configs.append(params)

    async def action(self, ctx: ProviderContext, action: Action) -> Any:
        if action.command == "echo":
            return {"params": action.params, "model": action.model}
        if action.command == "fail":
            raise ProviderError("it failed", code=409, model="plugin", key="tester", type="plugin")
        if action.command == "zero":
            raise ProviderError("zero code", code=0)
        if action.command == "none":
            return None
        raise RuntimeError(f"cannot {action.command}")

    async def publish(self, ctx: ProviderContext, event: Event) -> None:
        if event.type == "bad":
            raise ProviderError("no bad events", code=400)
        self.events.append(event)

    def stop(self, ctx: ProviderContext) -> None:
        self.stopped = True


class Fixture:
    def __init__(self, client: HttpClient, provider: Probe, stopped: anyio.Event) -> None:
        self.client = client
        self.provider = provider
        self.stopped = stopped

    async def post(
        self, path: str, body: Any = None, ctype: str = "application/json"
    ) -> tuple[int, Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        resp = await self.client.request(
            "POST", "/api-plugin/v4/" + path, body=raw, headers={"content-type": ctype}
        )
        assert resp.header("content-type") == "application/json"
        return resp.status, resp.decode_json()


@pytest.fixture
async def api(sockdir: Path) -> AsyncIterator[Fixture]:
    provider = Probe()
    stopped = anyio.Event()

    async def on_stop() -> None:
        stopped.set()

    ctx = ProviderContext(DEF, environ={"RS_TOKEN": "tok", "RS_ENDPOINT": "http://x"})
    server = HttpServer(PluginApi(provider, ctx, on_stop=on_stop))
    async with (
        server.serve(Address("unix", str(sockdir / "to.sock"))) as bound,
        HttpClient(bound) as client,
    ):
        yield Fixture(client, provider, stopped)


async def test_config_ok_body_is_models_error_200(api: Fixture) -> None:
    assert await api.post("config", {"a": 1}) == (
        200,
        {"Model": "", "Key": "", "Type": "", "Messages": None, "Code": 200},
    )
    assert api.provider.configs == [{"a": 1}]


async def test_config_error_nests_the_error_json(api: Fixture) -> None:
    status, body = await api.post("config", {"refuse": True})
    assert status == 422
    assert body["Code"] == 422 and body["Model"] == ""
    nested = json.loads(body["Messages"][0])
    assert nested == {
        "Model": "plugin",
        "Key": "tester",
        "Type": "plugin",
        "Messages": ["refused"],
        "Code": 422,
    }


async def test_config_without_token(sockdir: Path) -> None:
    ctx = ProviderContext(DEF, environ={})
    server = HttpServer(PluginApi(Probe(), ctx))
    async with (
        server.serve(Address("unix", str(sockdir / "nt.sock"))) as bound,
        HttpClient(bound) as client,
    ):
        resp = await client.post_json("/api-plugin/v4/config", {})
    assert resp.status == 400
    assert resp.decode_json() == {
        "Model": "plugin",
        "Key": "unknown",
        "Type": "plugin",
        "Messages": ["Must have a token specified"],
        "Code": 400,
    }


async def test_action_result_and_errors(api: Fixture) -> None:
    action = Action(command="echo", params={"x": [1, 2]}, model={"Uuid": "u"})
    assert await api.post("action", action.to_json()) == (
        200,
        {"params": {"x": [1, 2]}, "model": {"Uuid": "u"}},
    )
    assert await api.post("action", Action(command="none").to_json()) == (200, None)
    status, body = await api.post("action", Action(command="fail").to_json())
    assert (status, body) == (
        409,
        {
            "Model": "plugin",
            "Key": "tester",
            "Type": "plugin",
            "Messages": ["it failed"],
            "Code": 409,
        },
    )
    status, body = await api.post("action", Action(command="zero").to_json())
    assert status == 500 and body["Code"] == 500


async def test_provider_raising_gives_500_with_message(api: Fixture) -> None:
    status, body = await api.post("action", Action(command="explode").to_json())
    assert status == 500
    assert body["Code"] == 500
    assert body["Type"] == "POST" and body["Key"] == "/api-plugin/v4/action"
    assert body["Messages"] == ["Panic recovered: RuntimeError: cannot explode"]
    # the provider keeps serving
    assert (await api.post("action", Action(command="none").to_json()))[0] == 200


async def test_unknown_path_and_method_give_404(api: Fixture) -> None:
    assert await api.post("nope", {}) == (
        404,
        {"Model": "", "Key": "/api-plugin/v4/nope", "Type": "POST", "Messages": None, "Code": 404},
    )
    resp = await api.client.get("/api-plugin/v4/config")
    assert resp.status == 404
    assert resp.decode_json()["Type"] == "GET"


async def test_bad_content_type_gives_400(api: Fixture) -> None:
    status, body = await api.post("config", {"a": 1}, ctype="text/plain")
    assert status == 400
    assert body == {
        "Model": "",
        "Key": "",
        "Type": "POST",
        "Messages": ["Invalid content type: text/plain"],
        "Code": 400,
    }
    # charset parameters and case are fine, as in Go's strings.Contains test
    assert (await api.post("config", {}, ctype="Application/JSON; charset=utf-8"))[0] == 200


@pytest.mark.parametrize("path", ["config", "action", "publish"])
async def test_bad_json_gives_400(api: Fixture, path: str) -> None:
    status, body = await api.post(path, b"{not json")
    assert status == 400
    assert body["Code"] == 400 and body["Type"] == "POST"
    assert body["Messages"] and body["Messages"][0]


async def test_wrong_json_shape_gives_400(api: Fixture) -> None:
    status, body = await api.post("config", [1, 2])
    assert status == 400 and body["Code"] == 400
    status, body = await api.post("action", {"Command": 5})
    assert status == 400 and "Command" in body["Messages"][0]


async def test_empty_body_decodes_as_null(api: Fixture) -> None:
    assert (await api.post("config", b""))[0] == 200
    assert api.provider.configs == [{}]


async def test_publish(api: Fixture) -> None:
    ev = Event(type="machines", action="save", key="u1", object={"Uuid": "u1"})
    assert (await api.post("publish", ev.to_json()))[0] == 200
    assert api.provider.events == [ev]
    status, body = await api.post("publish", Event(type="bad", action="x").to_json())
    assert status == 400 and json.loads(body["Messages"][0])["Messages"] == ["no bad events"]


async def test_stop_answers_then_signals(api: Fixture) -> None:
    assert await api.post("stop", None) == (
        200,
        {"Model": "", "Key": "", "Type": "", "Messages": None, "Code": 200},
    )
    assert api.provider.stopped
    with anyio.fail_after(2):
        await api.stopped.wait()


async def test_optional_endpoints_only_when_implemented(sockdir: Path) -> None:
    class Minimal(Provider):
        def config(self, ctx: ProviderContext, params: dict[str, Any]) -> None:
            pass

    no_publish = PluginProvider(name="m", has_publish=False)
    ctx = ProviderContext(no_publish, environ={"RS_TOKEN": "t"})
    server = HttpServer(PluginApi(Minimal(), ctx))
    async with (
        server.serve(Address("unix", str(sockdir / "m.sock"))) as bound,
        HttpClient(bound) as client,
    ):
        for path in ("action", "publish"):
            resp = await client.post_json(f"/api-plugin/v4/{path}", {})
            assert resp.status == 404
        assert (await client.post_json("/api-plugin/v4/config", {})).status == 200


async def test_selector_and_has_publish_conflict(sockdir: Path) -> None:
    class Selecting(Probe):
        def select_events(self) -> list[str]:
            return ["machines.*.*"]

    ctx = ProviderContext(DEF, environ={"RS_TOKEN": "t"})
    server = HttpServer(PluginApi(Selecting(), ctx))
    async with (
        server.serve(Address("unix", str(sockdir / "s.sock"))) as bound,
        HttpClient(bound) as client,
    ):
        resp = await client.post_json("/api-plugin/v4/config", {})
        assert resp.status == 400
        assert resp.decode_json()["Messages"] == [
            "Plugin can NOT have both HasPublish and EventSelector: tester"
        ]
        # with an event selector the deprecated /publish is not offered
        assert (await client.post_json("/api-plugin/v4/publish", {})).status == 404
