"""plugwire.http.drp: Digital Rebar Provision plugin providers, both sides.

Provider side: subclass :class:`Provider`, describe it with a
:class:`PluginProvider` and call :func:`serve` from your executable's main
(:func:`serve_async` is what its ``listen TO FROM`` runs).
Server side: :class:`ProviderPlugin` is one running provider executable (Python or
Go), run the way dr-provision does — a core plugin handle, so any
:class:`plugwire.core.host.Host` launches it; :class:`ProviderHost` plays
dr-provision for several providers (shared ``RS_*`` settings, a core ``Host``).
What a provider may call back is granted through its controller
(:data:`DRP_CAPABILITIES`).
"""

from __future__ import annotations

from .app import PLUGIN_API, PluginApi, provider_app, serve, serve_async
from .command import ProviderCommand
from .errors import ActionRefusedError, ConfigRefusedError, ProviderError, PublishRefusedError
from .files import PathEscapeError, check_tree, write_files
from .host import ProviderHost
from .models import LOG_LEVELS, Action, AvailableAction, Error, Event, LogLine, PluginProvider
from .plugin import DRP_SHUTDOWN, ProviderPlugin
from .provider import SERVER_API, Provider, ProviderContext
from .server_api import DRP_CAPABILITIES, ObjectSource, ServerApi

__all__ = [
    "DRP_CAPABILITIES",
    "DRP_SHUTDOWN",
    "LOG_LEVELS",
    "PLUGIN_API",
    "SERVER_API",
    "Action",
    "ActionRefusedError",
    "AvailableAction",
    "ConfigRefusedError",
    "Error",
    "Event",
    "LogLine",
    "ObjectSource",
    "PathEscapeError",
    "PluginApi",
    "PluginProvider",
    "Provider",
    "ProviderCommand",
    "ProviderContext",
    "ProviderError",
    "ProviderHost",
    "ProviderPlugin",
    "PublishRefusedError",
    "ServerApi",
    "check_tree",
    "provider_app",
    "serve",
    "serve_async",
    "write_files",
]
