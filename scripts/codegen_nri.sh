#!/usr/bin/env bash
# Regenerate plugwire.ttrpc.nri._generated from containerd/nri's pkg/api/api.proto.
#
# The proto is read from the Go module cache at the version pinned in
# tests/interop/nri/go.mod (downloaded through the Go module proxy); it is never
# committed. Only messages are generated (--python_out/--pyi_out): the ttrpc
# package must not depend on grpcio. The descriptor keeps upstream's import path
# (github.com/containerd/nri/pkg/api/api.proto) so it cannot clash with another
# "api.proto" in the default descriptor pool.
#
#   bash scripts/codegen_nri.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/packages/transport-ttrpc/src/plugwire/ttrpc/nri/_generated"
HARNESS="$ROOT/tests/interop/nri"
MODULE=github.com/containerd/nri

cd "$HARNESS"
VERSION="$(go list -m -f '{{.Version}}' "$MODULE")"
go mod download "$MODULE@$VERSION"
DIR="$(go list -m -f '{{.Dir}}' "$MODULE")"

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/in/$MODULE/pkg/api" "$STAGE/out"
cp "$DIR/pkg/api/api.proto" "$STAGE/in/$MODULE/pkg/api/api.proto"

cd "$ROOT"
uv run --no-sync python -m grpc_tools.protoc -I "$STAGE/in" \
  --python_out="$STAGE/out" --pyi_out="$STAGE/out" \
  "$STAGE/in/$MODULE/pkg/api/api.proto"

mkdir -p "$OUT"
# protoc turns the dots of "github.com" into directories.
GEN="$STAGE/out/${MODULE//./\/}/pkg/api"
cp "$GEN/api_pb2.py" "$OUT/api_pb2.py"
# upstream's enum Field has a value named None, which is not a valid stub name.
sed -E 's/^([[:space:]]*)None: /\1# None (enum value, not expressible in a stub): /' \
  "$GEN/api_pb2.pyi" > "$OUT/api_pb2.pyi"
cat > "$OUT/__init__.py" <<PY
"""Generated from $MODULE $VERSION pkg/api/api.proto by scripts/codegen_nri.sh. Do not edit."""

NRI_MODULE_VERSION = "$VERSION"
PY
echo "generated $OUT from $MODULE $VERSION"
