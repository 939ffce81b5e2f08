"""Every test here is a ``fuzz`` test; the session ends with the executions per decoder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.fuzzing import EXECUTIONS

HERE = Path(__file__).parent.resolve()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).resolve().parent == HERE:
            item.add_marker(pytest.mark.fuzz)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not EXECUTIONS:
        return
    terminalreporter.section("fuzz executions per decoder")
    for name, count in sorted(EXECUTIONS.items()):
        terminalreporter.write_line(f"{name:40} {count:>8}")
    report = os.environ.get("PLUGWIRE_FUZZ_REPORT")
    if report:
        Path(report).write_text(json.dumps(dict(sorted(EXECUTIONS.items())), indent=2) + "\n")
