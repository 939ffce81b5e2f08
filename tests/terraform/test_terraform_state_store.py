"""State stores over tfplugin6, at the protocol level: the example ``fsstate`` provider
launched as Terraform launches it (go-plugin handshake, AutoMTLS), driven with the RPCs
Terraform sends - chunk-size negotiation, chunked writes and reads (also chunks larger
than gRPC's 4 MiB default), locks, states - and with what Terraform never sends (chunks
out of order, a lock held by another ID), which must come back as diagnostics."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from provider_support import Tf, anyio_backend, diag_texts, launch

from plugwire.core.errors import ConfigError, RemoteError
from plugwire.grpc.terraform import LockInfo, Provider, StateStore, cty
from plugwire.grpc.terraform.state_store import DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE

__all__ = ["anyio_backend"]

pytestmark = [pytest.mark.terraform, pytest.mark.anyio]

HERE = Path(__file__).resolve().parent
FSSTATE = [sys.executable, "-m", "plugwire.grpc.terraform.examples.fsstate"]
STORE = "fsstate_dir"
CONFIG = cty.Object({"path": cty.String, "chunk_size": cty.Number})


async def _configure(tf: Tf, path: Path, chunk_size: int | None = None, suggested: int = 0) -> Any:
    return await tf.call(
        "ConfigureStateStore",
        type_name=STORE,
        config=tf.dv({"path": str(path), "chunk_size": chunk_size}, CONFIG),
        capabilities=tf.pb.StateStoreClientCapabilities(chunk_size=suggested),
    )


def _chunks(
    tf: Tf, data: bytes, size: int, state_id: str = "default", type_name: str = STORE
) -> list[Any]:
    """The chunks Terraform's WriteStateBytes sends (meta on the first only)."""
    out = []
    for start in range(0, len(data), size):
        piece = data[start : start + size]
        chunk = tf.pb.WriteStateBytes.RequestChunk(
            bytes=piece,
            total_length=len(data),
            range=tf.pb.StateByteRange(start=start, end=start + len(piece) - 1),
        )
        if start == 0:
            chunk.meta.CopyFrom(tf.pb.RequestChunkMeta(type_name=type_name, state_id=state_id))
        out.append(chunk)
    return out


async def _stream(chunks: Sequence[Any]) -> AsyncIterator[Any]:
    for c in chunks:
        yield c


async def _write(tf: Tf, chunks: Sequence[Any]) -> Any:
    return await tf.stub.WriteStateBytes(_stream(chunks))


async def _read(tf: Tf, state_id: str = "default") -> list[Any]:
    call = tf.stub.ReadStateBytes(tf.pb.ReadStateBytes.Request(type_name=STORE, state_id=state_id))
    return [chunk async for chunk in call]


def _errors(diagnostics: Any) -> list[str]:
    return [t for d, t in zip(diagnostics, diag_texts(diagnostics), strict=True) if d.severity == 1]


async def test_state_store_schema_and_metadata() -> None:
    async with launch(6, FSSTATE) as tf:
        schema = await tf.call("GetProviderSchema")
        assert not schema.diagnostics
        assert list(schema.state_store_schemas) == [STORE]
        attrs = {a.name: a for a in schema.state_store_schemas[STORE].block.attributes}
        assert sorted(attrs) == ["chunk_size", "path"]
        assert attrs["path"].required and json.loads(attrs["path"].type) == "string"
        assert attrs["chunk_size"].optional and json.loads(attrs["chunk_size"].type) == "number"
        meta = await tf.call("GetMetadata")
        assert [m.type_name for m in meta.state_stores] == [STORE]
        # The schema is validated like any other block.
        bad = await tf.call(
            "ValidateStateStoreConfig",
            type_name=STORE,
            config=tf.dv({"path": "/x", "chunk_size": 0}, CONFIG),
        )
        assert len(_errors(bad.diagnostics)) == 1
        assert [s.attribute_name for s in bad.diagnostics[0].attribute.steps] == ["chunk_size"]
        ok = await tf.call(
            "ValidateStateStoreConfig", type_name=STORE, config=tf.dv({"path": "/x"}, CONFIG)
        )
        assert not ok.diagnostics


