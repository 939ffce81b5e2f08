"""A plugwire host for go-plugin KV plugins (Go or Python).

    python docs/examples/goplugin/kv/host.py put hello world
    python docs/examples/goplugin/kv/host.py get hello
    python docs/examples/goplugin/kv/host.py --plugin ./plugin-go-grpc get hello

Without ``--plugin`` it runs plugin.py next to this file. It launches the plugin with
AutoMTLS, dispenses ``kv_grpc``, makes the call, prints what the plugin printed and
the result, then closes the plugin (Shutdown RPC, 2 s grace, SIGTERM, SIGKILL).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from plugwire.core.errors import PlugwireError
from plugwire.core.handshake import Handshake
from plugwire.grpc.goplugin import ClientConfig, PluginClient, ServicePlugin
from plugwire.grpc.goplugin.examples import kv_pb2, kv_pb2_grpc


async def run(plugin: list[str], op: str, key: str, value: str | None) -> int:
    config = ClientConfig(
        handshake=Handshake("BASIC_PLUGIN", "hello", protocol_versions=(1,)),
        plugins={"kv_grpc": ServicePlugin(stub=kv_pb2_grpc.KVStub)},
        cmd=plugin,
        auto_mtls=True,
        sync_stdout=sys.stdout.buffer,  # what the plugin prints shows up here
        start_timeout=30,
    )
    try:
        async with PluginClient(config) as client:
            kv = client.dispense("kv_grpc")
            if op == "put":
                assert value is not None
                await kv.Put(kv_pb2.PutRequest(key=key, value=value.encode()))
                await asyncio.sleep(0.1)  # let the plugin's output arrive
            else:
                reply = await kv.Get(kv_pb2.GetRequest(key=key))
                print(reply.value.decode(errors="replace"))
    except PlugwireError as err:  # typed: RemoteError, PluginExitedError, AnnounceError...
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugin", help="plugin command (default: plugin.py next to this file)")
    parser.add_argument("op", choices=["get", "put"])
    parser.add_argument("key")
    parser.add_argument("value", nargs="?")
    args = parser.parse_args()
    plugin = (
        args.plugin.split()
        if args.plugin
        else [sys.executable, str(Path(__file__).with_name("plugin.py"))]
    )
    # The plugin's log lines become records on "plugwire.plugin.<name>".
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(run(plugin, args.op, args.key, args.value)))


if __name__ == "__main__":
    main()
