"""``plugwire bench terraform``'s contenders do the work they time.

The suite's figures are only meaningful if each timed command planned or applied every
resource, and if each apply round started from an empty state: these tests run the
contenders (real terraform CLI, the Go framework provider, plugwire's example provider,
pyvider when a Python with it is named) once or twice, outside any timing, and read what
the commands printed and left in the state. The whole ``plugwire bench terraform`` run
(quick) is in tests/e2e/test_e2e_bench.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from terraform_support import pyvider_python

from plugwire.core.bench import BenchContext, run_suite
from plugwire.core.bench._runner import expand
from plugwire.grpc.terraform import _bench
from plugwire.grpc.terraform._bench import (
    BASELINE,
    DEPENDENCIES,
    EXAMPLE,
    HANDSHAKE_FIRST,
    HANDSHAKE_FORKED,
    IMPORT_GRPC,
    PLUGWIRE,
    PLUGWIRE_NOFORK,
    PYVIDER,
    PYVIDER_PYTHON,
    SUITE,
    TerraformApply,
    TerraformCommand,
    TerraformPlan,
    config,
)

T = TypeVar("T")

interop = pytest.mark.interop


def run(body: Callable[[BenchContext], Awaitable[T]], tmp_path: Path) -> T:
    """``body(ctx)`` in a fresh bench context (scratch directory ``tmp_path``)."""

    async def main() -> T:
        async with contextlib.AsyncExitStack() as stack:
            return await body(BenchContext(quick=True, tmp=tmp_path, stack=stack))

    return anyio.run(main)


def state(contender: TerraformCommand) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((contender.workspace.dir / "terraform.tfstate").read_text())
    return data


def instances(contender: TerraformCommand) -> list[dict[str, Any]]:
    resources = state(contender)["resources"]
    assert [r["type"] for r in resources] == ["example_thing"] * len(resources)
    return [i["attributes"] for r in resources for i in r["instances"]]


def test_the_suites_run_together_under_terraform() -> None:
    suites = expand(SUITE)
    assert [s.name for s in suites] == [
        "terraform",
        "terraform-plan-50",
        "terraform-apply-1",
        "terraform-apply-50",
        "terraform-launch",
    ]
    for suite in suites[:4]:
        assert suite.baseline == BASELINE
        assert suite.pairs == [
            (PLUGWIRE, BASELINE),
            (PLUGWIRE, PYVIDER),
            (PLUGWIRE_NOFORK, BASELINE),
        ]
        ctx = BenchContext(quick=True, tmp=Path("/nonexistent"), stack=contextlib.AsyncExitStack())
        contenders = {c.name: c for c in suite.contenders(ctx)}
        assert set(contenders) == {BASELINE, PLUGWIRE, PYVIDER, PLUGWIRE_NOFORK}
        assert contenders[PLUGWIRE_NOFORK].env == {"PLUGWIRE_FORKSERVER": "0"}  # type: ignore[attr-defined]
        assert contenders[PLUGWIRE].env == {}  # type: ignore[attr-defined]
    assert suites[4].baseline == IMPORT_GRPC
    assert suites[4].pairs == [
        (HANDSHAKE_FIRST, IMPORT_GRPC),
        (HANDSHAKE_FORKED, IMPORT_GRPC),
        (DEPENDENCIES, IMPORT_GRPC),
        (HANDSHAKE_FIRST, DEPENDENCIES),
    ]


def test_config_of_fifty_is_one_counted_block() -> None:
    assert 'name = "a"' in config(1) and "count" not in config(1)
    fifty = config(50)
    assert "count = 50" in fifty and "${count.index}" in fifty


@interop
@pytest.mark.parametrize(("name", "provider"), [(BASELINE, None), (PLUGWIRE, EXAMPLE)])
def test_plan_of_fifty_plans_fifty(name: str, provider: list[str] | None, tmp_path: Path) -> None:
    async def body(ctx: BenchContext) -> tuple[TerraformPlan, float]:
        plan = TerraformPlan(name, provider, count=50)
        await plan.start(ctx)  # plans once and checks the summary
        return plan, await plan.cold_start(ctx)

    plan, seconds = run(body, tmp_path)
    assert seconds > 0
    out = "\n".join(plan.output)
    assert "Plan: 50 to add, 0 to change, 0 to destroy." in out
    created = {line.strip() for line in plan.output if line.strip().endswith("will be created")}
    assert created == {f"# example_thing.a[{i}] will be created" for i in range(50)}
    assert not (plan.workspace.dir / "terraform.tfstate").exists()  # a plan writes no state


@interop
@pytest.mark.parametrize(("name", "provider"), [(BASELINE, None), (PLUGWIRE, EXAMPLE)])
def test_apply_of_fifty_applies_fifty_from_an_empty_state_each_round(
    name: str, provider: list[str] | None, tmp_path: Path
) -> None:
    async def body(ctx: BenchContext) -> tuple[TerraformApply, list[str], list[str]]:
        apply = TerraformApply(name, provider, count=50)
        await apply.start(ctx)
        first = [i["id"] for i in instances(apply)]
        # Round two: had the state been kept, terraform would apply nothing ("0 added").
        await apply.cold_start(ctx)
        return apply, first, [i["id"] for i in instances(apply)]

    apply, first, second = run(body, tmp_path)
    want = sorted(f"thing-a-{i}" for i in range(50))
    assert sorted(first) == want and sorted(second) == want
    assert any(
        "Apply complete! Resources: 50 added, 0 changed, 0 destroyed." in line
        for line in apply.output
    )
    assert all(i["created"] and i["size"] == 1 for i in instances(apply))


@interop
def test_apply_round_on_a_kept_state_fails_the_check(tmp_path: Path) -> None:
    """The per-round check catches a round that did not create the resources."""

    class KeepState(TerraformApply):
        def prepare(self) -> None:  # the state of the previous round stays
            pass

    async def body(ctx: BenchContext) -> None:
        apply = KeepState(PLUGWIRE, EXAMPLE, count=1)
        await apply.start(ctx)
        await apply.cold_start(ctx)

    with pytest.raises(RuntimeError, match=r"did not print 'Apply complete! Resources: 1 added"):
        run(body, tmp_path)


@interop
def test_launch_suite_measures_the_handshake_and_the_grpc_import(tmp_path: Path) -> None:
    launch = expand(SUITE)[-1]
    result = anyio.run(lambda: run_suite(launch, quick=True))
    assert not result.skipped, result.skipped
    assert set(result.contenders) == {HANDSHAKE_FIRST, HANDSHAKE_FORKED, IMPORT_GRPC, DEPENDENCIES}
    for figures in result.contenders.values():
        assert figures.cold_start_ms is not None and figures.cold_start_ms > 0
    data = result.to_json()
    assert data["ratios"][IMPORT_GRPC] == 1.0
    for handshake in (HANDSHAKE_FIRST, HANDSHAKE_FORKED):
        assert data["pairs"][f"{handshake} / {IMPORT_GRPC}"]["cold"] == pytest.approx(
            data["ratios"][handshake], rel=1e-2
        )


def _pyvider_python() -> str:
    """``PLUGWIRE_BENCH_PYVIDER_PYTHON``, else the harness's cached pyvider venv
    (installed from PyPI on first use: never skipped)."""
    python = os.environ.get(PYVIDER_PYTHON) or str(pyvider_python())
    probe = subprocess.run([python, "-c", "import pyvider"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.fail(f"{python} cannot import pyvider: {probe.stderr[-500:]!r}")
    return python


@pytest.mark.parametrize("command", [TerraformPlan, TerraformApply])
def test_pyvider_plans_and_applies_fifty(
    command: type[TerraformCommand], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PYVIDER_PYTHON, _pyvider_python())

    async def body(ctx: BenchContext) -> TerraformCommand:
        contender = command(PYVIDER, count=50, pyvider=True, max_cold_rounds=4)
        await contender.start(ctx)  # runs once, checks the summary
        return contender

    contender = run(body, tmp_path)
    assert _bench._pyvider_command()[0] == os.environ[PYVIDER_PYTHON]
    if command is TerraformApply:
        got = instances(contender)
        assert sorted(i["id"] for i in got) == sorted(f"thing-a-{i}" for i in range(50))
        assert all(i["created"].endswith("Z") for i in got)
    else:
        assert any("Plan: 50 to add, 0 to change" in line for line in contender.output)


_UNCOMPILED = """
import importlib, importlib.util, os, sys
importlib.import_module(sys.argv[1])
from plugwire.grpc.terraform.serving import preload
preload({"PLUGIN_PROTOCOL_VERSIONS": "6"})
for module in list(sys.modules.values()):
    path = getattr(module, "__file__", None) or ""
    if path.endswith(".py") and not os.path.exists(importlib.util.cache_from_source(path)):
        print(module.__name__)
