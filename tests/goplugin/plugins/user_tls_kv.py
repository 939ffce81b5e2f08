"""The KV plugin with a user TLS config (no AutoMTLS): PEMs from $TLS_CERT, $TLS_KEY
and the host's certificate from $TLS_PEER."""

import os

from plugwire.grpc import TLSConfig
from plugwire.grpc.goplugin import ServeConfig, serve
from plugwire.grpc.goplugin.examples import HANDSHAKE
from plugwire.grpc.goplugin.examples.kv import KVPlugin

tls = TLSConfig(
    cert_pem=os.environ["TLS_CERT"].encode(),
    key_pem=os.environ["TLS_KEY"].encode(),
    peer_roots_pem=os.environ["TLS_PEER"].encode(),
)
serve(ServeConfig(handshake=HANDSHAKE, plugins={"kv_grpc": KVPlugin()}, tls=tls))
