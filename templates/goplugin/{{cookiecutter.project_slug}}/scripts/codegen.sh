#!/usr/bin/env bash
# Regenerate the protobuf/gRPC modules from proto/kv.proto (needs grpcio-tools:
# `pip install grpcio-tools` or `uv sync --group codegen`).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="src/{{ cookiecutter.package_name }}/proto"
python -m grpc_tools.protoc -I proto --python_out="$OUT" --pyi_out="$OUT" --grpc_python_out="$OUT" proto/kv.proto
# The generated stub imports its messages as a top-level module: make it package-relative.
sed -i.bak 's/^import kv_pb2 as kv__pb2$/from . import kv_pb2 as kv__pb2/' "$OUT/kv_pb2_grpc.py"
rm -f "$OUT/kv_pb2_grpc.py.bak"
