"""Suite-wide fixtures and rules.

* Every test under ``tests/<family>/`` gets its family marker automatically.
* ``anyio_backend`` runs async tests on asyncio and trio unless a module narrows it.
* On CI (``CI`` set) an ``interop`` test that skips is turned into a failure: a
  real-peer test that does not run proves nothing.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

FAMILY_DIRS = {
    "goplugin": "goplugin",
    "cipd": "cipd",
    "ttrpc": "ttrpc",
    "nri": "nri",
    "drp": "drp",
    "tasks": "tasks",
    "kube": "kube",
}

TESTS = Path(__file__).parent


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            rel = Path(str(item.fspath)).resolve().relative_to(TESTS.resolve())
        except ValueError:
            continue
        top = rel.parts[0] if rel.parts else ""
        marker = FAMILY_DIRS.get(top)
        if marker:
            item.add_marker(getattr(pytest.mark, marker))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and os.environ.get("CI") and item.get_closest_marker("interop"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = (
            f"interop test skipped on CI, which must run every real-peer test: {reason}"
        )


#: test id -> plugins it left live in plugwire.core.managed after its teardown.
_LEFT_LIVE: dict[str, list[str]] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    from plugwire.core import managed

    before = {id(p) for p in managed.live_plugins()}
    yield
    left = [p for p in managed.live_plugins() if id(p) not in before]
    if left:
        _LEFT_LIVE[item.nodeid] = [repr(p) for p in left]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A tox env whose folders hold no tests yet is not a failure of the suite.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK
    # No plugin handle may outlive the session: managed's registry must be empty.
    from plugwire.core import managed

    live = managed.live_plugins()
    if live:
        leakers = "; ".join(f"{test}: {', '.join(ps)}" for test, ps in _LEFT_LIVE.items())
        session.config.get_terminal_writer().line(
            f"plugin handles still live at session end: {live!r} (left by {leakers})", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
