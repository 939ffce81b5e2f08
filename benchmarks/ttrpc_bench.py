"""Moved into ``plugwire bench ttrpc``; this script runs that suite.

The suite: packages/transport-ttrpc/src/plugwire/ttrpc/_bench.py.
Run: ``python benchmarks/ttrpc_bench.py [--quick] [--json FILE] [--plot FILE.svg]``,
the same as
``plugwire bench ttrpc ...``. See docs/benchmarks.md for every suite and the latest figures.
"""

import sys

from plugwire.core.bench.cli import bench

if __name__ == "__main__":
    bench(["ttrpc", *sys.argv[1:]])
