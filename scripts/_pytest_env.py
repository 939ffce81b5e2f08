"""Run pytest on the test folders of one tox env, one pytest session per folder.

Usage (from tox.ini): ``python scripts/_pytest_env.py <env> [pytest args...]``; the
folders come from ``PLUGWIRE_TEST_PATHS``. A folder not there yet is skipped. Each
family folder is its own session so that same-named modules (``conftest``,
``test_examples``) of different families never shadow each other. Each session
writes ``junit-<env>-<folder>.xml`` into the tox work dir for scripts/_summary.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

env, *args = sys.argv[1:]
declared = os.environ.get("PLUGWIRE_TEST_PATHS", "").split()
paths = [p for p in declared if Path(p).exists()]
if not paths:
    print(f"{env}: none of {declared} exists yet; nothing to run")
    sys.exit(0)
work = Path(os.environ.get("TOX_WORK_DIR", ".tox"))
status = 0
for path in paths:
    junit = work / f"junit-{env}-{Path(path).name}.xml"
    print(f"\n=== {env}: pytest {path} ===", flush=True)
    code = subprocess.call([sys.executable, "-m", "pytest", *args, f"--junitxml={junit}", path])
    if code not in (0, 5):  # 5: the folder holds no tests yet
        status = code
sys.exit(status)