async def test_protocol5_has_no_state_stores() -> None:
    async with launch(5, FSSTATE) as tf:
        schema = await tf.call("GetProviderSchema")
        assert not schema.diagnostics
        assert "state_store_schemas" not in type(schema).DESCRIPTOR.fields_by_name


async def test_chunk_size_negotiation(tmp_path: Path) -> None:
    async with launch(6, FSSTATE) as tf:
        # No preference: Terraform's suggestion is taken; none suggested: 8 MiB.
        r = await _configure(tf, tmp_path, suggested=12345)
        assert not r.diagnostics and r.capabilities.chunk_size == 12345
        r = await _configure(tf, tmp_path)
        assert r.capabilities.chunk_size == DEFAULT_CHUNK_SIZE
        # A store's own choice wins.
        r = await _configure(tf, tmp_path, chunk_size=7, suggested=12345)
        assert r.capabilities.chunk_size == 7


async def test_round_trip_in_chunks_and_locks(tmp_path: Path) -> None:
    state = json.dumps({"version": 4, "serial": 1, "lineage": "x" * 40, "pad": "y" * 60}).encode()
    async with launch(6, FSSTATE) as tf:
        assert not (await _configure(tf, tmp_path, chunk_size=16)).diagnostics
        assert await _read(tf) == []  # no state yet: no chunks
        chunks = _chunks(tf, state, 16)
        assert len(chunks) > 3
        written = await _write(tf, chunks)
        assert not written.diagnostics
        assert (tmp_path / "default.tfstate").read_bytes() == state

        got = await _read(tf)
        assert b"".join(c.bytes for c in got) == state
        assert [len(c.bytes) for c in got[:-1]] == [16] * (len(got) - 1)
        assert 0 < len(got[-1].bytes) <= 16
        assert [(c.range.start, c.range.end) for c in got] == [
            (i * 16, min(i * 16 + 15, len(state) - 1)) for i in range(len(got))
        ]
        assert {c.total_length for c in got} == {len(state)}

        await _write(tf, _chunks(tf, b"{}", 16, state_id="dev"))
        states = await tf.call("GetStates", type_name=STORE)
        assert list(states.state_ids) == ["default", "dev"]

        # Lock; a second lock names the lock held; a wrong unlock names it too.
        locked = await tf.call(
            "LockState", type_name=STORE, state_id="default", operation="OperationTypeApply"
        )
        assert not locked.diagnostics and locked.lock_id
        held = LockInfo.from_json((tmp_path / "default.tflock").read_bytes())
        assert held.id == locked.lock_id and held.operation == "OperationTypeApply"
        again = await tf.call(
            "LockState", type_name=STORE, state_id="default", operation="OperationTypePlan"
        )
        assert again.lock_id == ""
        [text] = _errors(again.diagnostics)
        assert "Workspace Already Locked" in text and locked.lock_id in text
        assert "OperationTypeApply" in text
        wrong = await tf.call("UnlockState", type_name=STORE, state_id="default", lock_id="nope")
        [text] = _errors(wrong.diagnostics)
        assert locked.lock_id in text and "'nope'" in text
        # A locked state cannot be deleted either.
        busy = await tf.call("DeleteState", type_name=STORE, state_id="default")
        assert locked.lock_id in _errors(busy.diagnostics)[0]
        ok = await tf.call(
            "UnlockState", type_name=STORE, state_id="default", lock_id=locked.lock_id
        )
        assert not ok.diagnostics and not (tmp_path / "default.tflock").exists()
        # Unlocking again: nothing is locked, said so.
        twice = await tf.call(
            "UnlockState", type_name=STORE, state_id="default", lock_id=locked.lock_id
        )
        assert "not locked" in _errors(twice.diagnostics)[0]

        deleted = await tf.call("DeleteState", type_name=STORE, state_id="dev")
        assert not deleted.diagnostics
        states = await tf.call("GetStates", type_name=STORE)
        assert list(states.state_ids) == ["default"]


