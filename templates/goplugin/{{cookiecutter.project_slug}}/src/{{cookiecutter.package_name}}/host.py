"""A go-plugin host for KV plugins, on plugwire: ``{{ cookiecutter.project_slug }}-host``.

    {{ cookiecutter.project_slug }}-host put hello world
    {{ cookiecutter.project_slug }}-host get hello
    {{ cookiecutter.project_slug }}-host --plugin ./kv-go-grpc get hello   # any KV plugin, Go too

It launches the plugin (by default this project's, with the same Python) with
AutoMTLS, dispenses it, makes one call, prints what the plugin printed and the
result, then stops the plugin. ``KV_DIR`` is passed on to the plugin.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import sys

from plugwire.core.errors import PlugwireError
from plugwire.grpc.goplugin import ClientConfig, PluginClient, ServicePlugin

from .contract import HANDSHAKE, PLUGIN_KEY, kv_pb2, kv_pb2_grpc


async def call(plugin: list[str], op: str, key: str, value: str | None) -> int:
    env = {"KV_DIR": os.environ["KV_DIR"]} if os.environ.get("KV_DIR") else {}
    config = ClientConfig(
        handshake=HANDSHAKE,
        plugins={PLUGIN_KEY: ServicePlugin(stub=kv_pb2_grpc.KVStub)},
        cmd=plugin,
        env=env,
        auto_mtls=True,
        sync_stdout=sys.stdout.buffer,  # what the plugin prints shows up here
        start_timeout=30,
    )
    try:
        async with PluginClient(config) as client:
            kv = client.dispense(PLUGIN_KEY)
            if op == "put":
                await kv.Put(kv_pb2.PutRequest(key=key, value=(value or "").encode()))
                await asyncio.sleep(0.2)  # let the plugin's output arrive
            else:
                reply = await kv.Get(kv_pb2.GetRequest(key=key))
                print(reply.value.decode(errors="replace"), flush=True)
    except PlugwireError as err:  # typed: RemoteError, PluginExitedError, HandshakeError...
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description="Call a go-plugin KV plugin once.")
    parser.add_argument("--plugin", help="plugin command line (default: this project's plugin)")
    parser.add_argument("op", choices=["get", "put"])
    parser.add_argument("key")
    parser.add_argument("value", nargs="?")
    args = parser.parse_args()
    if args.op == "put" and args.value is None:
        parser.error("put needs a value")
    plugin = shlex.split(args.plugin) if args.plugin else [sys.executable, "-m", __package__]
    # The plugin's log lines become records on the logger "plugwire.plugin.<name>".
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(call(plugin, args.op, args.key, args.value)))
