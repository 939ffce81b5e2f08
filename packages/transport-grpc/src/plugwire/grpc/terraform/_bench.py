"""``plugwire bench terraform``: the real terraform CLI planning one resource, per provider.

Each contender times the whole command ``terraform plan`` (wall time: the CLI starts,
launches the provider through dev overrides, handshakes, fetches the schema, validates,
plans one ``example_thing`` with ``name = "a"``, stops the provider, exits) over several
rounds; the median is the figure. Providers of the same shape:

* the Go terraform-plugin-framework provider ``terraform-provider-example``
  (tests/interop/terraform, the baseline);
* plugwire's example provider (``python -m plugwire.grpc.terraform.examples.thing``);
* pyvider (PyPI) serving the same resource (``_bench_pyvider.py``), when pyvider is
  importable here or ``PLUGWIRE_BENCH_PYVIDER_PYTHON`` names a Python that has it
  (pyvider is not a plugwire dependency).

Besides, launch -> handshake: plugwire's example provider started with Terraform's
handshake and AutoMTLS by plugwire's go-plugin client (entered, i.e. the handshake line
read and the TLS channel up), against ``python -c 'import grpc'``.

The terraform CLI and the Go provider are built by the test harness
(tests/terraform/terraform_support.py, cached in ~/.cache/plugwire): a repository
checkout is needed (or ``PLUGWIRE_SOURCE``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio

from plugwire.core.bench import BenchContext, Contender, Suite, Unavailable, run_to_end
from plugwire.core.bench._runner import source_root
from plugwire.core.handshake import Handshake
from plugwire.core.process import PluginProcess
from plugwire.grpc.goplugin import ClientConfig, GrpcPlugin, PluginClient

from .serving import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE

__all__ = ["SUITE"]

EXAMPLE = [sys.executable, "-m", "plugwire.grpc.terraform.examples.thing"]
BASELINE = "Go provider (terraform-plugin-framework)"
PLUGWIRE = "plugwire example provider"
PYVIDER = "pyvider provider"
HANDSHAKE = "plugwire provider launch -> handshake (AutoMTLS)"
IMPORT_GRPC = "python -c 'import grpc'"

CONFIG = (
    'terraform {\n  required_providers {\n    example = { source = "plugwire/example" }\n  }\n}\n'
    'resource "example_thing" "a" {\n  name = "a"\n}\n'
)

_support: ModuleType | None = None


def _terraform_support() -> ModuleType:
    """tests/terraform/terraform_support.py of the checkout (it imports tests/support)."""
    global _support
    if _support is None:
        root = source_root()
        path = None if root is None else root / "tests" / "terraform" / "terraform_support.py"
        if root is None or path is None or not path.is_file():
            raise Unavailable(
                "the terraform CLI and the Go provider build from a repository checkout "
                "(tests/terraform): run from one, or set PLUGWIRE_SOURCE to it"
            )
        if str(root / "tests") not in sys.path:
            sys.path.insert(0, str(root / "tests"))
        spec = importlib.util.spec_from_file_location("_plugwire_bench_terraform_support", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
        _support = module
    return _support


async def _built(ctx: BenchContext, what: str) -> Path:
    """``terraform_binary`` or ``go_provider_binary`` (built once per run, then cached)."""
    if what not in ctx.shared:
        support = _terraform_support()
        try:
            ctx.shared[what] = Path(await anyio.to_thread.run_sync(getattr(support, what)))
        except Exception as exc:
            raise Unavailable(f"{what}: the Go build failed: {exc}") from exc
    path: Path = ctx.shared[what]
    return path


class TerraformPlan(Contender):
    """``terraform plan`` of the one-resource config with one provider, timed whole."""

    levels = ()

    def __init__(self, name: str, provider: Sequence[str] | None = None) -> None:
        self.name = name
        self.provider = provider  # None: the Go provider
        self.workspace: Any = None
        self.cli: Path | None = None

    async def _provider(self, ctx: BenchContext) -> Path | list[str]:
        if self.provider is None:
            return await _built(ctx, "go_provider_binary")
        return list(self.provider)

    async def start(self, ctx: BenchContext) -> None:
        support = _terraform_support()
        self.cli = await _built(ctx, "terraform_binary")
        root = ctx.path(f"tf-{abs(hash(self.name)):x}")
        self.workspace = support.Workspace(
            self.cli, root, {support.EXAMPLE_SOURCE: await self._provider(ctx)}
        )
        self.workspace.write(CONFIG)
        lines = await self._plan()  # once: it must plan the resource
        if not any("example_thing.a will be created" in line for line in lines):
            raise RuntimeError(
                f"{self.name}: terraform plan did not plan example_thing.a: {lines[-10:]}"
            )

    async def _plan(self) -> list[str]:
        ws = self.workspace
        argv = [str(self.cli), f"-chdir={ws.dir}", "plan", "-input=false", "-no-color"]
        lines: list[str] = []
        async with PluginProcess(argv, env=ws.env, name="terraform-plan") as proc:
            with anyio.fail_after(180):
                while (line := await proc.readline_stdout()) is not None:
                    lines.append(line)
                code = await proc.wait()
            if code != 0:
                raise RuntimeError(
                    f"{self.name}: terraform plan exited {code}: "
                    + " | ".join([*lines[-5:], *proc.stderr_tail[-5:]])
                )
        return lines

    async def cold_start(self, ctx: BenchContext) -> float | None:
        t0 = time.perf_counter()
        await self._plan()
        return time.perf_counter() - t0


class _Provider(GrpcPlugin):
    def grpc_client(self, broker: Any, channel: Any) -> Any:
        return channel


class PlugwireHandshake(Contender):
    """plugwire's example provider launched as Terraform does (cookie, protocol 6,
    AutoMTLS) by plugwire's go-plugin client: launch to the handshake done."""

    name = HANDSHAKE
    levels = ()

    def _config(self) -> ClientConfig:
        return ClientConfig(
            handshake=Handshake(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, (6,)),
            versioned_plugins={6: {"provider": _Provider()}},
            cmd=list(EXAMPLE),
            auto_mtls=True,
            start_timeout=60,
        )

    async def start(self, ctx: BenchContext) -> None:
        async with PluginClient(self._config()) as client:
            if client.negotiated_version != 6:
                raise RuntimeError(f"{self.name}: negotiated {client.negotiated_version}, not 6")

    async def cold_start(self, ctx: BenchContext) -> float | None:
        t0 = time.perf_counter()
        async with PluginClient(self._config()):
            seconds = time.perf_counter() - t0
        return seconds


