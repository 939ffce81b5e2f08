"""Suites, contenders and the runner that measures them interleaved, in one run."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio

from ..process import PluginProcess
from ._model import LEVELS, ContenderResult, Level, SuiteResult, level_from_latencies, median_level

__all__ = [
    "BenchContext",
    "Contender",
    "Suite",
    "Unavailable",
    "drive",
    "run_suite",
]

Progress = Callable[[str, int], None]  # (description, steps done) -> None


class Unavailable(Exception):
    """A contender cannot run here (missing peer, package or checkout); says why."""


@dataclass
class BenchContext:
    """What a suite's contenders share: mode, scratch directory, helpers to spawn peers."""

    quick: bool
    tmp: Path
    stack: contextlib.AsyncExitStack
    #: what contenders of one suite share (a control plane, a deployment), by key
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def python(self) -> str:
        return sys.executable

    def path(self, name: str) -> Path:
        """A fresh path in the scratch directory (for sockets)."""
        return self.tmp / name

    async def go(self, harness: str, package: str, *, name: str | None = None) -> Path:
        """The binary of ``package`` in the Go harness ``tests/interop/<harness>``."""
        return await anyio.to_thread.run_sync(lambda: build_go(harness, package, name=name))

    async def spawn(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        name: str,
        ready: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> PluginProcess:
        """Start a peer process for the rest of the suite; wait for a ``ready`` line."""
        proc = PluginProcess(argv, env=env or {}, inherit_env=True, name=name, stdin=True)
        await self.stack.enter_async_context(proc)
        if ready is not None:
            await wait_line(proc, ready, timeout)
        return proc


async def wait_line(proc: PluginProcess, prefix: str, timeout: float = 60) -> str:
    """The first stdout line of ``proc`` starting with ``prefix``."""
    with anyio.fail_after(timeout):
        while True:
            line = await proc.readline_stdout()
            if line is None:
                raise Unavailable(
                    f"{proc.name} exited before printing {prefix!r}: "
                    + " | ".join(proc.stderr_tail[-5:])
                )
            if line.startswith(prefix):
                return line


async def run_to_end(
    argv: Sequence[str | os.PathLike[str]], *, name: str, timeout: float = 600
) -> list[str]:
    """Run a command to its end; its stdout lines (raises naming the command on failure)."""
    lines: list[str] = []
    async with PluginProcess(argv, env={}, inherit_env=True, name=name) as proc:
        with anyio.fail_after(timeout):
            while (line := await proc.readline_stdout()) is not None:
                lines.append(line)
            code = await proc.wait()
        if code != 0:
            raise RuntimeError(
                f"{name}: {' '.join(map(str, argv))} exited {code}: "
                + " | ".join(proc.stderr_tail[-5:])
            )
    return lines


def rss_mb(pids: Sequence[int]) -> float | None:
    """Peak resident set (VmHWM) of ``pids`` together, in MiB (Linux /proc)."""
    total = 0
    seen = False
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
                    seen = True
    return round(total / 1024, 1) if seen else None


async def drive(
    call: Callable[[], Awaitable[object]], calls: int, inflight: int, warmup: int = 0
) -> Level:
    """``calls`` calls, ``inflight`` of them at a time (closed loop); their figures."""
    for _ in range(warmup):
        await call()
    latencies: list[float] = []
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        perf = time.perf_counter
        while remaining > 0:
            remaining -= 1
            t = perf()
            await call()
            latencies.append(perf() - t)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(inflight):
            tg.start_soon(worker)
    return level_from_latencies(latencies, time.perf_counter() - start)


class Contender:
    """One side-by-side participant of a suite.

    Subclasses start their processes in :meth:`start` (on ``ctx.stack``, so they live
    for the whole suite), answer :meth:`measure` for a number of calls in flight, and
    may time a fresh launch to the first answered call in :meth:`cold_start`.
    """

    name: str = "?"
    levels: tuple[int, ...] = LEVELS
    #: at most this many cold-start rounds (a slow peer), ``None``: the suite's count
    max_cold_rounds: int | None = None

    async def start(self, ctx: BenchContext) -> None:
        """Start what stays up for the run (raise :class:`Unavailable` to skip)."""

    async def measure(self, calls: int, inflight: int) -> Level:
        raise NotImplementedError

    async def cold_start(self, ctx: BenchContext) -> float | None:
        """Seconds from process launch to the first answered call, or ``None``."""
        return None

    def pids(self) -> list[int]:
        """Processes whose peak RSS is reported (the plugin or server side)."""
        return []

    def peak_rss_mb(self) -> float | None:
        """Peak RSS (MiB) of the plugin or server side, or ``None`` when not seen."""
        return rss_mb(self.pids())


class CallContender(Contender):
    """A contender driven from this process by an async ``call``."""

    def __init__(self, name: str, levels: tuple[int, ...] = LEVELS) -> None:
        self.name = name
        self.levels = levels
        self.call: Callable[[], Awaitable[object]] | None = None
        self._pids: list[int] = []

    def pids(self) -> list[int]:
        return self._pids

    async def measure(self, calls: int, inflight: int) -> Level:
        assert self.call is not None, f"{self.name}: start() set no call"
        return await drive(self.call, calls, inflight)


@dataclass
class Suite:
    """A family's benchmark: contenders, the baseline the ratios divide by, sizes."""

    name: str
    title: str
    baseline: str
    contenders: Callable[[BenchContext], Sequence[Contender]]
    calls: tuple[int, int] = (2000, 200)  # calls at 1 in flight: full run, --quick
    rounds: tuple[int, int] = (3, 1)
    cold_rounds: tuple[int, int] = (3, 1)
    warmup: tuple[int, int] = (200, 20)
    notes: list[str] = field(default_factory=list)
    #: (contender, reference) pairs whose ratios the table shows besides the baseline's
    pairs: list[tuple[str, str]] = field(default_factory=list)
    #: suites ``plugwire bench NAME`` runs right after this one (a family measured against
    #: several baselines: one suite each, run together under this suite's name)
    also: list[Suite] = field(default_factory=list)

    def pick(self, pair: tuple[int, int], quick: bool) -> int:
        return pair[1] if quick else pair[0]

    def calls_at(self, inflight: int, quick: bool) -> int:
        base = self.pick(self.calls, quick)
        return base if inflight == 1 else base * 2


async def run_suite(suite: Suite, *, quick: bool, progress: Progress | None = None) -> SuiteResult:
    """Run every contender of ``suite`` interleaved; medians over rounds, ratios."""
    tick = progress or (lambda _desc, _n: None)
    result = SuiteResult(suite.name, suite.title, suite.baseline, {}, quick=quick)
    result.notes.extend(suite.notes)
    result.pairs.extend(suite.pairs)
    samples: dict[str, dict[int, list[Level]]] = {}
    with tempfile.TemporaryDirectory(prefix=f"plugwire-bench-{suite.name}-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            ctx = BenchContext(quick=quick, tmp=Path(tmp), stack=stack)
            active: list[Contender] = []
            for contender in suite.contenders(ctx):
                try:
                    # No timeout scope here: start() enters contexts on ctx.stack.
                    await contender.start(ctx)
                    warm = suite.pick(suite.warmup, quick)
                    if warm and contender.levels:
                        await contender.measure(warm, 1)
                    active.append(contender)
                except Unavailable as exc:
                    result.skipped[contender.name] = str(exc)
                tick(f"{suite.name}: started {contender.name}", 1)
            rounds = suite.pick(suite.rounds, quick)
            for r in range(rounds):
                # Interleaved, and the order rotates each round, so a burst of load on a
                # shared machine does not land on one contender only.
                order = active[r % max(1, len(active)) :] + active[: r % max(1, len(active))]
                for inflight in LEVELS:
                    for contender in order:
                        if inflight not in contender.levels:
                            continue
                        level = await contender.measure(suite.calls_at(inflight, quick), inflight)
                        samples.setdefault(contender.name, {}).setdefault(inflight, []).append(
                            level
                        )
                        tick(f"{suite.name}: {contender.name} @{inflight}", 1)
            for contender in active:
                res = ContenderResult(contender.name)
                res.levels = {
                    n: median_level(s) for n, s in samples.get(contender.name, {}).items()
                }
                res.rss_mb = contender.peak_rss_mb()
                result.contenders[contender.name] = res
            # Cold starts while the suite's shared peers (a control plane) are still up.
            cold: dict[str, list[float]] = {}
            for cold_round in range(suite.pick(suite.cold_rounds, quick)):
                for contender in active:
                    cap = contender.max_cold_rounds
                    if cap is not None and cold_round >= cap:
                        continue
                    async with contextlib.AsyncExitStack() as cold_stack:
                        cold_ctx = BenchContext(quick, Path(tmp), cold_stack, ctx.shared)
                        seconds = await contender.cold_start(cold_ctx)
                    if seconds is not None:
                        cold.setdefault(contender.name, []).append(seconds)
                    tick(f"{suite.name}: cold start {contender.name}", 1)
            for name, values in cold.items():
                result.contenders[name].cold_start_ms = statistics.median(values) * 1e3
                result.contenders[name].cold_start_rounds_ms = [v * 1e3 for v in values]
    return result


def steps(suite: Suite, quick: bool, contenders: int) -> int:
    """How many progress ticks a run of ``suite`` makes (an estimate for the bar)."""
    rounds = suite.pick(suite.rounds, quick)
    return contenders * (1 + rounds * len(LEVELS) + suite.pick(suite.cold_rounds, quick))


def expand(suite: Suite) -> list[Suite]:
    """``suite`` and the suites run with it (:attr:`Suite.also`, recursively), in order."""
    return [suite, *(s for part in suite.also for s in expand(part))]


# -- Go harnesses -------------------------------------------------------------------


def source_root() -> Path | None:
    """The repository checkout holding the Go harnesses (tests/interop), if any."""
    candidates = []
    if os.environ.get("PLUGWIRE_SOURCE"):
        candidates.append(Path(os.environ["PLUGWIRE_SOURCE"]))
    candidates += [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]
    for root in candidates:
        if (root / "tests" / "support" / "gobuild.py").is_file() and (
            root / "tests" / "interop"
        ).is_dir():
            return root
    return None


_gobuild: ModuleType | None = None


def build_go(harness: str, package: str, *, name: str | None = None) -> Path:
    """Build (or find in ~/.cache/plugwire) a Go harness binary of the checkout."""
    global _gobuild
    if shutil.which("go") is None:
        raise Unavailable("Go is not installed: install Go >= 1.22 to build the Go contenders")
    if _gobuild is None:
        root = source_root()
        if root is None:
            raise Unavailable(
                "the Go contenders build from a repository checkout (tests/interop): "
                "run from one, or set PLUGWIRE_SOURCE to it"
            )
        spec = importlib.util.spec_from_file_location(
            "_plugwire_bench_gobuild", root / "tests" / "support" / "gobuild.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _gobuild = module
    built: Any = _gobuild.build_go(harness, package, name=name)
    return Path(built)


def support_module(name: str) -> ModuleType:
    """``tests/support/<name>.py`` of the repository checkout (e.g. the kube control plane)."""
    root = source_root()
    if root is None:
        raise Unavailable(
            f"tests/support/{name}.py comes from a repository checkout: run from one, "
            "or set PLUGWIRE_SOURCE to it"
        )
    if str(root / "tests") not in sys.path:
        sys.path.insert(0, str(root / "tests"))
    return importlib.import_module(f"support.{name}")


@contextlib.asynccontextmanager
async def timed_launch() -> AsyncIterator[Callable[[], float]]:
    """``async with timed_launch() as elapsed:``: seconds since entering, on demand."""
    start = time.perf_counter()
    yield lambda: time.perf_counter() - start
