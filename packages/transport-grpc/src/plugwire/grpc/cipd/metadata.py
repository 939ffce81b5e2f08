"""Instance metadata: what ``Host.ListMetadata`` serves to admission plugins.

The host asks a pluggable :class:`MetadataSource` (a CIPD backend client in
production, :class:`StaticMetadataSource` in tests and examples) for one page at a
time; plugins page through it with
:meth:`~plugwire.grpc.cipd.plugin.InstanceInfo.visit_metadata`.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

import attrs

from plugwire.core.errors import RemoteError
from plugwire.core.status import StatusCode

from ._generated import cipd_types_pb2
from .pins import ObjectRef, Pin

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MetadataEntry",
    "MetadataPage",
    "MetadataQuery",
    "MetadataSource",
    "StaticMetadataSource",
]

#: Page size used when a plugin asks for zero or a negative page size.
DEFAULT_PAGE_SIZE = 20


def _to_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _fingerprint(key: str, value: bytes) -> str:
    return hashlib.sha256(key.encode() + b":" + value).hexdigest()[:32]


@attrs.frozen
class MetadataEntry:
    """One metadata entry attached to a package instance.

    ``fingerprint`` defaults to CIPD's: the first 16 bytes of sha256("key:value") in hex.
    """

    key: str
    value: bytes = attrs.field(converter=_to_bytes)
    content_type: str = ""
    fingerprint: str = ""
    attached_by: str = ""
    attached_ts: datetime.datetime | None = None

    def to_pb(self) -> cipd_types_pb2.InstanceMetadata:
        msg = cipd_types_pb2.InstanceMetadata(
            key=self.key,
            value=self.value,
            content_type=self.content_type,
            fingerprint=self.fingerprint or _fingerprint(self.key, self.value),
            attached_by=self.attached_by,
        )
        if self.attached_ts is not None:
            msg.attached_ts.FromDatetime(self.attached_ts)
        return msg

    @classmethod
    def from_pb(cls, msg: cipd_types_pb2.InstanceMetadata) -> MetadataEntry:
        ts = (
            msg.attached_ts.ToDatetime(tzinfo=datetime.UTC) if msg.HasField("attached_ts") else None
        )
        return cls(
            key=msg.key,
            value=msg.value,
            content_type=msg.content_type,
            fingerprint=msg.fingerprint,
            attached_by=msg.attached_by,
            attached_ts=ts,
        )


@attrs.frozen
class MetadataQuery:
    """One ``ListMetadata`` request: which instance, which keys, which page."""

    service_url: str
    package: str
    instance: ObjectRef
    keys: tuple[str, ...] = ()
    page_size: int = DEFAULT_PAGE_SIZE
    page_token: str = ""


@attrs.frozen
class MetadataPage:
    """One page of results, most recent first; ``next_page_token`` empty on the last."""

    entries: tuple[MetadataEntry, ...] = ()
    next_page_token: str = ""


@runtime_checkable
class MetadataSource(Protocol):
    """Where the host finds instance metadata.

    Raise :class:`~plugwire.core.errors.RemoteError` to answer the plugin with a
    status code (``NOT_FOUND``, ``INVALID_ARGUMENT``...); any other exception becomes
    ``INTERNAL``.
    """

    async def list_metadata(self, query: MetadataQuery) -> MetadataPage: ...


class StaticMetadataSource:
    """Metadata held in memory: ``{Pin(...): [MetadataEntry(...), ...]}``.

    Entries are listed in the given order (put the most recent first), filtered by
    the query's keys, in pages whose tokens are offsets.
    """

    def __init__(self, entries: Mapping[Pin, Iterable[MetadataEntry]] | None = None) -> None:
        self._entries: dict[tuple[str, str], list[MetadataEntry]] = {}
        for pin, items in (entries or {}).items():
            self.add(pin, *items)

    def add(self, pin: Pin, *entries: MetadataEntry) -> None:
        """Attach ``entries`` to ``pin`` (after the ones it already has)."""
        self._entries.setdefault((pin.package, pin.instance_id), []).extend(entries)

    async def list_metadata(self, query: MetadataQuery) -> MetadataPage:
        picked: Sequence[MetadataEntry] = [
            e
            for e in self._entries.get((query.package, query.instance.instance_id), [])
            if not query.keys or e.key in query.keys
        ]
        start = 0
        if query.page_token:
            if not query.page_token.isdigit() or int(query.page_token) > len(picked):
                raise RemoteError(
                    f"bad page token {query.page_token!r}",
                    code=StatusCode.INVALID_ARGUMENT,
                    step="ListMetadata",
                )
            start = int(query.page_token)
        size = query.page_size if query.page_size > 0 else DEFAULT_PAGE_SIZE
        end = min(start + size, len(picked))
        token = str(end) if end < len(picked) else ""
        return MetadataPage(tuple(picked[start:end]), token)
