"""Run pytest on the test folders of one tox env, skipping folders not there yet.

Usage (from tox.ini): ``python scripts/_pytest_env.py <env> [pytest args...]``;
the folders come from ``PLUGWIRE_TEST_PATHS``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

env, *args = sys.argv[1:]
paths = [p for p in os.environ.get("PLUGWIRE_TEST_PATHS", "").split() if Path(p).exists()]
if not paths:
    print(f"{env}: none of {os.environ.get('PLUGWIRE_TEST_PATHS')!r} exists yet; nothing to run")
    sys.exit(0)
junit = Path(os.environ.get("TOX_WORK_DIR", ".tox")) / f"junit-{env}.xml"
sys.exit(pytest.main([*args, f"--junitxml={junit}", *paths]))
