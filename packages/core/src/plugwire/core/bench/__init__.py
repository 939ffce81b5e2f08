"""``plugwire bench``: side-by-side benchmarks of plugwire against the peers that matter.

Each installed distribution contributes its suites through the ``plugwire.bench``
entry-point group (a :class:`Suite` each). A suite starts all its contenders (one
process tree), measures them interleaved over several rounds at 1, 16 and 64 calls in
flight, times cold starts, reads peak RSS, and divides by its baseline within the same
run. Go contenders build from the repository's ``tests/interop`` harnesses (a checkout
is needed for those; they are cached in ``~/.cache/plugwire``).
"""

from __future__ import annotations

from ._model import ContenderResult, Level, SuiteResult
from ._runner import (
    BenchContext,
    CallContender,
    Contender,
    Suite,
    Unavailable,
    drive,
    run_suite,
    run_to_end,
    wait_line,
)

__all__ = [
    "BenchContext",
    "CallContender",
    "Contender",
    "ContenderResult",
    "Level",
    "Suite",
    "SuiteResult",
    "Unavailable",
    "drive",
    "run_suite",
    "run_to_end",
    "wait_line",
]
