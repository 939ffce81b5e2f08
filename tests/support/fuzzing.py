"""The fuzz budget and execution counts shared by tests/fuzz.

CI runs a short deterministic budget (``derandomize``: the same examples every run).
A long run sets ``PLUGWIRE_FUZZ_EXAMPLES`` (examples per property; random seeds then)::

    PLUGWIRE_FUZZ_EXAMPLES=20000 uv run pytest -m fuzz tests/fuzz

Every property counts its executions in :data:`EXECUTIONS` (decoder name -> inputs
tried); ``tests/fuzz/conftest.py`` prints them at the end of the session and writes
them to ``$PLUGWIRE_FUZZ_REPORT`` (JSON) when set.
"""

from __future__ import annotations

import collections
import os

from hypothesis import HealthCheck, settings

__all__ = ["EXAMPLES", "EXECUTIONS", "LONG_RUN", "fuzz_settings", "ran"]

LONG_RUN = "PLUGWIRE_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("PLUGWIRE_FUZZ_EXAMPLES", "150"))
EXECUTIONS: collections.Counter[str] = collections.Counter()


def fuzz_settings(scale: float = 1.0) -> settings:
    """Settings for one property: ``scale`` times the budget (slow properties < 1)."""
    return settings(
        max_examples=max(10, int(EXAMPLES * scale)),
        derandomize=not LONG_RUN,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


def ran(decoder: str) -> None:
    """Count one input fed to ``decoder``."""
    EXECUTIONS[decoder] += 1
