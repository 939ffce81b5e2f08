"""The plugin manager: many plugins behind one interface.

:class:`PluginManager` enables the plugins named in its configuration (minus those
listed in ``disabled``), validates each one's configuration against its provider's
schema, merges their payload schemas, and creates a
:class:`~plugwire.core.tasks.fanout.TaskPluginManager` per task (the per-task
fan-out lives in :mod:`.fanout`).

The plugins are core plugin handles (family ``tasks``) in a core
:class:`~plugwire.core.host.Host` the manager composes: an out-of-process plugin is
launched through it, an in-process one is wrapped in a
:class:`~plugwire.core.tasks.handle.TaskPluginHandle`; closing the manager closes them
all in parallel within one close timeout. Each plugin gets a
:class:`~plugwire.core.Controller` granting what it may use of a task (``grants``).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import AsyncIterator, Collection, Mapping
from typing import Any

import anyio

from ..controller import Controller
from ..errors import ConfigError
from ..handle import PluginHandle
from ..host import Host
from ..shutdown import ShutdownPolicy
from .engine import Engine
from .errors import PluginFailure
from .fanout import DEFAULT_STAGE_TIMEOUT, TaskPluginManager, _call_with_timeout, aggregate_failures
from .handle import TaskPluginHandle, task_controller
from .plugin import Plugin, PluginOptions, TaskPlugin, TaskPluginOptions
from .registry import Registry, default_registry
from .schema import (
    JsonSchema,
    check_schema,
    merge_payload_schemas,
    schema_errors,
)

__all__ = [
    "DEFAULT_STAGE_TIMEOUT",
    "PluginManager",
    "TaskPluginManager",
    "aggregate_failures",
    "manager_config_schema",
]


def manager_config_schema(registry: Registry | None = None) -> dict[str, Any]:
    """The JSON Schema of the manager configuration for every plugin in ``registry``.

    Like upstream: a mapping from plugin name to that plugin's configuration, plus
    ``disabled``, a list of plugin names. A plugin is enabled when it has an entry and
    is not disabled.
    """
    reg = registry or default_registry
    providers = reg.providers()
    props: dict[str, Any] = {
        "disabled": {"type": "array", "items": {"enum": sorted(providers)}, "uniqueItems": True}
    }
    for name, provider in providers.items():
        props[name] = provider.config_schema() or {"type": "object"}
    return {"type": "object", "properties": props, "additionalProperties": False}


class PluginManager(Plugin):
    """The enabled plugins, behind the :class:`Plugin` interface.

    Create it with :meth:`open` (an async context manager that closes the plugins);
    then :meth:`new_task` per task.
    """

    def __init__(
        self,
        plugins: Mapping[str, Plugin],
        *,
        stage_timeout: float = DEFAULT_STAGE_TIMEOUT,
        host: Host | None = None,
        grants: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        if not (stage_timeout > 0 and math.isfinite(stage_timeout)):
            raise ConfigError(
                "stage timeout must be a positive number of seconds",
                step="plugin manager",
                expected="> 0",
                seen=stage_timeout,
            )
        self._plugins = dict(plugins)
        self.stage_timeout = stage_timeout
        self._host = host
        self._controllers = {
            name: _controller_of(name, plugin, grants) for name, plugin in self._plugins.items()
        }
        self._schemas = {name: dict(p.payload_schema()) for name, p in self._plugins.items()}
        self._payload_schema = merge_payload_schemas(self._schemas)
        self._with_engine: dict[str, dict[str, Any]] = {}

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        config: Mapping[str, Any],
        *,
        registry: Registry | None = None,
        engine: Engine | None = None,
        stage_timeout: float = DEFAULT_STAGE_TIMEOUT,
        start_timeout: float | None = None,
        close_timeout: float | None = None,
        grants: Mapping[str, Collection[str]] | None = None,
    ) -> AsyncIterator[PluginManager]:
        """Enable, configure and create the plugins ``config`` names; close them on exit.

        Each plugin gets ``start_timeout`` seconds to be created (default: the larger
        of ``stage_timeout`` and 60 s: starting a plugin process takes a while). On
        exit every plugin is closed in parallel within ``close_timeout`` (default: the
        stage timeout); what is still running then is killed.

        ``grants`` maps a plugin name to the capabilities it may use of a task (see
        :mod:`plugwire.core.tasks.handle`); a plugin not listed gets all of them.

        ``config`` maps plugin names to their configuration; ``disabled`` lists plugins
        to leave out. Raises :class:`~plugwire.core.errors.ConfigError` (or its
        subclasses :class:`~plugwire.core.tasks.errors.RegistryError`,
        :class:`~plugwire.core.tasks.errors.SchemaConflictError`) for an unknown
        plugin, a configuration failing its schema, a plugin failing to start (every
        failure listed), or conflicting payload schemas.
        """
        reg = registry or default_registry
        enabled = _enabled(config, reg)
        start = start_timeout if start_timeout is not None else max(stage_timeout, 60.0)
        close = close_timeout if close_timeout is not None else stage_timeout
        host = Host("task plugins", close_timeout=close, shutdown=ShutdownPolicy(grace=close))
        # The host's task group runs the plugins' background work (pipe readers,
        # watchers); errors (ours and the body's) propagate as they are.
        async with host:
            plugins: dict[str, Plugin] = {}
            failures: list[PluginFailure] = []

            async def create(name: str) -> None:
                plugin, failure = await _call_with_timeout(
                    name,
                    "new_plugin",
                    start,
                    lambda: _launch(host, reg, name, config, engine, grants),
                )
                if failure is not None:
                    failures.append(failure)
                elif plugin is not None:
                    plugins[name] = plugin

            async with anyio.create_task_group() as tg:
                for name in enabled:
                    tg.start_soon(create, name)
            if failures:
                lines = "\n - ".join(f.describe() for f in sorted(failures, key=lambda f: f.plugin))
                raise ConfigError(
                    f"plugin instantiation failed:\n - {lines}",
                    step="new_plugin",
                    peer=", ".join(sorted(f.plugin for f in failures)),
                )
            manager = cls(
                {n: plugins[n] for n in enabled},
                stage_timeout=stage_timeout,
                host=host,
                grants=grants,
            )
            try:
                yield manager
            finally:
                await manager.aclose()

    def controller(self, name: str) -> Controller:
        """What plugin ``name`` may use of a task."""
        return self._controllers[name]

    @property
    def names(self) -> tuple[str, ...]:
        """The enabled plugins, in configuration order."""
        return tuple(self._plugins)

    @property
    def plugins(self) -> Mapping[str, Plugin]:
        return dict(self._plugins)

    def payload_schema(self) -> JsonSchema:
        """The merged payload schema of every enabled plugin."""
        return self._payload_schema

    def schema_with_engine(self, engine_schema: JsonSchema) -> dict[str, Any]:
        """The plugins' payload schemas merged with an engine's (owner ``engine``).

        Raises :class:`~plugwire.core.tasks.errors.SchemaConflictError` on a conflict.
        The result is cached per engine schema.
        """
        key = json.dumps(engine_schema, sort_keys=True, default=repr)
        merged = self._with_engine.get(key)
        if merged is None:
            merged = merge_payload_schemas({"engine": engine_schema, **self._schemas})
            self._with_engine[key] = merged
        return merged

    def payload_schemas(self) -> dict[str, JsonSchema]:
        """Each enabled plugin's own payload schema, by name."""
        return dict(self._schemas)

    def new_task(self, options: TaskPluginOptions) -> TaskPluginManager:
        """A :class:`TaskPluginManager` for one task; call its stages in order.

        ``options.payload`` is the whole task payload: each plugin gets its own part.
        """
        return TaskPluginManager(self, options)

    async def new_task_plugin(self, options: TaskPluginOptions) -> TaskPlugin:
        """Create and return a :class:`TaskPluginManager` whose plugins are all created.

        Raises the aggregated creation error; use :meth:`new_task` to keep the
        managers of plugins that could be created (so their ``exception`` and
        ``dispose`` still run).
        """
        tpm = self.new_task(options)
        await tpm.new_task_plugin()
        return tpm

    async def aclose(self) -> None:
        """Close every plugin: in parallel through the manager's host, within its close
        timeout (a manager built without :meth:`open` closes them the same way)."""
        plugins, self._plugins = self._plugins, {}
        if self._host is not None:
            await self._host.aclose()
            return
        async with Host("task plugins", close_timeout=self.stage_timeout) as host:
            for name, plugin in plugins.items():
                await host.launch(_as_handle(name, plugin, self._controllers[name]))


