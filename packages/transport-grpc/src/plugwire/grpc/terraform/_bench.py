"""``plugwire bench terraform``: the real terraform CLI planning and applying, per provider.

Each contender times one whole terraform command (wall time: the CLI starts, launches
the provider through dev overrides, handshakes, fetches the schema, validates, plans or
applies, stops the provider, exits) over several rounds; the median is the figure.
``plugwire bench terraform`` runs five suites, each measured interleaved against its own
baseline:

* ``terraform``: ``terraform plan`` of one ``example_thing`` (``name = "a"``);
* ``terraform-plan-50``: ``terraform plan`` of fifty (``count = 50``);
* ``terraform-apply-1`` and ``terraform-apply-50``: ``terraform apply -auto-approve
  -input=false`` of the same configs, each round from an empty state (the state files
  are removed before the timer starts);
* ``terraform-launch``: plugwire's example provider started with Terraform's handshake
  and AutoMTLS by plugwire's go-plugin client (entered, i.e. the handshake line read
  and the TLS channel up), against ``python -c 'import grpc'`` (the baseline): a
  launch that imports (the first of a host, or any with the fork server off) and a
  later launch of the same host (forked by the first one's fork server).

Every round checks the command's summary (``Plan: N to add``, ``Apply complete!
Resources: N added``), so a contender that planned or applied less fails the run.
Providers of the same shape in the plan/apply suites:

* the Go terraform-plugin-framework provider ``terraform-provider-example``
  (tests/interop/terraform, the baseline);
* plugwire's example provider (its console script ``terraform-provider-example``, as
  a user's provider is installed; :func:`example_command`), as it runs by default
  (later launches of a command forked by its fork server,
  :mod:`plugwire.core.forkserver`) and with ``PLUGWIRE_FORKSERVER=0`` (every launch
  imports on its own);
* pyvider (PyPI) serving the same resource (``_bench_pyvider.py``), when pyvider is
  importable here or ``PLUGWIRE_BENCH_PYVIDER_PYTHON`` names a Python that has it
  (pyvider is not a plugwire dependency). pyvider takes seconds per command: it runs
  fewer rounds in the fifty-resource suites.

Python providers run from compiled bytecode, as after ``pip install``: the suites
compile the modules they load first (``compileall``; a checkout synced by uv, or run
with ``PYTHONDONTWRITEBYTECODE``, would otherwise compile them at every launch).

The terraform CLI and the Go provider are built by the test harness
(tests/terraform/terraform_support.py, cached in ~/.cache/plugwire): a repository
checkout is needed (or ``PLUGWIRE_SOURCE``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
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

EXAMPLE_SCRIPT = "terraform-provider-example"
"""The example provider's console script (the grpc distribution's ``[project.scripts]``)."""


def example_command() -> list[str]:
    """How the example provider is started, as a user's provider is: its console
    script next to this interpreter (installed with the grpc distribution), else
    ``python -m plugwire.grpc.terraform.examples.thing`` (a checkout on ``sys.path``
    without the script: each launch then also pays ``runpy``)."""
    script = Path(sys.executable).with_name(EXAMPLE_SCRIPT)
    if os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "plugwire.grpc.terraform.examples.thing"]


EXAMPLE = example_command()
BASELINE = "Go provider (terraform-plugin-framework)"
PLUGWIRE = "plugwire example provider"
PLUGWIRE_NOFORK = "plugwire example provider, no fork server"
PYVIDER = "pyvider provider"
HANDSHAKE_FIRST = "plugwire provider launch -> handshake (AutoMTLS), importing"
HANDSHAKE_FORKED = "plugwire provider launch -> handshake (AutoMTLS), forked"
IMPORT_GRPC = "python -c 'import grpc'"
DEPENDENCIES = "python -c 'import grpc, attrs, protobuf, cryptography, msgpack' (the floor)"
#: What a provider launch cannot start without, whatever the framework on top: gRPC, the
#: protobuf runtime its generated modules load, the EC primitives AutoMTLS signs with,
#: and the libraries plugwire is built on (attrs; msgpack for cty values).
DEPENDENCY_IMPORTS = (
    "import grpc, attrs, msgpack; "
    "from google.protobuf import descriptor, descriptor_pool, runtime_version, "
    "symbol_database, timestamp_pb2; "
    "from google.protobuf.internal import builder; "
    "from cryptography.hazmat.primitives import hashes; "
    "from cryptography.hazmat.primitives.asymmetric import ec"
)

HEADER = (
    'terraform {\n  required_providers {\n    example = { source = "plugwire/example" }\n  }\n}\n'
)


def config(count: int) -> str:
    """The configuration of ``count`` ``example_thing`` resources (``count = N`` if > 1)."""
    if count == 1:
        return HEADER + 'resource "example_thing" "a" {\n  name = "a"\n}\n'
    return HEADER + (
        f'resource "example_thing" "a" {{\n  count = {count}\n  name  = "a-${{count.index}}"\n}}\n'
    )


CONFIG = config(1)

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


#: what a provider launch loads: compiled before timing, as ``pip install`` would have
BYTECODE = ("plugwire.core", "plugwire.grpc", "grpc", "google.protobuf", "cryptography",
            "attr", "attrs", "msgpack", "grpc_health", "typing_extensions",
            "_distutils_hack", "grpc_tools")  # fmt: skip


def _compile_bytecode(packages: Sequence[str] = BYTECODE) -> None:
    """Write the bytecode of ``packages`` (where the directories are writable).

    A package is compiled whole, a single-file module (``typing_extensions``, which
    ``grpc.aio`` imports) on its own: a module without bytecode is compiled from
    source at every launch under ``PYTHONDONTWRITEBYTECODE`` (~18 ms for that one).
    """
    import compileall

    for name in packages:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        if spec.submodule_search_locations is None:
            origin = spec.origin or ""
            if origin.endswith(".py") and os.access(os.path.dirname(origin), os.W_OK):
                compileall.compile_file(origin, quiet=1)
            continue
        for directory in spec.submodule_search_locations:
            if os.access(directory, os.W_OK):
                compileall.compile_dir(directory, quiet=1, workers=1)


async def _bytecode(ctx: BenchContext, python: str | None = None) -> None:
    """Compile this Python's provider modules once per run (``python``: another
    interpreter's whole site-packages, pyvider's)."""
    key = f"bytecode:{python or 'self'}"
    if key in ctx.shared:
        return
    if python is None:
        await anyio.to_thread.run_sync(_compile_bytecode)
    else:
        code = (
            "import compileall, site, os\n"
            "for d in site.getsitepackages():\n"
            "    os.access(d, os.W_OK) and compileall.compile_dir(d, quiet=1, workers=1)\n"
        )
        await run_to_end([python, "-c", code], name="compile pyvider's bytecode")
    ctx.shared[key] = True


async def _built(ctx: BenchContext, what: str) -> Path:
    """``terraform_binary``, ``go_provider_binary`` or ``pyvider_python`` of the
    checkout's test harness (made once per run, then cached)."""
    if what not in ctx.shared:
        support = _terraform_support()
        try:
            ctx.shared[what] = Path(await anyio.to_thread.run_sync(getattr(support, what)))
        except Exception as exc:
            raise Unavailable(f"{what}: the build failed: {exc}") from exc
    path: Path = ctx.shared[what]
    return path


