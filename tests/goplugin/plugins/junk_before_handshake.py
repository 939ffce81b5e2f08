"""Prints a stray line on stdout before serving: the host must refuse it."""

import sys

print("hello from a careless plugin", flush=True)
sys.stdout.flush()
from plugwire.grpc.goplugin.examples.kv import main  # noqa: E402

main()