def _controller_of(
    name: str, plugin: Plugin, grants: Mapping[str, Collection[str]] | None
) -> Controller:
    if isinstance(plugin, PluginHandle):  # its own (granted when it was launched)
        return plugin.controller
    return task_controller(name, (grants or {}).get(name))


def _as_handle(name: str, plugin: Plugin, controller: Controller) -> PluginHandle:
    if isinstance(plugin, PluginHandle):
        return plugin
    return TaskPluginHandle(name, plugin, controller=controller)


async def _launch(
    host: Host,
    reg: Registry,
    name: str,
    config: Mapping[str, Any],
    engine: Engine | None,
    grants: Mapping[str, Collection[str]] | None,
) -> Plugin:
    """Create plugin ``name`` and have ``host`` track it (launched when it is a handle
    that the provider did not start itself)."""
    controller = task_controller(name, (grants or {}).get(name))
    options = PluginOptions(
        name, config[name], engine, host.task_group, host=host, controller=controller
    )
    plugin = await reg.get(name).new_plugin(options)
    if not isinstance(plugin, Plugin):
        if isinstance(plugin, PluginHandle) and plugin.name not in host:
            await plugin.aclose()
        raise TypeError(f"new_plugin returned {type(plugin).__name__}, not a Plugin")
    if name in host:  # launched through options.host by its provider
        return plugin
    handle = _as_handle(name, plugin, controller)
    if isinstance(plugin, PluginHandle) and getattr(plugin, "started", True):
        host.track(handle)
    else:
        await host.launch(handle)
    return plugin


