"""Moved into ``plugwire bench nri``; this script runs that suite.

The suite: packages/transport-ttrpc/src/plugwire/ttrpc/nri/_bench.py.
Run: ``python benchmarks/nri_bench.py [--quick] [--json FILE] [--plot FILE.svg]``,
the same as
``plugwire bench nri ...``. See docs/benchmarks.md for every suite and the latest figures.
"""

import sys

from plugwire.core.bench.cli import bench

if __name__ == "__main__":
    bench(["nri", *sys.argv[1:]])
