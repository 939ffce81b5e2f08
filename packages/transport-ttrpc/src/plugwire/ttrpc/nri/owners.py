"""Field ownership of a merged result: upstream ``api/owners.go``.

Every field a plugin sets is *claimed* under the plugin's ``NN-name``, per container;
a second plugin claiming the same field (or the same key of a compound field) is a
:class:`~plugwire.ttrpc.nri.api.ConflictError` with upstream's text. A removal is
remembered as ``-<plugin>`` so that only the remover may set the field again.
"""

from __future__ import annotations

from ._generated import api_pb2 as pb
from .api import ConflictError

__all__ = ["Owners", "is_marked_for_removal", "mark_for_removal"]


def is_marked_for_removal(key: str) -> tuple[str, bool]:
    """``("x", True)`` for ``"-x"``, ``(key, False)`` otherwise (upstream helper)."""
    if key.startswith("-"):
        return key[1:], True
    return key, False


def mark_for_removal(key: str) -> str:
    """``key`` marked for removal in an adjustment (upstream's ``-`` prefix)."""
    return "-" + key


def _field_name(field: int) -> str:
    try:
        return pb.Field.Name(field)
    except ValueError:
        return str(field)


class _FieldOwners:
    def __init__(self) -> None:
        self.simple: dict[int, str] = {}
        self.compound: dict[int, dict[str, str]] = {}

    def _conflict(self, field: int, plugin: str, other: str, *qualifiers: str) -> ConflictError:
        what = _field_name(field) + " " + " ".join(qualifiers)
        return ConflictError(
            f'plugins "{plugin}" and "{other}" both tried to set {what}',
            field=_field_name(field),
            plugins=(plugin, other),
            key=" ".join(qualifiers),
        )

    def claim_compound(self, field: int, key: str, plugin: str) -> None:
        owners = self.compound.get(field)
        if owners is None:
            owners = self.compound[field] = {}
        elif key in owners:
            other = owners[key]
            clearer, marked = is_marked_for_removal(other)
            if not (marked and clearer == plugin):
                raise self._conflict(field, plugin, clearer if marked else other, key)
        owners[key] = plugin

    def claim_simple(self, field: int, plugin: str) -> None:
        if field in self.simple:
            other = self.simple[field]
            clearer, marked = is_marked_for_removal(other)
            if not (marked and clearer == plugin):
                raise self._conflict(field, plugin, clearer if marked else other)
        self.simple[field] = plugin

    def accumulate_simple(self, field: int, plugin: str) -> None:
        old = self.simple.get(field)
        self.simple[field] = plugin if old is None else old + "," + plugin

    def clear_compound(self, field: int, key: str, plugin: str) -> None:
        self.compound.setdefault(field, {})[key] = mark_for_removal(plugin)

    def clear_simple(self, field: int, plugin: str) -> None:
        self.simple[field] = mark_for_removal(plugin)


class Owners:
    """Which plugin set which field of which container (upstream ``OwningPlugins``)."""

    def __init__(self) -> None:
        self._by_container: dict[str, _FieldOwners] = {}

    def _for(self, container_id: str) -> _FieldOwners:
        owners = self._by_container.get(container_id)
        if owners is None:
            owners = self._by_container[container_id] = _FieldOwners()
        return owners

    def claim(self, container_id: str, field: int, plugin: str, key: str | None = None) -> None:
        """Claim ``field`` (``key`` of it for compound fields) or raise ConflictError."""
        owners = self._for(container_id)
        if key is None:
            owners.claim_simple(field, plugin)
        else:
            owners.claim_compound(field, key, plugin)

    def clear(self, container_id: str, field: int, plugin: str, key: str | None = None) -> None:
        """Record that ``plugin`` removed ``field`` (only it may set it again)."""
        owners = self._for(container_id)
        if key is None:
            owners.clear_simple(field, plugin)
        else:
            owners.clear_compound(field, key, plugin)

    def claim_hooks(self, container_id: str, plugin: str) -> None:
        self._for(container_id).accumulate_simple(pb.OciHooks, plugin)

    def clear_rdt(self, container_id: str, plugin: str) -> None:
        owners = self._for(container_id)
        for field in (pb.RdtClosID, pb.RdtSchemata, pb.RdtEnableMonitoring):
            owners.clear_simple(field, plugin)

    def owner(self, container_id: str, field: int, key: str | None = None) -> str | None:
        """The plugin owning ``field`` (or its ``key``), ``None`` if unclaimed."""
        owners = self._by_container.get(container_id)
        if owners is None:
            return None
        if key is None:
            return owners.simple.get(field)
        return owners.compound.get(field, {}).get(key)

    def to_proto(self) -> pb.OwningPlugins:
        out = pb.OwningPlugins()
        for cid, owners in self._by_container.items():
            fo = out.owners[cid]
            for field, plugin in owners.simple.items():
                fo.simple[field] = plugin
            for field, keyed in owners.compound.items():
                for key, plugin in keyed.items():
                    fo.compound[field].owners[key] = plugin
        return out
