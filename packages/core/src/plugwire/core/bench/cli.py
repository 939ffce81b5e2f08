"""``plugwire bench``: list and run the installed benchmark suites."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import anyio
import click

from ._model import SuiteResult
from ._report import plot, table
from ._runner import Suite, expand, run_suite, steps

__all__ = ["bench", "installed_suites"]

ORDER = ["goplugin", "mtls", "ttrpc", "nri", "cipd", "drp", "tasks", "kube"]


def installed_suites() -> dict[str, Suite]:
    """The suites of every installed distribution (``plugwire.bench`` entry points)."""
    suites: dict[str, Suite] = {}
    for ep in metadata.entry_points(group="plugwire.bench"):
        suite = ep.load()
        if not isinstance(suite, Suite):
            raise click.ClickException(f"entry point {ep.value} is not a plugwire bench Suite")
        suites[ep.name] = suite
    return dict(
        sorted(suites.items(), key=lambda kv: (ORDER.index(kv[0]) if kv[0] in ORDER else 99, kv[0]))
    )


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[str, int], None]]:
    if not enabled:
        yield lambda _d, _n: None
        return
    try:
        from rich.progress import Progress
    except ImportError:
        try:
            from tqdm import tqdm
        except ImportError:
            yield lambda d, _n: click.echo(d, err=True)
            return
        with tqdm(total=total, file=sys.stderr) as bar:

            def tq(desc: str, n: int) -> None:
                bar.set_description(desc[:50])
                bar.update(n)

            yield tq
        return
    with Progress(transient=True) as progress:
        task = progress.add_task("bench", total=total)

        def advance(desc: str, n: int) -> None:
            progress.update(task, advance=n, description=desc[:50])

        yield advance


@click.command()
@click.argument("name", required=False)
@click.option("--list", "list_", is_flag=True, help="List the installed suites.")
@click.option("--quick", is_flag=True, help="Few calls, one round: a smoke run, not a measure.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def bench(
    name: str | None,
    list_: bool,
    quick: bool,
    json_path: Path | None,
    plot_path: Path | None,
    no_progress: bool,
) -> None:
    """Benchmark plugwire side by side with its peers: NAME is a suite, or `all`.

    Reports p50/p99 latency (1 in flight), calls/s at 1, 16 and 64 in flight, cold
    start (launch to first answered call), peak RSS of the plugin side, and ratios
    against the suite's baseline measured in the same run. A suite may run with
    others (several baselines: `terraform` runs its plan/apply/launch suites too).
    --json writes one object per suite (a list when several ran); --plot writes an SVG
    of latency against in-flight (when several ran, one panel per suite, and one
    FILE-SUITE.svg per suite beside it).
    """
    suites = installed_suites()
    if list_ or name is None:
        for key, suite in suites.items():
            with_ = ", ".join(s.name for s in expand(suite)[1:])
            click.echo(
                f"{key:10} {suite.title} (baseline: {suite.baseline})"
                + (f"; with {with_}" if with_ else "")
            )
        if name is None and not list_:
            click.echo("\nrun: plugwire bench NAME|all [--quick] [--json FILE] [--plot FILE.svg]")
        return
    # A suite runs with the suites it names in ``also``; each of those also runs alone.
    parts = {s.name: s for suite in suites.values() for s in expand(suite)[1:]}
    if name == "all":
        chosen = [s for suite in suites.values() for s in expand(suite)]
    elif name in suites:
        chosen = expand(suites[name])
    elif name in parts:
        chosen = [parts[name]]
    else:
        raise click.UsageError(f"unknown suite {name!r}; installed: {', '.join(suites)}, all")
    results: list[SuiteResult] = []
    show = not no_progress and sys.stderr.isatty() and not os.environ.get("CI")
    failed: list[str] = []
    for suite in chosen:
        key = suite.name
        total = steps(suite, quick, 8)
        with _progress(total, show) as tick:
            try:
                result = anyio.run(functools.partial(run_suite, suite, quick=quick, progress=tick))
            except Exception as exc:
                failed.append(f"{key}: {type(exc).__name__}: {exc}")
                click.echo(f"suite {key} failed: {type(exc).__name__}: {exc}", err=True)
                continue
        results.append(result)
        click.echo(table(result))
        click.echo()
    if json_path is not None:
        data = [r.to_json() for r in results]
        json_path.write_text(
            json.dumps(data[0] if name != "all" and len(chosen) == 1 and data else data, indent=2)
        )
    if plot_path is not None and results:
        plot(results, plot_path)
        if len(results) > 1:  # and one SVG per suite beside it: NAME-SUITE.svg
            for result in results:
                plot([result], plot_path.with_name(f"{plot_path.stem}-{result.suite}.svg"))
    if failed:
        raise click.ClickException("; ".join(failed))
