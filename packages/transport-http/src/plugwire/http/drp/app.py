"""The provider side: :func:`serve` (the executable's command line: ``define``,
``unpack``, ``listen``, ``version``), :func:`serve_async` (what ``listen TO FROM``
runs) and the plugin HTTP API it serves on the ``TO`` socket.

The endpoints mirror the Go library (``plugin`` and ``plugin/mux`` packages):

* every path other than the registered ones, or a method other than POST:
  ``404`` with ``models.Error{Code: 404, Type: <method>, Key: <path>}``;
* request bodies decode as Go's ``encoding/json`` decodes them into the Go
  structs: object keys select fields case-insensitively (``{"command": ...}`` is
  the ``Command``), a later key overwrites an earlier one; malformed JSON is still
  ``400``;
* a body whose Content-Type does not contain ``application/json``: ``400``
  ``Invalid content type: <type>``; a body that does not decode: ``400`` with the
  decoder's message; an empty body decodes as ``null``;
* ``/config`` answers ``models.Error{Code: 200}``, or the provider's error code with
  the whole error JSON-encoded as the one message; without ``RS_TOKEN`` it answers
  ``400 Must have a token specified`` as the Go library does;
* ``/action`` answers ``200`` with the result, or the provider's ``models.Error``;
* ``/publish`` (only with ``HasPublish`` and no ``select_events``) like ``/config``;
* ``/stop`` calls ``stop``, answers ``models.Error{Code: 200}`` and exits 0;
* a provider that raises something else: ``500`` ``Panic recovered: ...``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import anyio
import attrs
import click

from plugwire.core.errors import PlugwireError
from plugwire.core.transport import Address

from ..client import HttpClient
from ..limits import Limits
from ..messages import Request, Response
from ..server import HttpServer
from .errors import ProviderError
from .files import PathEscapeError, write_files
from .models import Action, Error, Event, PluginProvider, go_json_pairs
from .provider import Provider, ProviderContext, call_maybe_async

__all__ = ["PLUGIN_API", "PluginApi", "provider_app", "serve", "serve_async"]

#: Where the server reaches the provider, on the ``TO`` socket.
PLUGIN_API = "/api-plugin/v4"

_log = logging.getLogger("plugwire.drp.provider")


def _error_response(error: Error) -> Response:
    error = error.with_code()
    return Response.json(error.to_json(), error.code)


def _ok() -> Response:
    return Response.json(Error(code=200).to_json(), 200)


class _Refusal(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _decode(request: Request) -> Any:
    """``mux.AssureDecode``: check the content type and decode the JSON body."""
    ctype = request.content_type
    if "APPLICATION/JSON" not in ctype.upper():
        raise _Refusal(
            _error_response(
                Error(code=400, type=request.method, messages=(f"Invalid content type: {ctype}",))
            )
        )
    if not request.body:
        return None
    try:
        return json.loads(request.body, object_pairs_hook=go_json_pairs)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _Refusal(
            _error_response(Error(code=400, type=request.method, messages=(str(exc),)))
        ) from None


class PluginApi:
    """The HTTP application a provider serves (``/api-plugin/v4/...``).

    ``on_stop`` runs after the ``/stop`` reply has been written.
    """

    def __init__(
        self,
        provider: Provider,
        ctx: ProviderContext,
        *,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.provider = provider
        self.ctx = ctx
        self.definition = ctx.definition
        self.on_stop = on_stop
        self.routes: dict[str, Callable[[Request], Awaitable[Response]]] = {
            f"{PLUGIN_API}/config": self._config,
            f"{PLUGIN_API}/stop": self._stop,
        }
        has_selector = provider.implements("select_events")
        if provider.implements("publish") and self.definition.has_publish and not has_selector:
            self.routes[f"{PLUGIN_API}/publish"] = self._publish
        if provider.implements("action"):
            self.routes[f"{PLUGIN_API}/action"] = self._action

    async def __call__(self, request: Request) -> Response:
        route = self.routes.get(request.path)
        if route is None or request.method != "POST":
            return _error_response(Error(code=404, type=request.method, key=request.path))
        try:
            return await route(request)
        except _Refusal as refusal:
            return refusal.response
        except Exception as exc:
            _log.exception("provider failed on %s", request.path)
            return _error_response(
                Error(
                    code=500,
                    type=request.method,
                    key=request.path,
                    messages=(f"Panic recovered: {type(exc).__name__}: {exc}",),
                )
            )

    def _failed(self, exc: ProviderError) -> Response:
        # Go: resp := models.Error{Code: err.Code}; resp.Messages = [json(err)]
        nested = Error(code=exc.error.code, messages=tuple(exc.nested_messages()))
        return _error_response(nested)

    async def _config(self, request: Request) -> Response:
        params = _decode(request)
        if params is not None and not isinstance(params, dict):
            raise _Refusal(
                _error_response(
                    Error(
                        code=400,
                        type=request.method,
                        messages=(f"json: cannot unmarshal {type(params).__name__} into map",),
                    )
                )
            )
        if not self.ctx.token:
            return _error_response(
                Error(
                    code=400,
                    model="plugin",
                    key="unknown",
                    type="plugin",
                    messages=("Must have a token specified",),
                )
            )
        self.ctx.logger.info("Received Config request: %s", params)
        try:
            await call_maybe_async(self.provider.config, self.ctx, params or {})
        except ProviderError as exc:
            return self._failed(exc)
        has_selector = self.provider.implements("select_events")
        if self.definition.has_publish and has_selector:
            return _error_response(
                Error(
                    code=400,
                    model="plugin",
                    key="unknown",
                    type="plugin",
                    messages=(
                        "Plugin can NOT have both HasPublish and EventSelector: "
                        f"{self.definition.name}",
                    ),
                )
            )
        if has_selector and not self.provider.implements("publish"):
            return _error_response(
                Error(
                    code=400,
                    model="plugin",
                    key="unknown",
                    type="plugin",
                    messages=(
                        "Plugin can has an EventSelector, but no Publish function: "
                        f"{self.definition.name}",
                    ),
                )
            )
        if has_selector:
            self.ctx.logger.warning(
                "select_events needs dr-provision's websocket event stream, which plugwire "
                "does not implement: no events will be delivered to publish()"
            )
        return _ok()

    async def _action(self, request: Request) -> Response:
        doc = _decode(request)
        try:
            action = Action.from_json(doc if doc is not None else {})
        except PlugwireError as exc:
            raise _Refusal(
                _error_response(Error(code=400, type=request.method, messages=(exc.message,)))
            ) from None
        try:
            result = await call_maybe_async(self.provider.action, self.ctx, action)
        except ProviderError as exc:
            return _error_response(exc.error)
        return Response.json(result, 200)

    async def _publish(self, request: Request) -> Response:
        doc = _decode(request)
        try:
            event = Event.from_json(doc if doc is not None else {})
        except PlugwireError as exc:
            raise _Refusal(
                _error_response(Error(code=400, type=request.method, messages=(exc.message,)))
            ) from None
        try:
            await call_maybe_async(self.provider.publish, self.ctx, event)
        except ProviderError as exc:
            return self._failed(exc)
        return _ok()

    async def _stop(self, request: Request) -> Response:
        if self.provider.implements("stop"):
            await call_maybe_async(self.provider.stop, self.ctx)
        self.ctx.logger.info("STOPPING")
        return attrs.evolve(_ok(), then=self.on_stop)


async def _socket_works(path: str) -> str | None:
    try:
        stream = await anyio.connect_unix(path)
    except OSError as exc:
        return f"{exc.strerror or exc}"
    await stream.aclose()
    return None


async def serve_async(
    provider: Provider,
    definition: PluginProvider,
    to_path: str,
    from_path: str,
    *,
    limits: Limits | None = None,
    ready: Callable[[], None] | None = None,
) -> int:
    """Serve ``provider`` as ``listen TO FROM`` does: the plugin API on
    ``to_path``, callbacks posted to the server on ``from_path``, until ``/stop``.

    ``ready`` is called (printing ``READY!``) once the server listens. Like the Go
    library, the ``FROM`` socket need not exist yet: the provider connects to it
    the first time it calls back (bounded retry, see
    :meth:`ProviderContext._reach_server`). Returns the exit status: 0 after
    ``/stop``, 1 when its own socket does not work.
    """
    stopped = anyio.Event()

    async def on_stop() -> None:
        stopped.set()

    async with HttpClient(Address("unix", from_path), peer="dr-provision") as client:
        ctx = ProviderContext(definition, client=client, server_socket=from_path)
        api = PluginApi(provider, ctx, on_stop=on_stop)
        server = HttpServer(api, limits=limits or Limits(), name=f"provider {definition.name}")
        async with anyio.create_task_group() as tg:
            await tg.start(ctx.forward_logs)
            try:
                async with server.serve(Address("unix", to_path)):
                    problem = await _socket_works(to_path)
                    if problem is not None:  # pragma: no cover - just bound it
                        sys.stderr.write(f"cannot reach our own socket {to_path}: {problem}\n")
                        return 1
                    if ready is not None:
                        ready()
                    await stopped.wait()
                    await ctx.flush_logs()
            finally:
                tg.cancel_scope.cancel()
    return 0


def _print_ready(out: Any) -> Callable[[], None]:
    def ready() -> None:
        out.write("READY!\n")
        out.flush()

    return ready


def provider_app(
    provider: Provider | Callable[[], Provider],
    definition: PluginProvider,
    *,
    version: str,
    short: str = "",
) -> click.Group:
    """The click command group of a provider executable.

    ``provider`` is an instance or a factory. The anyio backend of ``listen`` is
    ``asyncio`` unless ``PLUGWIRE_ANYIO_BACKEND=trio``.
    """
    if isinstance(provider, PluginProvider) or not isinstance(definition, PluginProvider):
        raise TypeError("provider_app(provider, definition): the provider comes first")

    def make() -> Provider:
        return provider if isinstance(provider, Provider) else provider()

    @click.group(
        name=definition.name, help=short or f"dr-provision plugin provider {definition.name}"
    )
    @click.option("-d", "--debug", is_flag=True, help="Log at debug level on stderr.")
    def app(debug: bool) -> None:
        logging.basicConfig(
            level=logging.DEBUG if debug else logging.INFO,
            stream=sys.stderr,
            format="[%(levelname)s] %(name)s: %(message)s",
        )

    @app.command(name="version", help="Print the version.")
    def version_() -> None:
        click.echo(f"Version: {version}")

    @app.command(help="Print the models.PluginProvider definition as JSON.")
    def define() -> None:
        prov = make()
        defn = definition
        token = os.environ.get("RS_TOKEN", "")
        if prov.implements("validate") and token and token != "catalog":
            ctx = ProviderContext(definition)

            async def validate() -> PluginProvider:
                return await call_maybe_async(prov.validate, ctx)

            try:
                defn = anyio.run(validate)
            except ProviderError as exc:
                raise click.ClickException(exc.error.describe()) from None
        click.echo(json.dumps(defn.to_json(), indent=2))

    @app.command(help="Unpack embedded assets into LOC.")
    @click.argument("loc", type=click.Path(file_okay=False))
    def unpack(loc: str) -> None:
        if not loc:
            raise click.ClickException(f"Not a valid location: `{loc}`")
        prov = make()
        if prov.implements("unpack"):
            Path(loc).mkdir(mode=0o755, parents=True, exist_ok=True)
            ctx = ProviderContext(definition)

            async def unpack_() -> None:
                assets = await call_maybe_async(prov.unpack, ctx, Path(loc))
                if isinstance(assets, Mapping):
                    try:
                        write_files(loc, assets, peer=definition.name)
                    except PathEscapeError as exc:
                        raise click.ClickException(str(exc)) from None

            anyio.run(unpack_)

    @app.command(name="listen", help="Serve the plugin API on socket TO, post back to socket FROM.")
    @click.argument("to_path", metavar="TO")
    @click.argument("from_path", metavar="FROM")
    def listen_(to_path: str, from_path: str) -> None:
        prov = make()
        real_stdout = sys.stdout
        # Nothing but READY! may reach stdout: the server reads it.
        sys.stdout = sys.stderr
        backend = os.environ.get("PLUGWIRE_ANYIO_BACKEND", "asyncio")
        status = anyio.run(
            lambda: serve_async(
                prov, definition, to_path, from_path, ready=_print_ready(real_stdout)
            ),
            backend=backend,
        )
        sys.exit(status)

    return app


def serve(
    provider: Provider | Callable[[], Provider],
    definition: PluginProvider,
    *,
    version: str,
    short: str = "",
    argv: list[str] | None = None,
) -> NoReturn:
    """The ``main`` of a provider executable: run its command line (``define``,
    ``unpack DIR``, ``listen TO FROM``, ``version``) and exit; ``listen`` runs
    :func:`serve_async`.

    >>> if __name__ == "__main__":                                   # doctest: +SKIP
    ...     serve(Incrementer, DEFINITION, version="1.0.0")
    """
    app = provider_app(provider, definition, version=version, short=short)
    app.main(args=argv, prog_name=definition.name)
    sys.exit(0)  # pragma: no cover - click exits
