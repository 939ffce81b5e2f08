#!/usr/bin/env bash
# Regenerate plugwire.ttrpc's protobuf modules (messages only: ttrpc services are
# bound from descriptors at run time, see plugwire.ttrpc.service). Reproducible:
# the output depends only on the .proto files and the pinned grpcio-tools.
source "$(dirname "$0")/_bootstrap.sh"
PKG=packages/transport-ttrpc
OUT=$PKG/src/plugwire/ttrpc/_generated
mkdir -p "$OUT"
rm -f "$OUT"/*_pb2.py "$OUT"/*_pb2.pyi
"${UV[@]}" run --all-packages --group codegen python -m grpc_tools.protoc \
  -I "$PKG/protos" --python_out="$OUT" --pyi_out="$OUT" \
  "$PKG"/protos/*.proto
cat > "$OUT/__init__.py" <<'PY'
"""Generated protobuf modules (scripts/codegen_ttrpc.sh); do not edit."""
PY
echo "generated into $OUT:" && ls "$OUT"
