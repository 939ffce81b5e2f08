"""``plugwire kube``: ``plugwire kube up`` runs a local control plane (:mod:`.local`)."""

from __future__ import annotations

import signal
from pathlib import Path

import anyio
import click

from .local import LocalCluster, LocalClusterError

__all__ = ["kube"]


@click.group()
def kube() -> None:
    """Kubernetes-deployed plugins."""


@kube.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep certificates, kubeconfig, etcd data and logs here (kept on exit).",
)
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to become ready.")
def up(workdir: Path | None, timeout: float) -> None:
    """Start a real local control plane (etcd, kube-apiserver, controller-manager,
    scheduler, kwok node) on 127.0.0.1 and keep it running until Ctrl-C.

    The first run builds the control plane binary into ~/.cache/plugwire (minutes);
    later runs start in seconds. Prints the KUBECONFIG to use.
    """

    def progress(message: str) -> None:
        click.echo(message, err=True)

    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)

    async def go() -> None:
        async with LocalCluster(
            workdir, progress=progress, keep=workdir is not None, timeout=timeout
        ) as cluster:
            click.echo(f"export KUBECONFIG={cluster.kubeconfig}")
            click.echo(f"export PLUGWIRE_KUBECONFIG={cluster.kubeconfig}")
            click.echo(f"# API server {cluster.server}; Ctrl-C stops it", err=True)
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _sig in signals:
                    click.echo("stopping the control plane", err=True)
                    return

    try:
        anyio.run(go)
    except LocalClusterError as exc:
        raise click.ClickException(str(exc)) from None
