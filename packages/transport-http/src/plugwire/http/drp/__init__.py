"""plugwire.http.drp: Digital Rebar Provision plugin providers, both sides.

Provider side: subclass :class:`Provider`, describe it with a
:class:`PluginProvider` and call :func:`run_provider` from your executable's main.
Server side: :class:`ProviderHost` runs a provider executable (Python or Go) the
way dr-provision does and lets you configure it and call its actions.
"""

from __future__ import annotations

from .app import PLUGIN_API, PluginApi, provider_app, run_provider
from .errors import ActionRefusedError, ConfigRefusedError, ProviderError
from .host import ObjectSource, ProviderHost
from .models import LOG_LEVELS, Action, AvailableAction, Error, Event, LogLine, PluginProvider
from .provider import SERVER_API, Provider, ProviderContext

__all__ = [
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
    "PluginApi",
    "PluginProvider",
    "Provider",
    "ProviderContext",
    "ProviderError",
    "ProviderHost",
    "provider_app",
    "run_provider",
]
