"""Moved into ``plugwire bench drp``; this script runs that suite.

The suite: packages/transport-http/src/plugwire/http/drp/_bench.py.
Run: ``python benchmarks/drp_action.py [--quick] [--json FILE] [--plot FILE.svg]``,
the same as
``plugwire bench drp ...``. See docs/benchmarks.md for every suite and the latest figures.
"""

import sys

from plugwire.core.bench.cli import bench

if __name__ == "__main__":
    bench(["drp", *sys.argv[1:]])
