from __future__ import annotations

import json

from click.testing import CliRunner

from plugwire.core.cli import main


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert "plugwire, version 0.1.0" in result.output


def test_transports_lists_inproc() -> None:
    result = CliRunner().invoke(main, ["transports"])
    assert result.exit_code == 0
    assert any(
        line.split()[:1] == ["inproc"] and line.endswith("ok")
        for line in result.output.splitlines()
    )


def test_core_demo_runs_the_example_plugin() -> None:
    result = CliRunner().invoke(main, ["demo", "--family", "core", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    checks = {row["check"]: row for row in rows}
    assert set(checks) == {
        "launch + handshake",
        "call over stdio",
        "stderr hclog -> logging",
        "wrong cookie refused",
    }
    assert all(row["ok"] for row in rows)
    assert "negotiated v2" in checks["launch + handshake"]["detail"]


def test_demo_unknown_family_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["demo", "--family", "nope"])
    assert result.exit_code == 2
    assert "unknown families" in result.output
