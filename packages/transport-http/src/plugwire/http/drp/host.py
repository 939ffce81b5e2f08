"""The server side: host dr-provision plugin providers the way dr-provision does.

:class:`ProviderHost` plays dr-provision: it holds what every provider it runs gets
(``RS_ENDPOINT``, ``RS_TOKEN``, ``RS_FILESERVER``, ``RS_WEBROOT``, a base
environment) and composes a core :class:`~plugwire.core.host.Host`, whose task group
runs each provider's server API and whose one shutdown sequence closes them (in
parallel, ``/stop`` first, see :data:`~plugwire.http.drp.plugin.DRP_SHUTDOWN`).

>>> async with ProviderHost(endpoint="https://drp:8092", token=tok) as drp:  # doctest: +SKIP
...     definition = await drp.define("./incrementer")
...     incr = await drp.launch("./incrementer", objects={"cows": []})
...     await incr.config({})
...     await incr.action("incrstatus")
...     await drp.close(incr)            # /stop, grace, SIGTERM, SIGKILL

``define`` and ``unpack`` run with the environment dr-provision gives them
(``RS_ENDPOINT``, ``RS_TOKEN``, ``RS_FILESERVER``, ``RS_WEBROOT``): a Go provider that
implements ``Validate`` builds its API client from them while it defines itself, and
crashes without a token. Without an ``endpoint`` the host serves its own dr-provision
API (an ``api`` application of yours, or a minimal one answering
``GET /api/v3/info``) on ``127.0.0.1`` behind the bearer token, and without a
``token`` it mints one; the providers get both.

Each running provider is a :class:`~plugwire.http.drp.plugin.ProviderPlugin`, a core
plugin handle: a plain :class:`~plugwire.core.host.Host` (or a
:class:`~plugwire.core.blocking.BlockingHost`) launches it just as well.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from plugwire.core.errors import ConfigError
from plugwire.core.host import Host
from plugwire.core.shutdown import ShutdownPolicy
from plugwire.core.transport import Address

from ..messages import Request, Response
from ..server import HttpServer
from .command import CommandLike
from .models import Error, PluginProvider
from .plugin import DRP_SHUTDOWN, ProviderPlugin

__all__ = ["ProviderHost"]

#: An HTTP application: what :class:`~plugwire.http.HttpServer` serves.
ApiApp = Callable[[Request], Awaitable[Response]]


async def _minimal_api(request: Request) -> Response:
    """The dr-provision API a host serves when it is given none: ``/api/v3/info``."""
    if request.method == "GET" and request.path.rstrip("/") == "/api/v3/info":
        return Response.json({"Version": "plugwire", "Features": [], "Id": "plugwire"})
    return Response.json(
        Error(code=404, type=request.method, key=request.path, model="api").to_json(), 404
    )


class _TokenGate:
    """Serves ``app`` to requests that carry ``Authorization: Bearer <token>``;
    answers the others ``401`` with a ``models.Error``, as dr-provision does."""

    def __init__(self, app: ApiApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, request: Request) -> Response:
        given = request.header("authorization") or ""
        if not secrets.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            error = Error(
                code=401, type=request.method, key=request.path, messages=("Unauthorized",)
            )
            return Response.json(error.to_json(), 401)
        return await self.app(request)


class ProviderHost:
    """Runs provider executables with shared dr-provision settings (module docs).

    Arguments:
        name: how the host names itself in logs and errors.
        endpoint, token, fileserver, webroot: the ``RS_*`` environment of every
            provider it runs (``define`` and ``unpack`` included). Without
            ``endpoint`` the host serves ``api`` itself (see the module docs); without
            ``token`` it mints one (:attr:`token`).
        api: the dr-provision API to serve when no ``endpoint`` is given (an HTTP
            application; the bearer token is checked before it is called).
        env: more environment for every provider (over a clean base, or over the
            whole of ``os.environ`` with ``inherit_env``).
        close_timeout: the deadline for closing every provider in parallel.
        shutdown: the shutdown policy (dr-provision's by default).
    """

    def __init__(
        self,
        *,
        name: str = "dr-provision",
        endpoint: str | None = None,
        token: str | None = None,
        api: ApiApp | None = None,
        fileserver: str = "",
        webroot: str = "",
        env: Mapping[str, str] | None = None,
        inherit_env: bool = False,
        close_timeout: float = 10.0,
        shutdown: ShutdownPolicy = DRP_SHUTDOWN,
    ) -> None:
        if endpoint is not None and api is not None:
            raise ConfigError(
                "give an endpoint (a dr-provision elsewhere) or an api to serve, not both",
                peer=name,
                step="configure",
            )
        self.token = token if token is not None else secrets.token_urlsafe(24)
        self.api: ApiApp | None = None if endpoint is not None else (api or _minimal_api)
        self._api_server: Any = None
        self.settings: dict[str, Any] = {
            "endpoint": endpoint or "",
            "token": self.token,
            "fileserver": fileserver,
            "webroot": webroot,
            "env": dict(env or {}),
            "inherit_env": inherit_env,
            "shutdown": shutdown,
        }
        self.host = Host(name, close_timeout=close_timeout, shutdown=shutdown)

    @property
    def endpoint(self) -> str:
        """``RS_ENDPOINT`` of the providers (the host's own API once entered)."""
        return str(self.settings["endpoint"])

    async def _serve_api(self) -> None:
        if self.api is None or self._api_server is not None:
            return
        server = HttpServer(_TokenGate(self.api, self.token), name="dr-provision api")
        serving = server.serve(Address("tcp", "127.0.0.1:0"))
        bound = await serving.__aenter__()
        self._api_server = serving
        self.settings["endpoint"] = f"http://{bound.address}"

    async def _stop_api(self) -> None:
        serving, self._api_server = self._api_server, None
        if serving is not None:
            await serving.__aexit__(None, None, None)

    @contextlib.asynccontextmanager
    async def _api_for_call(self) -> AsyncIterator[None]:
        """The host's API for one ``define``/``unpack``: the one served while the
        host is entered, or one served for the call alone."""
        if self.api is None or self._api_server is not None:
            yield
            return
        await self._serve_api()
        try:
            yield
        finally:
            await self._stop_api()

    async def __aenter__(self) -> ProviderHost:
        await self._serve_api()
        try:
            await self.host.__aenter__()
        except BaseException:
            await self._stop_api()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.host.__aexit__(exc_type, exc, tb)
        finally:
            await self._stop_api()

    def provider(self, command: CommandLike, **options: Any) -> ProviderPlugin:
        """A :class:`ProviderPlugin` for ``command`` with this host's settings (not
        started); ``options`` are those of :class:`ProviderPlugin` and override them
        (``env`` is added to the host's)."""
        env = {**self.settings["env"], **(options.pop("env", None) or {})}
        return ProviderPlugin(command, **{**self.settings, **options, "env": env})

    async def define(self, command: CommandLike, **options: Any) -> PluginProvider:
        """Run ``<command> define`` with the providers' environment (token and
        endpoint included); the parsed, validated definition."""
        async with self._api_for_call():
            return await self.provider(command, **options).define()

    async def unpack(
        self, command: CommandLike, directory: str | os.PathLike[str], **options: Any
    ) -> Path:
        """Run ``<command> unpack DIR`` (the directory is created) with the
        providers' environment; return it."""
        async with self._api_for_call():
            return await self.provider(command, **options).unpack(directory)

    async def launch(
        self, provider: ProviderPlugin | CommandLike, **options: Any
    ) -> ProviderPlugin:
        """Define (unless done) and start a provider: ``listen``, ``READY!``.

        ``provider`` is a :class:`ProviderPlugin` (launched as it is) or a command
        (made into one by :meth:`provider` with ``options``). A provider that closed
        by itself (``/leaving``) frees its name for a new one.
        """
        if isinstance(provider, ProviderPlugin):
            if options:
                raise ConfigError(
                    "options are for a command, not for a ProviderPlugin",
                    peer=self.host.name,
                    step="launch",
                    seen=sorted(options),
                )
            plugin = provider
        else:
            plugin = self.provider(provider, **options)
        gone = self.host.plugins.get(plugin.name)
        if isinstance(gone, ProviderPlugin) and gone.closing:
            await gone.aclose()  # finishes the close under way
            self.host.forget(gone)
        return await self.host.launch(plugin)

    @property
    def plugins(self) -> Mapping[str, ProviderPlugin]:
        """The providers running and not closing, by name."""
        return {
            name: plugin
            for name, plugin in self.host.plugins.items()
            if isinstance(plugin, ProviderPlugin) and not plugin.closing
        }

    def __getitem__(self, name: str) -> ProviderPlugin:
        return self.plugins[name]

    async def close(self, provider: str | ProviderPlugin, grace: float | None = None) -> None:
        """Close one provider (the shutdown sequence, ``/stop`` first)."""
        await self.host.close(provider, grace)

    async def aclose(self) -> None:
        """Close every provider in parallel within ``close_timeout``."""
        await self.host.aclose()
