#!/usr/bin/env bash
# Build every plugwire distribution of this checkout into a wheelhouse, so that pip
# installs them on a machine without the package index having them:
#
#   bash scripts/wheelhouse.sh                 # -> ./wheelhouse
#   pip install --find-links ./wheelhouse 'plugwire[grpc]'
#
# Usage: scripts/wheelhouse.sh [OUT_DIR]   (uv is installed with pip when missing)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "${1:-$root/wheelhouse}" && cd "${1:-$root/wheelhouse}" && pwd)"
if command -v uv >/dev/null 2>&1; then uv=(uv); else
  python3 -m pip install --quiet --user uv && uv=(python3 -m uv)
fi
(cd "$root" && "${uv[@]}" build --all-packages --wheel --out-dir "$out" --quiet)
echo "wheelhouse: $out"
echo "install:    pip install --find-links '$out' 'plugwire[grpc]'   # or ttrpc, http, kube, all"
