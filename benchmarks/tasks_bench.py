"""Benchmark: what the task-plugin machinery costs over doing the same work by hand.

Run: ``.venv/bin/python benchmarks/tasks_bench.py [--tasks 300] [--calls 2000]``

One run, one table; each row times plugwire against a baseline doing the same work
without it, and prints the ratio (plugwire / baseline; lower is better):

- lifecycle, N in-process plugins: ``run_task`` (schema merge + validation, every
  stage fanned out through the manager with timeouts and order checks) on an
  in-memory engine, vs calling the same task plugins' stages directly in a loop;
- out-of-process stage: one ``started`` stage through ``RemoteTaskPlugin`` (gRPC to a
  plugin process, stage lock, log and error handling), vs a bare grpc.aio unary call
  of the same size to an echo server in another process over a unix socket;
- local task: ``run_task`` with the built-ins running ``true`` on the local-process
  engine, vs ``anyio.run_process(["true"])``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import grpc
from anyio.streams.buffered import BufferedByteReceiveStream

from plugwire.core.tasks import (
    PluginManager,
    Registry,
    TaskContext,
    TaskInfo,
    TaskPluginOptions,
    run_task,
)
from plugwire.core.tasks.local import LocalProcessEngine
from plugwire.core.tasks.testing import MemoryEngine, RecorderProvider
from plugwire.grpc.tasks import RemoteProvider

ECHO_SERVER = r"""
import asyncio, os, sys, tempfile, grpc
async def main():
    path = os.path.join(tempfile.mkdtemp(), "echo.sock")
    server = grpc.aio.server()
    async def echo(req, ctx):
        return req
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port("unix:" + path)
    await server.start()
    print(path, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop(0)
asyncio.run(main())
"""


async def timed(n: int, fn: Callable[[], Awaitable[Any]]) -> float:
    """Median of 5 rounds of the per-call time in microseconds."""
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(max(n // 5, 1)):
            await fn()
        rounds.append((time.perf_counter() - t0) / max(n // 5, 1) * 1e6)
    return statistics.median(rounds)


async def lifecycle(n_plugins: int, tasks: int) -> tuple[float, float]:
    reg = Registry(entry_points=())
    for i in range(n_plugins):
        reg.register(f"p{i}", RecorderProvider())
    config: dict[str, Any] = {f"p{i}": {} for i in range(n_plugins)}
    engine = MemoryEngine()
    async with PluginManager.open(config, registry=reg) as manager:

        async def with_manager() -> None:
            await run_task(manager, engine, {})

        async def by_hand() -> None:
            ctx = TaskContext(TaskInfo("t"))
            opts = TaskPluginOptions(ctx.info, ctx, {})
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

        await timed(50, with_manager)  # warm-up
        ours = await timed(tasks, with_manager)
        base = await timed(tasks, by_hand)
    return ours, base


async def remote_stage(calls: int) -> tuple[float, float]:
    reg = Registry(entry_points=())
    reg.register(
        "r",
        RemoteProvider(
            [
                sys.executable,
                "-m",
                "plugwire.grpc.tasks",
                "plugwire.core.tasks.testing:RecorderProvider",
            ]
        ),
    )
    async with PluginManager.open({"r": {}}, registry=reg) as manager:
        ctx = TaskContext(TaskInfo("bench"))
        tp = await manager.plugins["r"].new_task_plugin(TaskPluginOptions(ctx.info, ctx, {}))
        await timed(200, lambda: tp.started(None))  # type: ignore[arg-type]
        ours = await timed(calls, lambda: tp.started(None))  # type: ignore[arg-type]
        await tp.dispose()
    proc = await anyio.open_process(
        [sys.executable, "-c", ECHO_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = await BufferedByteReceiveStream(proc.stdout).receive_until(b"\n", 4096)
        async with grpc.aio.insecure_channel(f"unix:{line.decode().strip()}") as channel:
            echo = channel.unary_unary("/bench.Echo/Echo")
            payload = b"\x0a\x05bench"  # a TaskRef-sized message
            await timed(200, lambda: echo(payload))
            base = await timed(calls, lambda: echo(payload))
        await proc.stdin.aclose()
        with anyio.fail_after(10):
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
    return ours, base


async def local_task(tasks: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = LocalProcessEngine(root=os.path.join(tmp, "w"))
        config = {"env": {}, "success": {}, "maxruntime": {}, "tasklog": {}}
        async with PluginManager.open(config, engine=engine) as manager:

            async def ours() -> None:
                r = await run_task(manager, engine, {"command": ["true"], "env": {"A": "1"}})
                assert r.success

            async def base() -> None:
                await anyio.run_process(["true"])

            await timed(10, ours)
            a = await timed(tasks, ours)
            b = await timed(tasks, base)
    return a, b


async def main(tasks: int, calls: int) -> None:
    rows: list[tuple[str, float, float]] = []
    for n in (1, 8):
        ours, base = await lifecycle(n, tasks)
        rows.append((f"task lifecycle, {n} in-process plugin(s)", ours, base))
    ours, base = await remote_stage(calls)
    rows.append(("one stage, out-of-process plugin (gRPC)", ours, base))
    ours, base = await local_task(max(tasks // 10, 10))
    rows.append(("local task `true` with 4 built-ins", ours, base))
    print(f"{'case':<44} {'plugwire µs':>12} {'baseline µs':>12} {'ratio':>7}")
    for name, a, b in rows:
        print(f"{name:<44} {a:>12.0f} {b:>12.0f} {a / b:>7.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    anyio.run(main, args.tasks, args.calls, backend="asyncio")
