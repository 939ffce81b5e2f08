"""A plugwire KV plugin packaged for Kubernetes: go-plugin's gRPC wire on TCP.

In a pod the host cannot reach a unix socket, so the plugin serves TCP on the
container port (``PLUGIN_MIN_PORT``/``PLUGIN_MAX_PORT``, which plugwire.kube pins to
it); the announce line and its hclog lines go to the container log, where
plugwire.kube reads them. Everything else — cookie check, version negotiation,
AutoMTLS, health, Shutdown, the ``proto.KV`` service — is plugwire.grpc's
``examples.kv`` plugin unchanged. Container command: ``python kv_plugin.py``
(``KV_DIR`` chooses where values are stored; default: the working directory).
"""

from __future__ import annotations

from plugwire.grpc.goplugin import serve
from plugwire.grpc.goplugin.examples import HANDSHAKE
from plugwire.grpc.goplugin.examples.kv import KVPlugin

if __name__ == "__main__":
    serve(handshake=HANDSHAKE, plugins={"kv_grpc": KVPlugin()}, network="tcp")
