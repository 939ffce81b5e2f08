#!/usr/bin/env bash
# The whole suite: lint, types and the tox matrix (one env per transport). Builds the
# Go interop harnesses into ~/.cache/plugwire on first use. Extra args go to pytest.
source "$(dirname "$0")/_bootstrap.sh"
started=$(date +%s)
rm -f .tox/junit-*.xml
status=0
"${UV[@]}" tool run --quiet --with 'tox-uv>=1.16' 'tox>=4.22' run -- "$@" || status=$?
python3 scripts/_summary.py .tox || status=$?
echo "suite took $(( $(date +%s) - started ))s"
exit "$status"
