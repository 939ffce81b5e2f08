"""Moved into ``plugwire bench tasks``; this script runs that suite.

The suite: packages/core/src/plugwire/core/tasks/_bench.py.
Run: ``python benchmarks/tasks_bench.py [--quick] [--json FILE] [--plot FILE.svg]``,
the same as
``plugwire bench tasks ...``. See docs/benchmarks.md for every suite and the latest figures.
"""

import sys

from plugwire.core.bench.cli import bench

if __name__ == "__main__":
    bench(["tasks", *sys.argv[1:]])