async def test_chunks_above_grpc_default_message_size(tmp_path: Path) -> None:
    """A 16 MiB chunk (gRPC's default limit is 4 MiB) both ways: the limits are raised
    to what Terraform uses (256 MiB messages, chunks up to 128 MiB)."""
    size = 16 << 20
    state = bytes(range(256)) * ((size + (3 << 20)) // 256)  # 19 MiB: 16 + 3
    async with launch(6, FSSTATE) as tf:
        assert (await _configure(tf, tmp_path, chunk_size=size)).capabilities.chunk_size == size
        written = await _write(tf, _chunks(tf, state, size))
        assert not written.diagnostics
        got = await _read(tf)
        assert [len(c.bytes) for c in got] == [size, len(state) - size]
        assert b"".join(c.bytes for c in got) == state


async def test_bad_chunks_are_diagnostics(tmp_path: Path) -> None:
    state = b"0123456789" * 5
    async with launch(6, FSSTATE) as tf:
        # Before ConfigureStateStore there is no chunk size: a diagnostic, not a crash.
        early = await _write(tf, _chunks(tf, state, 10))
        assert "before ConfigureStateStore" in _errors(early.diagnostics)[0]
        [chunk] = await _read(tf)
        assert "before ConfigureStateStore" in _errors(chunk.diagnostics)[0]

        await _configure(tf, tmp_path, chunk_size=10)
        chunks = _chunks(tf, state, 10)
        # Out of order: chunk 2 and 3 swapped. Named: the state, where, what was seen.
        swapped = [chunks[0], chunks[2], chunks[1], *chunks[3:]]
        r = await _write(tf, swapped)
        [text] = _errors(r.diagnostics)
        assert text.startswith("State chunk out of order")
        assert "'default'" in text and "chunk 2" in text
        assert "expected bytes 10-19" in text and "seen range 20-29" in text
        assert not (tmp_path / "default.tfstate").exists()  # nothing stored

        # A gap (chunk 2 missing), a chunk of the wrong size, no meta, too short.
        r = await _write(tf, [chunks[0], *chunks[2:]])
        assert "out of order" in _errors(r.diagnostics)[0]
        r = await _write(tf, _chunks(tf, state, 5))
        assert "agreed in ConfigureStateStore is 10" in _errors(r.diagnostics)[0]
        no_meta = [tf.pb.WriteStateBytes.RequestChunk(), *chunks[1:]]
        no_meta[0].CopyFrom(chunks[0])
        no_meta[0].ClearField("meta")
        r = await _write(tf, no_meta)
        assert "no meta" in _errors(r.diagnostics)[0]
        r = await _write(tf, chunks[:-1])
        assert "after 40 of 50 bytes" in _errors(r.diagnostics)[0]
        r = await _write(tf, [])
        assert "No state data received" in _errors(r.diagnostics)[0]
        # A chunk claiming another total, another state, an unknown store.
        other = _chunks(tf, state, 10)
        other[1].total_length = 60
        r = await _write(tf, other)
        assert "total_length 60" in _errors(r.diagnostics)[0]
        other = _chunks(tf, state, 10)
        other[1].meta.CopyFrom(tf.pb.RequestChunkMeta(type_name=STORE, state_id="dev"))
        r = await _write(tf, other)
        assert "one WriteStateBytes stream writes one state" in _errors(r.diagnostics)[0]
        r = await _write(tf, _chunks(tf, state, 10, type_name="fsstate_nope"))
        assert "has no state store 'fsstate_nope'" in _errors(r.diagnostics)[0]
        assert not (tmp_path / "default.tfstate").exists()

        # The store still works afterwards.
        assert not (await _write(tf, chunks)).diagnostics
        assert b"".join(c.bytes for c in await _read(tf)) == state
        # A state id the store refuses (path traversal): its diagnostic.
        [chunk] = await _read(tf, "../etc/passwd")
        assert "Invalid state id" in _errors(chunk.diagnostics)[0]


class _Broken(StateStore):
    type_name = "broken_store"

    async def read(self, state_id: str, ctx: Any) -> bytes | None:
        return "not bytes"  # type: ignore[return-value]

    async def states(self, ctx: Any) -> list[str]:
        raise RuntimeError("disk on fire")


def test_state_store_type_names_checked() -> None:
    with pytest.raises(ConfigError, match="does not start with the provider's name"):
        Provider("other", state_stores=[_Broken()])
    with pytest.raises(ConfigError, match="two state stores"):
        Provider("broken", state_stores=[_Broken(), _Broken()])
    assert MAX_CHUNK_SIZE == 128 << 20


BROKEN = [
    sys.executable,
    "-c",
    "from test_terraform_state_store import serve_broken; serve_broken()",
]


def serve_broken() -> None:
    from plugwire.grpc.terraform.serving import serve

    serve(Provider("broken", state_stores=[_Broken()]))


async def test_store_failures_are_diagnostics(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(HERE)}
    async with launch(6, BROKEN, env=env) as tf:
        r = await tf.call(
            "ConfigureStateStore",
            type_name="broken_store",
            config=tf.dv({}, cty.Object({})),
            capabilities=tf.pb.StateStoreClientCapabilities(chunk_size=100),
        )
        assert not r.diagnostics and r.capabilities.chunk_size == 100
        call = tf.stub.ReadStateBytes(
            tf.pb.ReadStateBytes.Request(type_name="broken_store", state_id="default")
        )
        [chunk] = [c async for c in call]
        assert "returned a str, expected bytes" in _errors(chunk.diagnostics)[0]
        states = await tf.call("GetStates", type_name="broken_store")
        assert "RuntimeError: disk on fire" in _errors(states.diagnostics)[0]
        locked = await tf.call("LockState", type_name="broken_store", state_id="default")
        assert "does not support locking" in _errors(locked.diagnostics)[0]
        # The provider is still serving.
        assert not (await tf.call("GetProviderSchema")).diagnostics


async def test_provider_without_state_stores_answers_unimplemented() -> None:
    from provider_support import EXAMPLE

    async with launch(6, EXAMPLE) as tf:
        with pytest.raises(RemoteError) as info:
            await tf.call("GetStates", type_name="example_x")
        assert info.value.code == grpc.StatusCode.UNIMPLEMENTED.value[0]
        with pytest.raises(RemoteError) as info2:  # a streaming one
            await _read(tf)
        assert info2.value.code == grpc.StatusCode.UNIMPLEMENTED.value[0]
        assert not (await tf.call("GetProviderSchema")).state_store_schemas


DOC = HERE.parents[1] / "docs" / "terraform.md"
DOC_EXAMPLE = HERE.parents[1] / "docs" / "examples" / "terraform" / "state_store_direct.py"


def test_docs_state_store_example_runs() -> None:
    """docs/terraform.md's state-store block is docs/examples/terraform/state_store_direct.py
    word for word, and that program runs: a second lock is refused naming the first."""
    import subprocess

    text = DOC.read_text()
    section = text[text.index("## State stores (protocol 6)") :]
    block = section.split("```py\n", 1)[1].split("```", 1)[0]
    assert block == DOC_EXAMPLE.read_text()
    out = subprocess.run(
        [sys.executable, str(DOC_EXAMPLE)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.splitlines() == ["Workspace Already Locked - OperationTypeApply", "['default']"]
