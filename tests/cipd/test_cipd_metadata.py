"""StaticMetadataSource: key filtering and paging the way the Go test harness pages."""

from __future__ import annotations

import datetime
import hashlib

import pytest

from plugwire.core.errors import RemoteError
from plugwire.core.status import StatusCode
from plugwire.grpc.cipd import MetadataEntry, MetadataQuery, Pin, StaticMetadataSource

PIN = Pin("a/b", "a" * 40)


def query(**kw: object) -> MetadataQuery:
    args: dict[str, object] = {"service_url": "u", "package": "a/b", "instance": PIN.instance}
    args.update(kw)
    return MetadataQuery(**args)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_pages_filter_and_end() -> None:
    entries = [MetadataEntry("k" if i % 2 else "other", f"v{i}") for i in range(7)]
    source = StaticMetadataSource({PIN: entries})
    values: list[bytes] = []
    token = ""
    pages = 0
    while True:
        page = await source.list_metadata(query(keys=("k",), page_size=2, page_token=token))
        pages += 1
        values += [e.value for e in page.entries]
        if not page.next_page_token:
            break
        token = page.next_page_token
    assert values == [b"v1", b"v3", b"v5"]
    assert pages == 2


@pytest.mark.anyio
async def test_zero_page_size_means_twenty_and_unknown_pin_is_empty() -> None:
    source = StaticMetadataSource({PIN: [MetadataEntry("k", str(i)) for i in range(25)]})
    page = await source.list_metadata(query(page_size=0))
    assert len(page.entries) == 20 and page.next_page_token == "20"
    other = await source.list_metadata(query(package="x/y"))
    assert other.entries == () and other.next_page_token == ""


@pytest.mark.anyio
async def test_bad_token_is_invalid_argument() -> None:
    source = StaticMetadataSource({PIN: [MetadataEntry("k", "v")]})
    with pytest.raises(RemoteError) as info:
        await source.list_metadata(query(page_token="zzz"))
    assert info.value.code == StatusCode.INVALID_ARGUMENT


def test_entry_pb_round_trip_and_fingerprint() -> None:
    ts = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
    entry = MetadataEntry(
        "k", b"\x00v", content_type="text/plain", attached_by="me", attached_ts=ts
    )
    msg = entry.to_pb()
    assert msg.fingerprint == hashlib.sha256(b"k:\x00v").hexdigest()[:32]
    back = MetadataEntry.from_pb(msg)
    assert back.value == b"\x00v" and back.attached_ts == ts and back.attached_by == "me"
