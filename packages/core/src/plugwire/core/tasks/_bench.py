"""``plugwire bench tasks``: what the task-plugin manager costs over a bare loop.

One task lifecycle on an in-memory engine: ``run_task`` through :class:`PluginManager`
(schema merge and validation, every stage fanned out with timeouts and order checks)
against calling the same task plugins' stages by hand in a loop (the baseline), with
1 and with 8 in-process plugins.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..bench import BenchContext, CallContender, Contender, Suite
from . import PluginManager, Registry, TaskContext, TaskInfo, TaskPluginOptions, run_task
from .testing import MemoryEngine, RecorderProvider

__all__ = ["SUITE"]


class _Lifecycle(CallContender):
    def __init__(self, name: str, plugins: int, managed: bool) -> None:
        super().__init__(name)
        self.plugins = plugins
        self.managed = managed

    async def start(self, ctx: BenchContext) -> None:
        reg = Registry(entry_points=())
        for i in range(self.plugins):
            reg.register(f"p{i}", RecorderProvider())
        config: dict[str, Any] = {f"p{i}": {} for i in range(self.plugins)}
        engine = MemoryEngine()
        manager = await ctx.stack.enter_async_context(
            contextlib.asynccontextmanager(_open)(config, reg)
        )

        async def with_manager() -> None:
            await run_task(manager, engine, {})

        async def by_hand() -> None:
            tctx = TaskContext(TaskInfo("t"))
            opts = TaskPluginOptions(tctx.info, tctx, {})
            tps = [await p.new_task_plugin(opts) for p in manager.plugins.values()]
            builder = await engine.new_sandbox_builder(None)  # type: ignore[arg-type]
            for tp in tps:
                await tp.build_sandbox(builder)
            sandbox = await builder.start_sandbox()
            for tp in tps:
                await tp.started(sandbox)
            result = await sandbox.wait_for_result()
            ok = [await tp.stopped(result) for tp in tps]
            for tp in tps:
                await tp.finished(all(ok))
            for tp in tps:
                await tp.dispose()
            await result.dispose()

        self.call = with_manager if self.managed else by_hand


async def _open(config: dict[str, Any], reg: Registry) -> Any:
    async with PluginManager.open(config, registry=reg) as manager:
        yield manager


def _contenders(ctx: BenchContext) -> list[Contender]:
    return [
        _Lifecycle("bare loop", 1, managed=False),
        _Lifecycle("PluginManager", 1, managed=True),
        _Lifecycle("bare loop, 8 plugins", 8, managed=False),
        _Lifecycle("PluginManager, 8 plugins", 8, managed=True),
    ]


SUITE = Suite(
    name="tasks",
    title="task lifecycle through PluginManager vs the same stages in a bare loop",
    baseline="bare loop",
    contenders=_contenders,
    calls=(1000, 100),
    notes=["8-plugin rows: compare 'PluginManager, 8 plugins' with 'bare loop, 8 plugins'"],
)
