"""Controllers: what one plugin instance may call back into on its host.

Different kinds of plugin get different capabilities: an admission plugin may read
package metadata, an NRI plugin may push container updates, a dr-provision provider
may publish events. A :class:`Controller` is that capability set, immutable and
checked by name, so the host code that serves a callback asks the controller rather
than reaching for global state.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeVar, overload

from .errors import PlugwireError

__all__ = ["CapabilityDeniedError", "Controller"]

C = TypeVar("C")


class CapabilityDeniedError(PlugwireError, PermissionError):
    """A plugin asked for a capability its controller does not grant."""


class Controller(Mapping[str, object]):
    """An immutable, named set of capabilities granted to one plugin instance.

    >>> ctl = Controller("kv", {"log": print})
    >>> ctl.require("log") is print
    True
    """

    __slots__ = ("_caps", "plugin")

    def __init__(self, plugin: str, capabilities: Mapping[str, object] | None = None) -> None:
        self.plugin = plugin
        self._caps = dict(capabilities or {})

    def grant(self, name: str, capability: object) -> Controller:
        """A new controller with ``name`` added (or replaced)."""
        return Controller(self.plugin, {**self._caps, name: capability})

    def revoke(self, name: str) -> Controller:
        """A new controller without ``name``."""
        return Controller(self.plugin, {k: v for k, v in self._caps.items() if k != name})

    @overload
    def require(self, name: str) -> Any: ...
    @overload
    def require(self, name: str, kind: type[C]) -> C: ...
    def require(self, name: str, kind: type[Any] | None = None) -> Any:
        """The capability ``name``; :class:`CapabilityDeniedError` if not granted (or
        not an instance of ``kind`` when given)."""
        if name not in self._caps:
            raise CapabilityDeniedError(
                f"plugin {self.plugin!r} may not use {name!r}",
                peer=self.plugin,
                step="capability check",
                expected=f"one of {sorted(self._caps)}",
                seen=name,
            )
        cap = self._caps[name]
        if kind is not None and not isinstance(cap, kind):
            raise CapabilityDeniedError(
                f"capability {name!r} has the wrong type",
                peer=self.plugin,
                step="capability check",
                expected=kind.__name__,
                seen=type(cap).__name__,
            )
        return cap

    def __getitem__(self, name: str) -> object:
        return self.require(name)

    def __contains__(self, name: object) -> bool:
        return name in self._caps

    def __iter__(self) -> Iterator[str]:
        return iter(self._caps)

    def __len__(self) -> int:
        return len(self._caps)

    def __repr__(self) -> str:
        return f"Controller({self.plugin!r}, {sorted(self._caps)})"
