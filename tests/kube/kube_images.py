"""Image names the kwok node's pod runtime maps to local binaries (see conftest.py)."""

#: tests/interop/kube/cmd/kvplugin: go-plugin's KV example served on TCP.
KV_IMAGE = "plugwire.test/kvplugin:1"
#: upstream go-plugin examples/grpc/plugin-go-grpc (listens on a unix socket).
UPSTREAM_KV_IMAGE = "plugwire.test/go-plugin-kv:1"
#: docs/examples/kube/kv_plugin.py: plugwire.grpc's KV example plugin served on TCP.
PY_KV_IMAGE = "plugwire.test/kv-python:1"