class TerraformCommand(Contender):
    """One terraform command (``plan`` or ``apply``) of ``count`` resources with one
    provider, timed whole; every round checks that it planned or applied them all."""

    levels = ()
    command = "plan"

    def __init__(
        self,
        name: str,
        provider: Sequence[str] | None = None,
        *,
        count: int = 1,
        pyvider: bool = False,
        max_cold_rounds: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.env = dict(env or {})  # for the terraform command (and so its provider)
        self.provider = provider  # None: the Go provider (or pyvider's, with ``pyvider``)
        self.pyvider = pyvider
        self.count = count
        self.max_cold_rounds = max_cold_rounds
        self.workspace: Any = None
        self.cli: Path | None = None
        #: stdout lines of the last command (the tests read the summary)
        self.output: list[str] = []

    async def _provider(self, ctx: BenchContext) -> Path | list[str]:
        if self.pyvider:  # raises Unavailable without pyvider
            if not os.environ.get(PYVIDER_PYTHON) and importlib.util.find_spec("pyvider") is None:
                await _built(ctx, "pyvider_python")  # the checkout's cached venv
            command = _pyvider_command(ctx.shared.get("pyvider_python"))
            await _bytecode(ctx, command[0])
            return command
        if self.provider is None:
            return await _built(ctx, "go_provider_binary")
        await _bytecode(ctx)
        if len(self.provider) == 1:  # an executable (a console script): no shell wrapper
            return Path(self.provider[0])
        return list(self.provider)

    async def start(self, ctx: BenchContext) -> None:
        support = _terraform_support()
        self.cli = await _built(ctx, "terraform_binary")
        root = ctx.path(f"tf-{self.command}-{self.count}-{abs(hash(self.name)):x}")
        self.workspace = support.Workspace(
            self.cli, root, {support.EXAMPLE_SOURCE: await self._provider(ctx)}
        )
        self.workspace.write(config(self.count))
        await self._timed()  # once, untimed: it must plan/apply every resource

    def argv(self) -> list[str]:
        ws = self.workspace
        return [str(self.cli), f"-chdir={ws.dir}", "plan", "-input=false", "-no-color"]

    def expected(self) -> str:
        """The summary line the command prints when it did its whole work."""
        return f"Plan: {self.count} to add, 0 to change, 0 to destroy."

    def prepare(self) -> None:
        """Before the timer starts (apply: back to an empty state)."""

    async def _timed(self) -> float:
        """Run the command once (after :meth:`prepare`); its wall time in seconds."""
        self.prepare()
        argv = self.argv()
        lines: list[str] = []
        t0 = time.perf_counter()
        async with PluginProcess(
            argv, env={**self.workspace.env, **self.env}, name=f"terraform-{self.command}"
        ) as proc:
            with anyio.fail_after(300):
                while (line := await proc.readline_stdout()) is not None:
                    lines.append(line)
                code = await proc.wait()
            seconds = time.perf_counter() - t0
            if code != 0:
                raise RuntimeError(
                    f"{self.name}: terraform {self.command} exited {code}: "
                    + " | ".join([*lines[-5:], *proc.stderr_tail[-5:]])
                )
        self.output = lines
        want = self.expected()
        if not any(want in line for line in lines):
            raise RuntimeError(
                f"{self.name}: terraform {self.command} of {self.count} example_thing "
                f"did not print {want!r}: {lines[-10:]}"
            )
        return seconds

    async def cold_start(self, ctx: BenchContext) -> float | None:
        return await self._timed()


class TerraformPlan(TerraformCommand):
    """``terraform plan -input=false`` of ``count`` resources, timed whole."""


class TerraformApply(TerraformCommand):
    """``terraform apply -auto-approve -input=false`` of ``count`` resources from an
    empty state (the state files are removed before each round), timed whole."""

    command = "apply"

    def argv(self) -> list[str]:
        ws = self.workspace
        return [
            str(self.cli), f"-chdir={ws.dir}", "apply", "-auto-approve", "-input=false",
            "-no-color",
        ]  # fmt: skip

    def expected(self) -> str:
        return f"Apply complete! Resources: {self.count} added, 0 changed, 0 destroyed."

    def prepare(self) -> None:
        for name in ("terraform.tfstate", "terraform.tfstate.backup"):
            (self.workspace.dir / name).unlink(missing_ok=True)


class _Provider(GrpcPlugin):
    def grpc_client(self, broker: Any, channel: Any) -> Any:
        return channel


class PlugwireHandshake(Contender):
    """plugwire's example provider launched as Terraform does (cookie, protocol 6,
    AutoMTLS) by plugwire's go-plugin client: launch to the handshake done.

    ``forked=False``: the fork server is off (``PLUGWIRE_FORKSERVER=0``), so every
    launch imports, as the first launch of a host does. ``forked=True``: launches by
    this same host, after a first one that started the fork server (made, untimed,
    in :meth:`start`): each is a fork of the imported provider."""

    levels = ()

    def __init__(self, *, forked: bool) -> None:
        self.forked = forked
        self.name = HANDSHAKE_FORKED if forked else HANDSHAKE_FIRST

    def _config(self) -> ClientConfig:
        return ClientConfig(
            handshake=Handshake(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, (6,)),
            versioned_plugins={6: {"provider": _Provider()}},
            cmd=list(EXAMPLE),
            env={} if self.forked else {"PLUGWIRE_FORKSERVER": "0"},
            inherit_env=True,
            auto_mtls=True,
            start_timeout=60,
        )

    async def start(self, ctx: BenchContext) -> None:
        await _bytecode(ctx)
        async with PluginClient(self._config()) as client:
            if client.negotiated_version != 6:
                raise RuntimeError(f"{self.name}: negotiated {client.negotiated_version}, not 6")

    async def cold_start(self, ctx: BenchContext) -> float | None:
        t0 = time.perf_counter()
        async with PluginClient(self._config()):
            seconds = time.perf_counter() - t0
        return seconds


class BareImport(Contender):
    """``python -c CODE``, timed from launch to exit: a floor under a provider's launch.

    :data:`IMPORT_GRPC` (``import grpc``) is the floor of any Python gRPC provider's
    start; :data:`DEPENDENCIES` (:data:`DEPENDENCY_IMPORTS`) adds what any plugwire
    provider launch imports before its own code, so that the run shows which part of a
    launch is plugwire's."""

    levels = ()

    def __init__(self, name: str, code: str) -> None:
        self.name = name
        self.code = code

    async def cold_start(self, ctx: BenchContext) -> float | None:
        t0 = time.perf_counter()
        await run_to_end([sys.executable, "-c", self.code], name=self.name)
        return time.perf_counter() - t0


PYVIDER_PYTHON = "PLUGWIRE_BENCH_PYVIDER_PYTHON"


def _pyvider_command(installed: Path | None = None) -> list[str]:
    """A Python with pyvider (PyPI) serving ``_bench_pyvider.py`` (the same shape):
    ``PLUGWIRE_BENCH_PYVIDER_PYTHON``, else this Python if it has pyvider, else
    ``installed`` (the checkout's cached venv, tests/terraform/terraform_support.py)."""
    python = os.environ.get(PYVIDER_PYTHON)
    if not python:
        if importlib.util.find_spec("pyvider") is not None:
            python = sys.executable
        elif installed is not None:
            python = str(installed)
        else:
            raise Unavailable(
                "pyvider is not installed here (it is not a plugwire dependency): "
                f"set {PYVIDER_PYTHON} to a Python >= 3.11 with `pip install pyvider`, "
                "or run from a checkout (it installs one into ~/.cache/plugwire/pyvider)"
            )
    peer = Path(__file__).with_name("_bench_pyvider.py")
    code = (
        f"import sys; sys.path.insert(0, {str(peer.parent)!r}); "
        "import _bench_pyvider; _bench_pyvider.serve()"
    )
    return [python, "-c", code]


#: pyvider's cold-start rounds in the fifty-resource suites (it takes seconds a command)
PYVIDER_ROUNDS_50 = 4


def _providers(
    command: type[TerraformCommand], count: int
) -> Callable[[BenchContext], Sequence[Contender]]:
    """The contenders of one plan/apply suite: Go (baseline), plugwire, pyvider."""

    def contenders(ctx: BenchContext) -> list[Contender]:
        return [
            command(BASELINE, count=count),
            command(PLUGWIRE, EXAMPLE, count=count),
            command(PLUGWIRE_NOFORK, EXAMPLE, count=count, env={"PLUGWIRE_FORKSERVER": "0"}),
            command(
                PYVIDER,
                count=count,
                pyvider=True,
                max_cold_rounds=PYVIDER_ROUNDS_50 if count > 1 else None,
            ),
        ]

    return contenders


def _launch(ctx: BenchContext) -> list[Contender]:
    return [
        BareImport(IMPORT_GRPC, "import grpc"),
        BareImport(DEPENDENCIES, DEPENDENCY_IMPORTS),
        PlugwireHandshake(forked=False),
        PlugwireHandshake(forked=True),
    ]


PAIRS = [(PLUGWIRE, BASELINE), (PLUGWIRE, PYVIDER), (PLUGWIRE_NOFORK, BASELINE)]
WALL = (
    "cold start = wall time of one whole `terraform {what}` (CLI start, provider launches "
    "via dev_overrides, handshake, schema, {work}, exit); median of the rounds"
)


def _suite(name: str, command: type[TerraformCommand], count: int) -> Suite:
    what = command.command
    things = "one resource" if count == 1 else f"{count} resources (count = {count})"
    notes = [
        WALL.format(what=what, work="validate, plan" if what == "plan" else "plan, apply"),
    ]
    if what == "apply":
        notes.append("apply: -auto-approve -input=false, from an empty state each round")
    if count > 1:
        notes.append(f"pyvider: at most {PYVIDER_ROUNDS_50} rounds (seconds per command)")
    return Suite(
        name=name,
        title=f"terraform {what} of {things} (wall time of the CLI), per provider",
        baseline=BASELINE,
        contenders=_providers(command, count),
        cold_rounds=(7, 1),
        pairs=list(PAIRS),
        notes=notes,
    )


LAUNCH = Suite(
    name="terraform-launch",
    title="Terraform provider launch -> handshake (AutoMTLS) against the bare grpc import",
    baseline=IMPORT_GRPC,
    contenders=_launch,
    cold_rounds=(9, 1),
    pairs=[
        (HANDSHAKE_FIRST, IMPORT_GRPC),
        (HANDSHAKE_FORKED, IMPORT_GRPC),
        (DEPENDENCIES, IMPORT_GRPC),
        (HANDSHAKE_FIRST, DEPENDENCIES),
    ],
    notes=[
        "launch -> go-plugin handshake with AutoMTLS by plugwire's client (no terraform), "
        "against a bare `python -c 'import grpc'`",
        "the floor: a bare import of grpc, attrs, the protobuf runtime, cryptography's EC "
        "primitives and msgpack, which every launch imports before plugwire's own code",
        "importing: PLUGWIRE_FORKSERVER=0 (as a host's first launch); forked: a later "
        "launch by the same host, served by a fork of the first",
    ],
)

SUITE = _suite("terraform", TerraformPlan, 1)
SUITE.also = [
    _suite("terraform-plan-50", TerraformPlan, 50),
    _suite("terraform-apply-1", TerraformApply, 1),
    _suite("terraform-apply-50", TerraformApply, 50),
    LAUNCH,
]
