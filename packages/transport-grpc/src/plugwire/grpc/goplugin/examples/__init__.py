"""Bundled example plugins for go-plugin's classic contracts.

* :mod:`.kv` — ``examples/grpc``: service ``proto.KV`` (Get/Put), plugin name
  ``kv_grpc``, cookie ``BASIC_PLUGIN=hello``. Run by go-plugin's own host with
  ``KV_PLUGIN="python -m plugwire.grpc.goplugin.examples.kv"``.
* :mod:`.counter` — ``examples/bidirectional``: ``proto.Counter`` whose ``Put``
  calls back into the host's ``AddHelper.Sum`` through the broker.

The generated message and stub modules are re-exported here.
"""

from __future__ import annotations

from plugwire.core.handshake import Handshake

from ..._generated.plugwire_examples import counter_pb2, counter_pb2_grpc, kv_pb2, kv_pb2_grpc

__all__ = ["HANDSHAKE", "counter_pb2", "counter_pb2_grpc", "kv_pb2", "kv_pb2_grpc"]

#: The handshake both upstream examples use.
HANDSHAKE = Handshake("BASIC_PLUGIN", "hello", protocol_versions=(1,))
