"""Moved into ``plugwire bench goplugin``; this script runs that suite.

The suite: packages/transport-grpc/src/plugwire/grpc/goplugin/_bench.py.
Run: ``python benchmarks/goplugin_bench.py [--quick] [--json FILE] [--plot FILE.svg]``,
the same as
``plugwire bench goplugin ...``. See docs/benchmarks.md for every suite and the latest figures.
"""

import sys

from plugwire.core.bench.cli import bench

if __name__ == "__main__":
    bench(["goplugin", *sys.argv[1:]])
