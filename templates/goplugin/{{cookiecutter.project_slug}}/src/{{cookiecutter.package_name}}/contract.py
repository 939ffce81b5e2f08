"""What the plugin and its hosts agree on: the handshake, the plugin name, the service.

These match hashicorp/go-plugin's ``examples/grpc`` by default, so that example's
host runs this plugin unchanged (and this project's host runs its Go plugins).
"""

from __future__ import annotations

from plugwire.core.handshake import Handshake

from .proto import kv_pb2, kv_pb2_grpc

#: The magic cookie and the protocol version(s) both sides must agree on.
HANDSHAKE = Handshake(
    "{{ cookiecutter.magic_cookie_key }}",
    "{{ cookiecutter.magic_cookie_value }}",
    protocol_versions=({{ cookiecutter.protocol_version }},),
)
#: The name the host dispenses the plugin by.
PLUGIN_KEY = "{{ cookiecutter.plugin_key }}"

__all__ = ["HANDSHAKE", "PLUGIN_KEY", "kv_pb2", "kv_pb2_grpc"]
