"""The ``plugwire`` command line.

``plugwire --version`` (every installed plugwire distribution), ``plugwire demo``
(every installed family's demo, one table), ``plugwire transports`` (installed
transports), ``plugwire check|inspect|run <family>`` (conformance checker, handshake
and services, run under a host: see :mod:`plugwire.core.check`), ``plugwire completion``
and every click command registered in the ``plugwire.commands`` entry-point group (for
instance ``plugwire task``). A dotted entry-point name ``check.goplugin`` adds the
``goplugin`` subcommand to ``plugwire check``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from importlib import metadata
from typing import Any

import anyio
import click

from .demo import DemoRow
from .transport import available_transports

__all__ = ["main"]


DISTRIBUTIONS = (
    "plugwire",
    "plugwire-core",
    "plugwire-grpc",
    "plugwire-ttrpc",
    "plugwire-http",
    "plugwire-kube",
)


def installed_versions() -> dict[str, str]:
    """The version of every installed plugwire distribution (absent ones left out)."""
    out: dict[str, str] = {}
    for dist in DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _version() -> str:
    return installed_versions().get("plugwire-core", "0+unknown")


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    versions = installed_versions()
    click.echo(f"plugwire, version {versions.get('plugwire-core', '0+unknown')}")
    for dist, version in versions.items():
        click.echo(f"  {dist} {version}")
    click.echo(f"  python {sys.version.split()[0]}")
    ctx.exit()


def _commands() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group="plugwire.commands")}


class _Group(click.Group):
    """Adds the commands of the ``plugwire.commands`` entry-point group lazily.

    ``prefix``: this group takes the entry points named ``<prefix>.<name>``; the
    top-level group takes the names without a dot.
    """

    def __init__(self, *args: Any, prefix: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prefix = prefix

    def _extra(self) -> dict[str, metadata.EntryPoint]:
        eps = _commands()
        if not self.prefix:
            return {n: ep for n, ep in eps.items() if "." not in n}
        head = self.prefix + "."
        return {n[len(head) :]: ep for n, ep in eps.items() if n.startswith(head)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._extra()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in self._extra():
            loaded = self._extra()[name].load()
            if isinstance(loaded, click.Command):
                return loaded
        return command


@click.group(cls=_Group)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version of every installed plugwire distribution and exit.",
)
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
def main(verbose: int) -> None:
    """plugwire: write and host out-of-process plugins."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _family_group(name: str, help_text: str) -> click.Group:
    group = _Group(name=name, prefix=name, help=help_text, invoke_without_command=False)
    main.add_command(group)
    return group


check = _family_group(
    "check",
    "Conformance-check a plugin binary of one family: launch it as the real host would, "
    "verify the handshake, list its services, exercise the mandatory calls and the "
    "shutdown sequence. Exit 0 only when every check passed.",
)
inspect = _family_group("inspect", "Print a plugin's handshake and the services it serves.")
run = _family_group(
    "run",
    "Run a plugin under a plugwire host with its logs and the host's calls visible "
    "(go-plugin: prints the reattach config; nri: one sample pod/container lifecycle; "
    "cipd: an admission decision per --pin; drp: /config and --action calls). "
    "Ctrl-C stops it with the shutdown sequence.",
)


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script (``eval "$(plugwire completion bash)"``)."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    ctx = click.get_current_context()
    click.echo(cls(main, {}, "plugwire", "_PLUGWIRE_COMPLETE").source())
    ctx.exit()


@main.command()
def transports() -> None:
    """List the installed transports (the plugwire.transports entry points)."""
    eps = available_transports()
    for name in sorted(eps):
        ep = eps[name]
        dist = ep.dist.name if ep.dist else "?"
        try:
            ep.load()
            state = "ok"
        except Exception as exc:
            state = f"broken: {exc}"
        click.echo(f"{name:8} {ep.value:40} {dist:16} {state}")


DemoFunc = Callable[[], Awaitable[Sequence[DemoRow]]]


async def _run_demos(
    demos: dict[str, DemoFunc], per_family: float, progress: bool = False
) -> list[DemoRow]:
    rows: list[DemoRow] = []
    for family, func in demos.items():
        start = time.monotonic()
        if progress:
            click.echo(f"demo {family}: running...", err=True)
        try:
            with anyio.fail_after(per_family):
                rows.extend(await func())
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            logging.getLogger("plugwire.demo").debug("%s", traceback.format_exc())
            rows.append(DemoRow(family, "demo", False, detail, time.monotonic() - start))
        if progress:
            click.echo(f"demo {family}: done in {time.monotonic() - start:.1f} s", err=True)
    return rows


def _table(rows: Sequence[DemoRow]) -> str:
    header = ("family", "check", "result", "time", "detail")
    body = [
        (
            r.family,
            r.check,
            r.status,
            "" if r.seconds is None else f"{r.seconds * 1000:.0f} ms",
            r.detail,
        )
        for r in rows
    ]
    widths = [max(len(str(x[i])) for x in [header, *body]) for i in range(4)]
    lines = []
    for row in [header, *body]:
        cells = [str(c).ljust(w) for c, w in zip(row[:4], widths, strict=True)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 6)
    return "\n".join(lines)


@main.command()
@click.option("--family", "families", multiple=True, help="Run only these families.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds per family.")
@click.option(
    "--kube-local",
    is_flag=True,
    help="Start a local Kubernetes control plane (plugwire kube up) for the kube rows.",
)
def demo(families: tuple[str, ...], as_json: bool, timeout: float, kube_local: bool) -> None:
    """Launch the bundled example plugins of every installed family."""
    eps = {ep.name: ep for ep in metadata.entry_points(group="plugwire.demos")}
    order = ["core", "goplugin", "cipd", "ttrpc", "nri", "drp", "tasks", "kube"]
    names = sorted(eps, key=lambda n: (order.index(n) if n in order else len(order), n))
    if families:
        unknown = sorted(set(families) - set(eps))
        if unknown:
            raise click.UsageError(f"unknown families {unknown}; installed: {names}")
        names = [n for n in names if n in families]
    if kube_local:
        if "kube" not in names:
            raise click.UsageError("--kube-local needs the kube family: pip install plugwire[kube]")
        os.environ["PLUGWIRE_KUBE_LOCAL"] = "1"
        timeout = max(timeout, 1800.0)  # a cold start builds the control plane
    demos: dict[str, Any] = {}
    load_errors: list[DemoRow] = []
    for name in names:
        try:
            demos[name] = eps[name].load()
        except Exception as exc:
            load_errors.append(DemoRow(name, "load demo", False, f"{type(exc).__name__}: {exc}"))
    # Progress goes to stderr; with --json nothing but the JSON is printed.
    progress = not as_json
    if progress:
        os.environ["PLUGWIRE_DEMO_PROGRESS"] = "1"
    rows = load_errors + anyio.run(_run_demos, demos, timeout, progress)
    if as_json:
        click.echo(json.dumps([_asdict(r) for r in rows], indent=2))
    else:
        click.echo(_table(rows))
        failed = sum(r.failed for r in rows)
        skipped = sum(r.skipped for r in rows)
        click.echo(
            f"\n{len(rows) - failed - skipped} ok, {failed} failed, {skipped} skipped, "
            f"families: {', '.join(names)}"
        )
    if any(r.failed for r in rows):
        sys.exit(1)


def _asdict(row: DemoRow) -> dict[str, Any]:
    import attrs

    return {**attrs.asdict(row), "status": row.status}


if __name__ == "__main__":  # pragma: no cover
    main()
