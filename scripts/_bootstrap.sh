# Sourced by scripts/*.sh: makes sure uv exists (pip-installs it when missing) and
# sets $UV to a command that runs it. Needs only python3 >= 3.11 with pip.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if command -v uv >/dev/null 2>&1; then
  UV=(uv)
else
  if ! python3 -m uv --version >/dev/null 2>&1; then
    echo "bootstrap: installing uv with pip" >&2
    python3 -m pip install --quiet --disable-pip-version-check uv
  fi
  UV=(python3 -m uv)
fi
export UV_LINK_MODE="${UV_LINK_MODE:-copy}"