class ImportGrpc(Contender):
    """``python -c 'import grpc'``: the floor of any Python gRPC provider's start."""

    name = IMPORT_GRPC
    levels = ()

    async def cold_start(self, ctx: BenchContext) -> float | None:
        t0 = time.perf_counter()
        await run_to_end([sys.executable, "-c", "import grpc"], name="import-grpc")
        return time.perf_counter() - t0


PYVIDER_PYTHON = "PLUGWIRE_BENCH_PYVIDER_PYTHON"


def _pyvider_command() -> list[str]:
    """A Python with pyvider (PyPI) serving ``_bench_pyvider.py`` (the same shape)."""
    python = os.environ.get(PYVIDER_PYTHON)
    if not python:
        if importlib.util.find_spec("pyvider") is None:
            raise Unavailable(
                "pyvider is not installed here (it is not a plugwire dependency): "
                f"set {PYVIDER_PYTHON} to a Python >= 3.11 with `pip install pyvider`"
            )
        python = sys.executable
    peer = Path(__file__).with_name("_bench_pyvider.py")
    code = (
        f"import sys; sys.path.insert(0, {str(peer.parent)!r}); "
        "import _bench_pyvider; _bench_pyvider.serve()"
    )
    return [python, "-c", code]


class PyviderPlan(TerraformPlan):
    """pyvider's provider: ``example_thing`` of the same schema, served by pyvider."""

    async def start(self, ctx: BenchContext) -> None:
        self.provider = _pyvider_command()
        await super().start(ctx)


def _contenders(ctx: BenchContext) -> list[Contender]:
    return [
        TerraformPlan(BASELINE),
        TerraformPlan(PLUGWIRE, EXAMPLE),
        PyviderPlan(PYVIDER),
        PlugwireHandshake(),
        ImportGrpc(),
    ]


SUITE = Suite(
    name="terraform",
    title="terraform plan of one resource (wall time of the CLI), per provider",
    baseline=BASELINE,
    contenders=_contenders,
    cold_rounds=(7, 3),
    pairs=[
        (PLUGWIRE, BASELINE),
        (PLUGWIRE, PYVIDER),
        (HANDSHAKE, IMPORT_GRPC),
    ],
    notes=[
        "cold start = wall time of one whole `terraform plan` (CLI start, provider launch "
        "via dev_overrides, handshake, schema, plan, exit); median of the rounds",
        "the handshake row is launch -> go-plugin handshake with AutoMTLS (no terraform)",
    ],
)
