"""The KV plugin serving only the app protocol versions in $KV_VERSIONS (e.g. "2,3"),
over $NETWORK (unix, the default, or tcp)."""

import os

from plugwire.core.handshake import Handshake
from plugwire.grpc.goplugin import ServeConfig, serve
from plugwire.grpc.goplugin.examples.kv import KVPlugin

versions = tuple(int(v) for v in os.environ.get("KV_VERSIONS", "1").split(","))
serve(
    ServeConfig(
        handshake=Handshake("BASIC_PLUGIN", "hello", protocol_versions=versions),
        plugins={"kv_grpc": KVPlugin()},
        network=os.environ.get("NETWORK", "unix"),
    )
)
