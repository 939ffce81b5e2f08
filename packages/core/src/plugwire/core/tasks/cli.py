"""``plugwire task``: run taskcluster-style tasks from the command line.

``plugwire task run payload.json [--config worker.json]`` runs one task with the local
process engine and the configured plugins, printing every stage and its outcome and
the task log. Exit status: 0 completed, 1 failed, 3 exception (malformed payload,
internal error), 4 bad configuration; 2 is click's usage error.
``plugwire task plugins`` lists the registered plugins.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import click

from ..errors import ConfigError, PlugwireError, TransportNotAvailableError
from .config import WorkerConfig, load_json
from .context import TaskContext, TaskInfo
from .local import LocalProcessEngine
from .manager import PluginManager
from .registry import Registry, default_registry
from .run import StageEvent, TaskResult, run_task

__all__ = ["task"]

EXIT_FAILED = 1
EXIT_EXCEPTION = 3
EXIT_CONFIG = 4


class _ConfigProblem(click.ClickException):
    exit_code = EXIT_CONFIG


@click.group()
def task() -> None:
    """Taskcluster-style task plugins: run tasks, list plugins."""


@task.command("plugins")
def list_plugins() -> None:
    """List the registered task plugins and where they come from."""
    reg = default_registry
    for name in reg.names():
        try:
            provider = reg.get(name)
            origin = f"{type(provider).__module__}.{type(provider).__qualname__}"
        except PlugwireError as exc:
            origin = f"broken: {exc}"
        click.echo(f"{name:12} {origin}")


@contextlib.asynccontextmanager
async def _registry_with_external(config: WorkerConfig) -> AsyncIterator[Registry]:
    if not config.external:
        yield default_registry
        return
    try:
        # core never imports a transport statically
        remote: Any = importlib.import_module("plugwire.grpc.tasks")
    except ImportError as exc:
        raise TransportNotAvailableError(
            "external task plugins need the gRPC transport: pip install 'plugwire[grpc]'",
            step="external plugins",
            seen=str(exc),
        ) from None
    reg = default_registry.copy()
    for name, spec in config.external.items():
        reg.register(name, remote.RemoteProvider(spec["command"], env=spec.get("env")))
    yield reg


async def _run(
    payload: Any, config: WorkerConfig, info: TaskInfo, quiet: bool, color: bool
) -> TaskResult:
    engine = LocalProcessEngine(**config.engine)
    context = TaskContext(info)
    if not quiet:
        context.add_log_sink(lambda line: click.echo(f"  | {line}"))

    def on_event(event: StageEvent) -> None:
        mark = click.style("ok", fg="green") if event.ok else click.style("FAILED", fg="red")
        if not color:
            mark = "ok" if event.ok else "FAILED"
        detail = f" ({event.detail})" if event.detail else ""
        click.echo(f"stage {event.stage.value:<20} {mark}{detail}  [{event.seconds:.3f}s]")
        if event.error is not None:
            for line in str(event.error).splitlines():
                click.echo(f"      {line}")

    async with (
        _registry_with_external(config) as registry,
        PluginManager.open(
            config.plugins, registry=registry, engine=engine, stage_timeout=config.stage_timeout
        ) as manager,
    ):
        click.echo(f"task {info.task_id} run {info.run_id}: plugins {', '.join(manager.names)}")
        return await run_task(manager, engine, payload, context=context, on_event=on_event)


@task.command("run")
@click.argument("payload_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Worker configuration (JSON): plugins, engine, stage_timeout, external.",
)
@click.option("--task-id", default=None, help="Task id (default: random).")
@click.option("--run-id", default=0, show_default=True, type=int)
@click.option("-q", "--quiet", is_flag=True, help="Do not print the task log.")
@click.option(
    "--backend",
    type=click.Choice(["asyncio", "trio"]),
    default="asyncio",
    show_default=True,
    help="anyio backend (external plugins need asyncio).",
)
def run(
    payload_file: Path,
    config_file: Path | None,
    task_id: str | None,
    run_id: int,
    quiet: bool,
    backend: str,
) -> None:
    """Run the task whose payload is PAYLOAD_FILE and print each stage and its outcome."""
    import secrets

    try:
        payload = load_json(payload_file, what="payload")
        raw = load_json(config_file, what="config") if config_file else {}
        config = WorkerConfig.from_dict(raw, source=str(config_file or "defaults"))
    except ConfigError as exc:
        raise _ConfigProblem(str(exc)) from None
    info = TaskInfo(task_id or secrets.token_hex(6), run_id)
    color = sys.stdout.isatty()
    try:
        result = anyio.run(_run, payload, config, info, quiet, color, backend=backend)
    except ConfigError as exc:
        raise _ConfigProblem(str(exc)) from None
    except TransportNotAvailableError as exc:
        raise _ConfigProblem(str(exc)) from None
    summary: dict[str, Any] = {
        "task_id": info.task_id,
        "resolution": result.resolution,
        "success": result.success,
        "exit_code": result.exit_code,
    }
    if result.reason is not None:
        summary["reason"] = result.reason.value
    click.echo("result " + json.dumps(summary))
    if result.resolution == "failed":
        sys.exit(EXIT_FAILED)
    if result.resolution == "exception":
        sys.exit(EXIT_EXCEPTION)
