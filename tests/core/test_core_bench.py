"""plugwire.core.bench: a suite run with others (``Suite.also``), capped cold rounds, pairs.

Fake contenders (no processes): what the runner and the CLI do with several baselines
under one name, as ``plugwire bench terraform`` uses them.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

from plugwire.core.bench import BenchContext, Contender, Suite, run_suite
from plugwire.core.bench import cli as bench_cli
from plugwire.core.bench._runner import expand


class Fixed(Contender):
    """A cold-start-only contender that takes ``seconds`` each round and counts them."""

    levels = ()

    def __init__(self, name: str, seconds: float, max_cold_rounds: int | None = None) -> None:
        self.name = name
        self.seconds = seconds
        self.max_cold_rounds = max_cold_rounds
        self.rounds = 0

    async def cold_start(self, ctx: BenchContext) -> float | None:
        self.rounds += 1
        return self.seconds


def suite(name: str, made: list[Fixed], *, slow_cap: int | None = None) -> Suite:
    def contenders(ctx: BenchContext) -> list[Contender]:
        made[:] = [Fixed("base", 0.1), Fixed("ours", 0.2), Fixed("slow", 0.8, slow_cap)]
        return list(made)

    return Suite(
        name=name,
        title=f"{name} title",
        baseline="base",
        contenders=contenders,
        cold_rounds=(5, 1),
        pairs=[("ours", "base"), ("ours", "slow")],
    )


def test_a_contender_runs_at_most_its_cold_rounds() -> None:
    made: list[Fixed] = []
    result = anyio.run(lambda: run_suite(suite("s", made, slow_cap=2), quick=False))
    assert [c.rounds for c in made] == [5, 5, 2]
    assert result.contenders["slow"].cold_start_ms == pytest.approx(800)
    data = result.to_json()
    rounds = {name: c["cold_start_rounds_ms"] for name, c in data["contenders"].items()}
    assert [len(rounds[name]) for name in ("base", "ours", "slow")] == [5, 5, 2]
    assert rounds["slow"] == [pytest.approx(800)] * 2
    assert data["ratios"] == {"base": 1.0, "ours": 2.0, "slow": 8.0}
    assert data["pairs"] == {"ours / base": {"cold": 2.0}, "ours / slow": {"cold": 0.25}}


def test_quick_runs_one_round_even_when_capped_higher() -> None:
    made: list[Fixed] = []
    anyio.run(lambda: run_suite(suite("s", made, slow_cap=3), quick=True))
    assert [c.rounds for c in made] == [1, 1, 1]


def test_json_without_pairs_has_no_pairs_key() -> None:
    made: list[Fixed] = []
    plain = suite("s", made)
    plain.pairs = []
    data = anyio.run(lambda: run_suite(plain, quick=True)).to_json()
    assert "pairs" not in data and set(data) == {"suite", "contenders", "ratios"}


def groups() -> dict[str, Suite]:
    made: list[Fixed] = []
    head = suite("fam", made)
    head.also = [suite("fam-b", []), suite("fam-c", [])]
    return {"fam": head, "other": suite("other", [])}


def test_expand_lists_a_suite_and_its_companions_in_order() -> None:
    assert [s.name for s in expand(groups()["fam"])] == ["fam", "fam-b", "fam-c"]
    assert [s.name for s in expand(groups()["other"])] == ["other"]


def test_cli_runs_a_group_under_its_name_and_each_part_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_cli, "installed_suites", groups)
    runner = CliRunner()

    listed = runner.invoke(bench_cli.bench, ["--list"])
    assert listed.exit_code == 0, listed.output
    assert [line.split()[0] for line in listed.output.splitlines()] == ["fam", "other"]
    assert "; with fam-b, fam-c" in listed.output

    out = tmp_path / "fam.json"
    ran = runner.invoke(bench_cli.bench, ["fam", "--quick", "--no-progress", "--json", str(out)])
    assert ran.exit_code == 0, ran.output
    data = json.loads(out.read_text())
    assert [d["suite"] for d in data] == ["fam", "fam-b", "fam-c"]
    assert "ratio ours / slow: cold 0.25x" in ran.output

    part = tmp_path / "part.json"
    ran = runner.invoke(bench_cli.bench, ["fam-c", "--quick", "--no-progress", "--json", str(part)])
    assert ran.exit_code == 0, ran.output
    assert json.loads(part.read_text())["suite"] == "fam-c"  # one suite: one object

    every = tmp_path / "all.json"
    ran = runner.invoke(bench_cli.bench, ["all", "--quick", "--no-progress", "--json", str(every)])
    assert ran.exit_code == 0, ran.output
    assert [d["suite"] for d in json.loads(every.read_text())] == [
        "fam",
        "fam-b",
        "fam-c",
        "other",
    ]

    bad = runner.invoke(bench_cli.bench, ["nosuch"])
    assert bad.exit_code == 2 and "unknown suite 'nosuch'" in bad.output
