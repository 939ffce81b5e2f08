#!/usr/bin/env bash
# The main job: install everything and run `plugwire demo`, a host that launches the
# bundled example plugins of every installed family and prints what happened.
source "$(dirname "$0")/_bootstrap.sh"
"${UV[@]}" sync --locked --all-packages --all-extras --quiet
exec "${UV[@]}" run --locked --all-packages --all-extras plugwire demo "$@"
