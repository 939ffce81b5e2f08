"""The go-plugin family of ``plugwire demo``: the bundled Python plugins, launched for real.

A plugwire host (:class:`~plugwire.grpc.goplugin.PluginClient`) launches
``plugwire.grpc.goplugin.examples.kv``
with AutoMTLS, puts and gets a value, reads what the plugin printed through
GRPCStdio, then launches the bidirectional counter with broker multiplexing (each
Put calls back into the host through the broker) and kills both.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from collections.abc import Sequence

import anyio

from plugwire.core.demo import DemoRow

from .client import ClientConfig, PluginClient
from .examples import HANDSHAKE, kv_pb2
from .examples.counter import CounterPlugin
from .examples.kv import KVPlugin


async def demo() -> Sequence[DemoRow]:
    rows: list[DemoRow] = []
    with tempfile.TemporaryDirectory(prefix="plugwire-demo-") as tmp:
        out = io.BytesIO()
        start = time.monotonic()
        kv_cfg = ClientConfig(
            handshake=HANDSHAKE,
            plugins={"kv_grpc": KVPlugin()},
            cmd=[sys.executable, "-m", "plugwire.grpc.goplugin.examples.kv"],
            env={"KV_DIR": tmp},
            auto_mtls=True,
            sync_stdout=out,
            start_timeout=20,
        )
        async with PluginClient(kv_cfg) as client:
            rows.append(
                DemoRow(
                    "goplugin",
                    "launch + handshake (AutoMTLS)",
                    client.negotiated_version == 1,
                    f"{client.address} v{client.negotiated_version}, P-521 certs both ways",
                    time.monotonic() - start,
                )
            )
            start = time.monotonic()
            kv = client.dispense("kv_grpc")
            await kv.Put(kv_pb2.PutRequest(key="greeting", value=b"hello from plugwire"))
            got = (await kv.Get(kv_pb2.GetRequest(key="greeting"))).value
            await client.ping()
            rows.append(
                DemoRow(
                    "goplugin",
                    "kv_grpc put/get + ping",
                    got == b"hello from plugwire",
                    f"get greeting -> {got.decode(errors='replace')!r}",
                    time.monotonic() - start,
                )
            )
            with anyio.move_on_after(5):
                while b"put greeting" not in out.getvalue():  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            line = out.getvalue().decode(errors="replace").strip()
            rows.append(
                DemoRow("goplugin", "plugin stdout -> host (GRPCStdio)", bool(line), repr(line))
            )
            start = time.monotonic()
        rows.append(
            DemoRow(
                "goplugin",
                "kill (Shutdown RPC, exits by itself)",
                client.exited,
                "plugin exited",
                time.monotonic() - start,
            )
        )
        start = time.monotonic()
        counter_cfg = ClientConfig(
            handshake=HANDSHAKE,
            plugins={"counter": CounterPlugin()},
            cmd=[sys.executable, "-m", "plugwire.grpc.goplugin.examples.counter"],
            env={"KV_DIR": tmp},
            multiplex=True,
            start_timeout=20,
        )
        async with PluginClient(counter_cfg) as client:
            counter = client.dispense("counter")
            for n in (3, 4):
                await counter.put("hits", n)
            total = await counter.get("hits")
        rows.append(
            DemoRow(
                "goplugin",
                "bidirectional counter over yamux",
                total == 7,
                f"put 3, put 4 (each calls the host's AddHelper via the broker) -> {total}",
                time.monotonic() - start,
            )
        )
    return rows