"""


def test_the_bench_compiles_every_module_a_launch_imports() -> None:
    """A module left without bytecode is compiled from source at each timed launch
    (``PYTHONDONTWRITEBYTECODE``): ``typing_extensions`` alone added ~18 ms to each
    launch, and pyvider's site-packages were compiled whole."""
    _bench._compile_bytecode()
    found = subprocess.run(
        [sys.executable, "-c", _UNCOMPILED, "plugwire.grpc.terraform.examples.thing"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.split() == [], found.stdout


def test_the_bench_launches_the_example_by_its_console_script() -> None:
    """Users start a provider by its console script, never through ``python -m``
    (``runpy``) or a shell wrapper: the suites time the example the same way."""
    assert Path(EXAMPLE[0]).name == _bench.EXAMPLE_SCRIPT, EXAMPLE
    assert [str(Path(sys.executable).with_name(_bench.EXAMPLE_SCRIPT))] == EXAMPLE
    plan = _bench.TerraformPlan(PLUGWIRE, EXAMPLE)
    ctx = BenchContext(quick=True, tmp=Path("/nonexistent"), stack=contextlib.AsyncExitStack())
    ctx.shared["bytecode:self"] = True  # compiled already (another test checks that)
    provider = anyio.run(plan._provider, ctx)
    assert provider == Path(EXAMPLE[0])  # an executable: Terraform runs it directly


def test_the_dependency_floor_imports_nothing_a_launch_does_not() -> None:
    """The floor row is honest: every module its import loads, a provider launch loads
    too (before serving), so plugwire's share is the launch minus the floor."""
    probe = "import json, sys; {code}; print(json.dumps(sorted(sys.modules)))"
    launch = (
        "import plugwire.grpc.terraform.examples.thing._provider; "
        "from plugwire.grpc.terraform.serving import preload; preload(); "
        "from plugwire.grpc import mtls; mtls.generate_cert(curve=mtls.PLUGIN_CURVE)"
    )

    def modules(code: str) -> set[str]:
        out = subprocess.run(
            [sys.executable, "-c", probe.format(code=code)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PLUGIN_PROTOCOL_VERSIONS": "5,6"},
        ).stdout
        return set(json.loads(out))

    floor = modules(_bench.DEPENDENCY_IMPORTS)
    assert {"grpc", "attrs", "msgpack", "google.protobuf.descriptor_pool"} <= floor
    assert "cryptography.hazmat.primitives.asymmetric.ec" in floor
    assert floor - modules(launch) == set()
