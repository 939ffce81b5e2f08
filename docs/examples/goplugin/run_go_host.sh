#!/usr/bin/env bash
# go-plugin's own, unmodified examples/grpc host (Go) running the Python KV plugin
# (kv/plugin.py next to this script). Works from a fresh checkout with Go >= 1.22 and a
# Python that has plugwire[grpc]:
#
#   bash docs/examples/goplugin/run_go_host.sh            # put hello world, get hello -> world
#   bash docs/examples/goplugin/run_go_host.sh put K V    # one host command (also: get K)
#
# The host is built once from the Go module proxy (github.com/hashicorp/go-plugin at
# GO_PLUGIN_VERSION, the version tests/interop/goplugin/go.mod uses) in a throwaway
# module and kept in $PLUGWIRE_CACHE (default ~/.cache/plugwire)/go-host/; Go keeps the
# downloaded modules read-only in its module cache as usual. The plugin keeps each value
# in a file kv_<key> in its working directory: a temporary directory for the demo,
# $KV_WORKDIR (default: the cache's kv-data/) for single commands. Nothing is written
# into the checkout or the module cache.
#
# Environment: PYTHON (default: python, else python3 on PATH), GO (default: go),
# GO_PLUGIN_VERSION, PLUGWIRE_CACHE, KV_WORKDIR.
set -euo pipefail

version="${GO_PLUGIN_VERSION:-v1.8.0}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
plugin="$here/kv/plugin.py"
go="${GO:-go}"
python="${PYTHON:-$(command -v python || command -v python3 || true)}"
cache="${PLUGWIRE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/plugwire}"
host="$cache/go-host/go-plugin-$version/kv-host"

die() { echo "run_go_host.sh: $*" >&2; exit 1; }
command -v "$go" >/dev/null || die "the Go toolchain ($go) is not on PATH: https://go.dev/dl/"
[ -n "$python" ] || die "no python on PATH (set PYTHON to one with plugwire[grpc])"
python="$(command -v "$python")"
"$python" -c "import plugwire.grpc.goplugin" 2>/dev/null \
  || die "$python cannot import plugwire.grpc.goplugin: install plugwire[grpc] (see README)"
[ -f "$plugin" ] || die "the plugin is missing: $plugin"

if [ ! -x "$host" ]; then
  mod="$(mktemp -d)"
  trap 'rm -rf "$mod"' EXIT
  mkdir -p "$(dirname "$host")"
  echo "building go-plugin $version examples/grpc host -> $host" >&2
  (
    cd "$mod"
    export GOWORK=off GOFLAGS=-mod=mod
    "$go" mod init plugwire.example/kvhost >/dev/null 2>&1
    "$go" get "github.com/hashicorp/go-plugin/examples/grpc@$version"
    "$go" build -o "$host.$$" github.com/hashicorp/go-plugin/examples/grpc
  )
  mv -f "$host.$$" "$host"
fi

# The host starts the plugin with `sh -c "$KV_PLUGIN"` for every command.
export KV_PROTO=grpc
KV_PLUGIN="$(printf '%q %q' "$python" "$plugin")"
export KV_PLUGIN

if [ "$#" -gt 0 ]; then
  workdir="${KV_WORKDIR:-$cache/kv-data}"
  mkdir -p "$workdir"
  cd "$workdir" && exec "$host" "$@"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work" ${mod:+"$mod"}' EXIT
cd "$work"
"$host" put hello world
got="$("$host" get hello)"
echo "$got"
[ "$got" = world ] || die "expected 'world' from the host's get, saw: $got"
