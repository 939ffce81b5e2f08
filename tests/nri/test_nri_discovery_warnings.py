"""Issue 20 item 5: the NRI runtime says why a pre-installed plugin is not started."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from plugwire.ttrpc.nri import Runtime
from plugwire.ttrpc.nri.discovery import discover

LOGGER = "plugwire.ttrpc.nri.discovery"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelname == "WARNING"]


def test_non_executable_plugin_file_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = tmp_path / "10-good"
    good.write_text("#!/bin/sh\n")
    good.chmod(0o755)
    lazy = tmp_path / "20-lazy"
    lazy.write_text("#!/bin/sh\n")
    lazy.chmod(0o644)
    (tmp_path / "30-dir").mkdir()  # directories are not plugins: no warning
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        found = discover(tmp_path)
    assert [p.name for p in found] == ["10-good"]
    (message,) = _warnings(caplog)
    assert str(lazy) in message and "not executable" in message and "-rw-r--r--" in message


def test_missing_plugin_path_is_a_warning_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "no-such-dir"
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert discover(missing) == []
    (message,) = _warnings(caplog)
    assert str(missing) in message and "does not exist" in message


def test_no_warning_without_a_plugin_path(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert discover(None) == []
    assert _warnings(caplog) == []


@pytest.mark.anyio
async def test_runtime_start_logs_both_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    lazy = plugins / "10-lazy"
    lazy.write_text("#!/bin/sh\nexit 0\n")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        async with Runtime("host", "0", socket_path=None, listen=False, plugin_path=plugins):
            pass
        async with Runtime(
            "host", "0", socket_path=None, listen=False, plugin_path=tmp_path / "gone"
        ):
            pass
    messages = _warnings(caplog)
    assert any(str(lazy) in m and "not executable" in m for m in messages), messages
    assert any(str(tmp_path / "gone") in m for m in messages), messages
