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

Each running provider is a :class:`~plugwire.http.drp.plugin.ProviderPlugin`, a core
plugin handle: a plain :class:`~plugwire.core.host.Host` (or a
:class:`~plugwire.core.blocking.BlockingHost`) launches it just as well.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from plugwire.core.errors import ConfigError
from plugwire.core.host import Host
from plugwire.core.shutdown import ShutdownPolicy

from .command import CommandLike
from .models import PluginProvider
from .plugin import DRP_SHUTDOWN, ProviderPlugin

__all__ = ["ProviderHost"]


class ProviderHost:
    """Runs provider executables with shared dr-provision settings (module docs).

    Arguments:
        name: how the host names itself in logs and errors.
        endpoint, token, fileserver, webroot: the ``RS_*`` environment of every
            provider it runs.
        env: more environment for every provider (over a clean base, or over the
            whole of ``os.environ`` with ``inherit_env``).
        close_timeout: the deadline for closing every provider in parallel.
        shutdown: the shutdown policy (dr-provision's by default).
    """

    def __init__(
        self,
        *,
        name: str = "dr-provision",
        endpoint: str = "https://127.0.0.1:8092",
        token: str = "",
        fileserver: str = "",
        webroot: str = "",
        env: Mapping[str, str] | None = None,
        inherit_env: bool = False,
        close_timeout: float = 10.0,
        shutdown: ShutdownPolicy = DRP_SHUTDOWN,
    ) -> None:
        self.settings: dict[str, Any] = {
            "endpoint": endpoint,
            "token": token,
            "fileserver": fileserver,
            "webroot": webroot,
            "env": dict(env or {}),
            "inherit_env": inherit_env,
            "shutdown": shutdown,
        }
        self.host = Host(name, close_timeout=close_timeout, shutdown=shutdown)

    async def __aenter__(self) -> ProviderHost:
        await self.host.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.host.__aexit__(exc_type, exc, tb)

    def provider(self, command: CommandLike, **options: Any) -> ProviderPlugin:
        """A :class:`ProviderPlugin` for ``command`` with this host's settings (not
        started); ``options`` are those of :class:`ProviderPlugin` and override them
        (``env`` is added to the host's)."""
        env = {**self.settings["env"], **(options.pop("env", None) or {})}
        return ProviderPlugin(command, **{**self.settings, **options, "env": env})

    async def define(self, command: CommandLike, **options: Any) -> PluginProvider:
        """Run ``<command> define``; the parsed, validated definition."""
        return await self.provider(command, **options).define()

    async def unpack(
        self, command: CommandLike, directory: str | os.PathLike[str], **options: Any
    ) -> Path:
        """Run ``<command> unpack DIR`` (the directory is created); return it."""
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
