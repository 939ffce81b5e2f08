"""The runnable examples in docs/examples/nri work as documented."""

from __future__ import annotations

import subprocess
import sys

from nri_support import EXAMPLES


def test_runtime_example_hosts_the_plugin_example() -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "runtime_host.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "pre-installed: ['10-adjuster']"
    assert lines[1] == "adjusted env: {'ADJUSTED_BY': 'adjuster'} memory limit: 536870912"
    assert lines[2] == "plugins in order: ['10-adjuster', '20-second']"
    assert lines[3].startswith('conflict: plugins "20-second" and "10-adjuster" both tried to set')
    assert lines[-1] == "done"
