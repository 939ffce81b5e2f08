"""Moved into ``plugwire bench kube``; this script runs that suite.

The suite: packages/kube/src/plugwire/kube/_bench.py.
Run: ``python benchmarks/kube_roundtrip.py [--quick] [--json FILE] [--plot FILE.svg]``,
the same as
``plugwire bench kube ...``. See docs/benchmarks.md for every suite and the latest figures.
"""

import sys

from plugwire.core.bench.cli import bench

if __name__ == "__main__":
    bench(["kube", *sys.argv[1:]])
