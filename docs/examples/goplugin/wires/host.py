"""A plugwire host that lets the go-plugin handshake pick the wire.

    python docs/examples/goplugin/wires/host.py                 # ttrpc (plugwire plugin)
    python docs/examples/goplugin/wires/host.py --wires grpc    # refuse ttrpc
    python docs/examples/goplugin/wires/host.py --wires ttrpc   # force ttrpc
    python docs/examples/goplugin/wires/host.py --plugin ./plugin-go-grpc   # Go: grpc

Without ``--plugin`` it runs plugin.py next to this file. It prints the negotiated
wire, puts and gets a value with the same calls on either wire, shows the typed error
of a missing key, and closes the plugin.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from pathlib import Path

from plugwire.core.errors import PlugwireError, RemoteError
from plugwire.grpc.goplugin import ClientConfig, PluginClient, ServicePlugin
from plugwire.grpc.goplugin.examples import HANDSHAKE, kv_pb2, kv_pb2_grpc

SERVICE = kv_pb2.DESCRIPTOR.services_by_name["KV"]


async def run(plugin: list[str], wires: tuple[str, ...]) -> int:
    printed = io.BytesIO()  # what the plugin prints arrives here (GRPCStdio, any wire)
    config = ClientConfig(
        handshake=HANDSHAKE,
        # stub: the gRPC client; service: lets dispense() build the ttrpc one.
        plugins={"kv_grpc": ServicePlugin(stub=kv_pb2_grpc.KVStub, service=SERVICE)},
        cmd=plugin,
        wires=wires,
        sync_stdout=printed,
        start_timeout=30,
    )
    try:
        async with PluginClient(config) as client:
            print(f"protocol={client.protocol}", flush=True)
            kv = client.dispense("kv_grpc")
            await kv.Put(kv_pb2.PutRequest(key="hello", value=b"world"))
            reply = await kv.Get(kv_pb2.GetRequest(key="hello"))
            print(f"get hello -> {reply.value.decode()}", flush=True)
            try:
                await kv.Get(kv_pb2.GetRequest(key="missing"))
            except RemoteError as err:
                print(f"get missing -> code {err.code}", flush=True)
            for _ in range(50):  # let the plugin's stdout arrive
                if printed.getvalue().endswith(b"\n"):
                    break
                await asyncio.sleep(0.02)
        for line in printed.getvalue().decode(errors="replace").splitlines():
            print(f"plugin printed: {line}")
    except PlugwireError as err:  # typed: UnsupportedProtocolError, WireMismatchError, ...
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugin", help="plugin command (default: plugin.py next to this file)")
    parser.add_argument("--wires", default="ttrpc,grpc", help="accepted wires, preferred first")
    args = parser.parse_args()
    plugin = (
        args.plugin.split()
        if args.plugin
        else [sys.executable, str(Path(__file__).with_name("plugin.py"))]
    )
    sys.exit(asyncio.run(run(plugin, tuple(args.wires.split(",")))))


if __name__ == "__main__":
    main()