def _enabled(config: Mapping[str, Any], reg: Registry) -> list[str]:
    if not isinstance(config, Mapping):
        raise ConfigError(
            "task-plugin configuration must be an object",
            step="plugin config",
            expected="a mapping of plugin name to configuration",
            seen=type(config).__name__,
        )
    known = reg.names()
    disabled = config.get("disabled", [])
    if not isinstance(disabled, list) or not all(isinstance(d, str) for d in disabled):
        raise ConfigError(
            "'disabled' must be a list of plugin names",
            step="plugin config",
            expected="a list of strings",
            seen=disabled,
        )
    for name in [*disabled, *(k for k in config if k != "disabled")]:
        if name not in reg:
            raise ConfigError(
                f"unknown task plugin {name!r} in configuration",
                peer=name,
                step="plugin config",
                expected=f"one of {known}",
                seen=name,
            )
    enabled = [k for k in config if k != "disabled" and k not in disabled]
    for name in enabled:
        schema = reg.get(name).config_schema() or {"type": "object"}
        check_schema(schema, owner=name, what="config schema")
        messages = schema_errors(schema, config[name], root=f"config.{name}")
        if messages:
            raise ConfigError(
                f"configuration of task plugin {name!r} is invalid:\n - " + "\n - ".join(messages),
                peer=name,
                step="plugin config",
                expected="a value matching the plugin's config schema",
                seen=config[name],
            )
    return enabled
