"""The registry of task-plugin providers.

Providers come from two places: the ``plugwire.task_plugins`` entry-point group (the
entry point's name is the plugin name; its object is a :class:`PluginProvider`
instance, or a class / zero-argument factory returning one) and :func:`register`.
A name may be registered once; the names the manager configuration uses for itself
(``disabled``, ``engine``, ``manager``) are reserved. Entry points load lazily, so one
broken distribution only fails when its plugin is asked for.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from importlib import metadata

from .errors import PluginLoadError, RegistryError
from .plugin import PluginProvider

__all__ = [
    "ENTRY_POINT_GROUP",
    "RESERVED_NAMES",
    "Registry",
    "default_registry",
    "plugins",
    "register",
]

ENTRY_POINT_GROUP = "plugwire.task_plugins"
RESERVED_NAMES = frozenset({"disabled", "engine", "manager"})
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(
            "invalid task-plugin name",
            step="register",
            expected="lower-case letters, digits, '-' or '_', starting with a letter (max 63)",
            seen=repr(name),
        )
    if name in RESERVED_NAMES:
        raise RegistryError(
            f"task-plugin name {name!r} is reserved",
            step="register",
            expected=f"a name other than {sorted(RESERVED_NAMES)}",
            seen=name,
        )
    return name


class Registry:
    """Plugin name -> :class:`PluginProvider`, from entry points and :meth:`register`.

    ``entry_points`` overrides discovery (an iterable of entry points; pass ``()`` for
    an empty registry that only holds what is registered by hand).
    """

    def __init__(self, entry_points: Iterable[metadata.EntryPoint] | None = None) -> None:
        self._lock = threading.Lock()
        self._explicit_eps = None if entry_points is None else list(entry_points)
        self._eps: dict[str, metadata.EntryPoint] | None = None
        self._providers: dict[str, PluginProvider] = {}

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        if self._eps is None:
            found = (
                self._explicit_eps
                if self._explicit_eps is not None
                else list(metadata.entry_points(group=ENTRY_POINT_GROUP))
            )
            eps: dict[str, metadata.EntryPoint] = {}
            for ep in found:
                _check_name(ep.name)
                if ep.name in eps and eps[ep.name].value != ep.value:
                    raise RegistryError(
                        f"task-plugin name {ep.name!r} is registered by two entry points",
                        step="entry points",
                        expected="one provider per name",
                        seen=f"{eps[ep.name].value} and {ep.value}",
                    )
                eps[ep.name] = ep
            self._eps = eps
        return self._eps

    def register(self, name: str, provider: PluginProvider) -> None:
        """Register ``provider`` as ``name``.

        Raises :class:`RegistryError` when the name is malformed, reserved, or already
        used (by :meth:`register` or an entry point), or ``provider`` is not a
        :class:`PluginProvider`.
        """
        _check_name(name)
        if not isinstance(provider, PluginProvider):
            raise RegistryError(
                f"task plugin {name!r} is not a PluginProvider",
                peer=name,
                step="register",
                expected="a PluginProvider instance",
                seen=type(provider).__name__,
            )
        with self._lock:
            if name in self._providers or name in self._entry_points():
                raise RegistryError(
                    f"task-plugin name {name!r} is already registered",
                    peer=name,
                    step="register",
                    expected="a new name",
                    seen=name,
                )
            self._providers[name] = provider

    def unregister(self, name: str) -> None:
        """Forget a provider added with :meth:`register` (entry points stay)."""
        with self._lock:
            self._providers.pop(name, None)

    def names(self) -> list[str]:
        """Every registered name, sorted (without loading entry points)."""
        return sorted(set(self._providers) | set(self._entry_points()))

    def __contains__(self, name: object) -> bool:
        return name in self._providers or name in self._entry_points()

    def get(self, name: str) -> PluginProvider:
        """The provider registered as ``name``.

        Raises :class:`RegistryError` for an unknown name (listing the known ones) and
        :class:`PluginLoadError` when its entry point cannot be loaded.
        """
        with self._lock:
            if name in self._providers:
                return self._providers[name]
            ep = self._entry_points().get(name)
        if ep is None:
            raise RegistryError(
                f"unknown task plugin {name!r}",
                step="lookup",
                expected=f"one of {self.names()}",
                seen=name,
            )
        provider = _load(ep)
        with self._lock:
            return self._providers.setdefault(name, provider)

    def providers(self) -> dict[str, PluginProvider]:
        """Every provider by name (loads all entry points)."""
        return {name: self.get(name) for name in self.names()}

    def copy(self) -> Registry:
        """An independent registry with the same providers (to add local ones)."""
        new = Registry(self._entry_points().values())
        with self._lock:
            new._providers = dict(self._providers)
        return new


def _load(ep: metadata.EntryPoint) -> PluginProvider:
    try:
        obj = ep.load()
    except Exception as exc:
        raise PluginLoadError(
            f"cannot load task plugin {ep.name!r}: {type(exc).__name__}: {exc}",
            peer=ep.name,
            step="load entry point",
            expected="an importable object",
            seen=ep.value,
        ) from exc
    if isinstance(obj, PluginProvider):
        return obj
    if callable(obj):
        try:
            made = obj()
        except Exception as exc:
            raise PluginLoadError(
                f"cannot create task plugin {ep.name!r}: {type(exc).__name__}: {exc}",
                peer=ep.name,
                step="load entry point",
                seen=ep.value,
            ) from exc
        if isinstance(made, PluginProvider):
            return made
        obj = made
    raise PluginLoadError(
        f"entry point of task plugin {ep.name!r} is not a PluginProvider",
        peer=ep.name,
        step="load entry point",
        expected="a PluginProvider, or a class/factory returning one",
        seen=f"{ep.value} -> {type(obj).__name__}",
    )


default_registry = Registry()


def register(name: str, provider: PluginProvider) -> None:
    """Register ``provider`` as ``name`` in the default registry (see :meth:`Registry.register`)."""
    default_registry.register(name, provider)


def plugins() -> dict[str, PluginProvider]:
    """Every provider of the default registry by name."""
    return default_registry.providers()
