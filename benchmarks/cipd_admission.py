"""Moved into ``plugwire bench cipd``; this script runs that suite.

The suite: packages/transport-grpc/src/plugwire/grpc/cipd/_bench.py.
Run: ``python benchmarks/cipd_admission.py [--quick] [--json FILE] [--plot FILE.svg]``,
the same as
``plugwire bench cipd ...``. See docs/benchmarks.md for every suite and the latest figures.
"""

import sys

from plugwire.core.bench.cli import bench

if __name__ == "__main__":
    bench(["cipd", *sys.argv[1:]])
