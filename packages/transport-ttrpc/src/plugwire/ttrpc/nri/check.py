"""``plugwire check nri``: is this binary a conformant containerd NRI plugin?

The checker runs the plugin as containerd runs a pre-installed plugin: a
:class:`~plugwire.ttrpc.nri.Runtime` finds it as ``NN-name`` in a plugin directory
(the command is linked or wrapped there), launches it with one end of a socketpair as
fd 3 and only ``NRI_PLUGIN_NAME``/``NRI_PLUGIN_IDX``/``NRI_PLUGIN_SOCKET`` in its
environment, and checks:

- **registration**: ``RegisterPlugin`` arrives within the registration timeout (5 s
  upstream) with the name and index it was given;
- **configure**: the runtime's ``Configure`` was answered and the plugin subscribed
  to at least one event (its event mask is listed as its services);
- **synchronize**: the plugin answered ``Synchronize`` (done before it counts as
  connected);
- **events**: ``RunPodSandbox``, ``CreateContainer`` (its adjustments are shown),
  ``StartContainer``, ``StopContainer``, ``RemoveContainer``, ``StopPodSandbox``,
  ``RemovePodSandbox`` on a sample pod and container: the plugin answers each one it
  subscribed to and stays connected;
- **shutdown**: the runtime closes the connection (NRI has no Shutdown RPC) and the
  plugin exits by itself within the grace (1 s); one that needs SIGTERM or SIGKILL
  fails.

``plugwire run nri`` runs a plugin the same way, logs its registration, sends the same
sample lifecycle once (each call and the adjustment or updates it got back) and keeps
it running until Ctrl-C (``--once``: stop after the lifecycle).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import click

from plugwire.core.check import (
    CheckReport,
    LogCapture,
    evidence_of,
    finish,
    run_until_interrupted,
    tail,
)
from plugwire.core.errors import PlugwireError

from . import api
from ._generated import api_pb2 as pb
from .runtime import Runtime

__all__ = ["NriCheck", "check_command", "inspect_command", "run_command", "sample_lifecycle"]


def _wrapper(directory: Path, name: str, cmd: Sequence[str]) -> Path:
    """``directory/name``: the command itself (a symlink) or a shell wrapper for a
    command with arguments."""
    path = directory / name
    exe = (shutil.which(cmd[0]) if os.sep not in cmd[0] else None) or cmd[0]
    exe = os.path.abspath(exe)
    if len(cmd) == 1:
        path.symlink_to(exe)
    else:
        import shlex

        path.write_text(f"#!/bin/sh\nexec {shlex.join([exe, *cmd[1:]])}\n")
        path.chmod(0o755)
    return path


def _install(root: Path, full: str, cmd: Sequence[str], config: str | None) -> tuple[Path, Path]:
    """The plugin and config directories a runtime is given, with the plugin in them."""
    plugins, conf = root / "plugins", root / "conf.d"
    plugins.mkdir()
    conf.mkdir()
    _wrapper(plugins, full, cmd)
    if config is not None:
        (conf / f"{full}.conf").write_text(config)
    return plugins, conf


class NriCheck:
    """One run of the NRI checker (see the module docstring)."""

    def __init__(
        self,
        cmd: Sequence[str],
        *,
        name: str = "checked",
        idx: str = "10",
        config: str | None = None,
        registration_timeout: float = api.DEFAULT_REGISTRATION_TIMEOUT,
        grace: float = 1.0,
    ) -> None:
        self.cmd = list(cmd)
        self.name = name
        self.idx = idx
        self.config = config
        self.registration_timeout = registration_timeout
        self.grace = grace
        self.report = CheckReport("nri", " ".join(self.cmd))
        self.stderr: list[str] = []
        self.runtime_log: list[str] = []

    async def run(self, *, inspect_only: bool = False) -> CheckReport:
        r = self.report
        full = f"{self.idx}-{self.name}"
        capture = LogCapture(self.stderr)
        plugin_log = logging.getLogger(f"plugwire.plugin.{full}")
        plugin_log.addHandler(capture)
        runtime_log = logging.getLogger("plugwire.ttrpc.nri")
        runtime_capture = LogCapture(self.runtime_log, logging.WARNING)
        runtime_log.addHandler(runtime_capture)
        try:
            with tempfile.TemporaryDirectory(prefix="plugwire-check-nri-") as tmp:
                plugins, conf = _install(Path(tmp), full, self.cmd, self.config)
                async with Runtime(
                    "plugwire-check",
                    "0",
                    socket_path=None,
                    listen=False,
                    plugin_path=plugins,
                    config_path=conf,
                    registration_timeout=self.registration_timeout,
                ) as rt:
                    if not await self._registration(rt, full):
                        return r
                    if not inspect_only:
                        await self._events(rt, full)
                        await self._shutdown(rt, full)
        finally:
            plugin_log.removeHandler(capture)
            runtime_log.removeHandler(runtime_capture)
        return r

    async def _registration(self, rt: Runtime, full: str) -> bool:
        r = self.report
        async with r.step("registration") as step:
            found = {p.name: p for p in rt.plugins}
            if full not in found:
                seen = tail(self.runtime_log) or "nothing logged"
                stderr = tail(self.stderr) or "nothing"
                step.fail(
                    f"{full} did not register (timeout {self.registration_timeout} s)",
                    f"connected: {sorted(found) or 'none'}; runtime: {seen}; "
                    f"plugin stderr: {stderr}",
                )
            else:
                info = found[full]
                step.detail = f"RegisterPlugin name={info.base!r} idx={info.idx!r} pid {info.pid}"
                r.facts["pid"] = info.pid
        if r.failed("registration"):
            for name in ("configure + synchronize", "events", "shutdown"):
                r.skip(name, "not registered")
            return False
        info = {p.name: p for p in rt.plugins}[full]
        events = [e.name for e in api.Event if e.bit & info.events]
        r.services = [f"Plugin.{e}" for e in events]
        r.facts["event mask"] = hex(info.events)
        r.facts["discovery"] = "NRI Configure reply (subscribed events)"
        r.add(
            "configure + synchronize",
            bool(events),
            f"subscribed to {len(events)} events: {', '.join(events)}",
            "Configure answered with an empty event mask: the plugin would never be called",
        )
        return True

    async def _events(self, rt: Runtime, full: str) -> None:
        r = self.report
        calls = sample_lifecycle(rt)
        mask = {p.name: p.events for p in rt.plugins}.get(full, 0)
        unsent = []
        for name, event, call in calls:
            if not event.bit & mask:
                await call()  # the runtime does not send it; the sequence stays realistic
                unsent.append(name)
                continue
            async with r.step(f"event {name}") as step:
                reply = await call()
                still = full in {p.name for p in rt.plugins}
                if not still:
                    step.fail(
                        "plugin dropped",
                        f"after {name} the runtime dropped it; stderr: {tail(self.stderr)}",
                    )
                    break
                step.detail = "answered"
                if isinstance(reply, pb.CreateContainerResponse):
                    step.detail = "adjusted: " + describe_adjustment(reply.adjust)
        if unsent:
            r.facts["events not subscribed (not sent)"] = unsent

    async def _shutdown(self, rt: Runtime, full: str) -> None:
        r = self.report
        async with r.step("shutdown") as step:
            handle = rt.host.plugins[full]
            proc = handle.process
            assert proc is not None
            t0 = time.monotonic()
            await rt.host.close(full)
            waited = time.monotonic() - t0
            status = proc.returncode
            step.detail = f"connection closed; exited {status} after {waited * 1000:.0f} ms"
            if status is None or status < 0 or waited > self.grace + 0.2:
                step.fail(
                    "did not exit when its connection closed",
                    f"exit status {status} after {waited:.1f} s (grace {self.grace} s; a negative "
                    f"status is the signal that stopped it); stderr: {tail(self.stderr)}",
                )


def sample_lifecycle(rt: Runtime) -> list[tuple[str, api.Event, Callable[[], Awaitable[Any]]]]:
    """The sample pod and container lifecycle the checker and ``run nri`` send: each
    call's name, its event and the call (its reply is the runtime's merged result)."""
    pod = pb.PodSandbox(id="plugwire-check-pod", name="check", uid="uid-check", namespace="default")
    ctr = pb.Container(
        id="plugwire-check-ctr", pod_sandbox_id=pod.id, name="ctr", state=pb.CONTAINER_CREATED
    )
    E = api.Event
    return [
        ("RunPodSandbox", E.RUN_POD_SANDBOX, lambda: rt.run_pod_sandbox(pod)),
        ("CreateContainer", E.CREATE_CONTAINER, lambda: rt.create_container(pod, ctr)),
        ("StartContainer", E.START_CONTAINER, lambda: rt.start_container(pod, ctr)),
        ("StopContainer", E.STOP_CONTAINER, lambda: rt.stop_container(pod, ctr)),
        ("RemoveContainer", E.REMOVE_CONTAINER, lambda: rt.remove_container(pod, ctr)),
        ("StopPodSandbox", E.STOP_POD_SANDBOX, lambda: rt.stop_pod_sandbox(pod)),
        ("RemovePodSandbox", E.REMOVE_POD_SANDBOX, lambda: rt.remove_pod_sandbox(pod)),
    ]


def describe_adjustment(adjust: pb.ContainerAdjustment) -> str:
    """A one-line summary of a CreateContainer adjustment (the check's format)."""
    parts = []
    if adjust.env:
        parts.append("env " + ", ".join(f"{e.key}={e.value}" for e in adjust.env))
    if adjust.annotations:
        parts.append(f"{len(adjust.annotations)} annotations")
    if adjust.mounts:
        parts.append(f"{len(adjust.mounts)} mounts")
    return "; ".join(parts) or "nothing"


def _describe_updates(updates: Sequence[pb.ContainerUpdate]) -> str:
    if not updates:
        return "no updates"
    return "updates for " + ", ".join(u.container_id or "?" for u in updates)


def _options(func: Any) -> Any:
    options = [
        click.argument("cmd", nargs=-1, required=True),
        click.option("--name", default="checked", show_default=True, help="NRI_PLUGIN_NAME."),
        click.option("--idx", default="10", show_default=True, help="NRI_PLUGIN_IDX."),
        click.option(
            "--config",
            type=click.Path(exists=True, dir_okay=False),
            default=None,
            help="Plugin configuration file (sent in Configure).",
        ),
        click.option("--registration-timeout", default=5.0, show_default=True, help="Seconds."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON (for CI)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _checker(opts: dict[str, Any]) -> NriCheck:
    config = Path(opts["config"]).read_text() if opts["config"] else None
    return NriCheck(
        opts["cmd"],
        name=opts["name"],
        idx=opts["idx"],
        config=config,
        registration_timeout=opts["registration_timeout"],
    )


@click.command("nri")
@_options
def check_command(**opts: Any) -> None:
    """Check an NRI plugin, launched as a pre-installed plugin: plugwire check nri -- ./plugin"""
    finish(anyio.run(_checker(opts).run), as_json=opts["as_json"])


@click.command("nri")
@_options
def inspect_command(**opts: Any) -> None:
    """Print an NRI plugin's registration and subscribed events."""

    async def go() -> CheckReport:
        return await _checker(opts).run(inspect_only=True)

    finish(anyio.run(go), as_json=opts["as_json"])


@click.command("nri")
@click.argument("cmd", nargs=-1, required=True)
@click.option("--name", default="run", show_default=True, help="NRI_PLUGIN_NAME.")
@click.option("--idx", default="10", show_default=True, help="NRI_PLUGIN_IDX.")
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Plugin configuration file (sent in Configure).",
)
@click.option("--registration-timeout", default=5.0, show_default=True, help="Seconds.")
@click.option("--once", is_flag=True, help="Stop after the sample lifecycle (no Ctrl-C wait).")
def run_command(
    cmd: tuple[str, ...],
    name: str,
    idx: str,
    config: str | None,
    registration_timeout: float,
    once: bool,
) -> None:
    """Run an NRI plugin under plugwire's NRI runtime until Ctrl-C: its registration,
    one sample pod/container lifecycle (each call and its adjustment or updates) and
    its logs (stderr): plugwire run nri -- ./my-plugin"""

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("plugwire.plugin").setLevel(logging.DEBUG)  # its stderr
    logging.getLogger("plugwire.ttrpc.nri").setLevel(logging.INFO)
    log = logging.getLogger("plugwire.ttrpc.nri.run")
    full = f"{idx}-{name}"
    config_text = Path(config).read_text() if config else None
    stderr: list[str] = []
    runtime_log: list[str] = []
    problems: list[str] = []

    async def update(updates: list[pb.ContainerUpdate]) -> list[pb.ContainerUpdate]:
        log.info(
            "plugin %s asked UpdateContainers: %s (no real containers here: refused)",
            full,
            _describe_updates(updates),
        )
        return list(updates)

    async def go() -> None:
        with tempfile.TemporaryDirectory(prefix="plugwire-run-nri-") as tmp:
            plugins, conf = _install(Path(tmp), full, cmd, config_text)
            async with Runtime(
                "plugwire-run",
                "0",
                socket_path=None,
                listen=False,
                plugin_path=plugins,
                config_path=conf,
                update=update,
                registration_timeout=registration_timeout,
            ) as rt:
                found = {p.name: p for p in rt.plugins}
                if full not in found:
                    problems.append(
                        f"{full} did not register within {registration_timeout} s; "
                        f"runtime: {tail(runtime_log) or 'nothing logged'}; "
                        f"plugin stderr: {tail(stderr) or 'nothing'}"
                    )
                    return
                info = found[full]
                events = [e.name for e in api.Event if e.bit & info.events]
                click.echo(
                    f"registered: name={info.base!r} idx={info.idx!r} pid {info.pid}; "
                    f"events: {', '.join(events) or 'none'}"
                )
                proc = rt.host.plugins[full].process
                assert proc is not None
                for call_name, event, call in sample_lifecycle(rt):
                    if not event.bit & info.events:
                        await call()  # the runtime does not send it
                        click.echo(f"call {call_name}: not subscribed (not sent)")
                        continue
                    try:
                        reply = await call()
                    except PlugwireError as exc:
                        problems.append(f"{call_name}: {evidence_of(exc)}")
                        click.echo(f"call {call_name}: failed: {evidence_of(exc)}")
                    else:
                        if isinstance(reply, pb.CreateContainerResponse):
                            outcome = (
                                f"adjusted: {describe_adjustment(reply.adjust)}; "
                                f"{_describe_updates(reply.update)}"
                            )
                        elif isinstance(reply, pb.StopContainerResponse):
                            outcome = _describe_updates(reply.update)
                        else:
                            outcome = "answered"
                        click.echo(f"call {call_name}: {outcome}")
                    if full not in {p.name for p in rt.plugins}:
                        problems.append(
                            f"the runtime dropped {full} after {call_name}; "
                            f"plugin stderr: {tail(stderr) or 'nothing'}"
                        )
                        return
                try:
                    if not once:
                        click.echo(
                            "running; Ctrl-C stops it (connection closed, grace, SIGTERM, SIGKILL)"
                        )
                        sys.stdout.flush()
                        await proc.done.wait()
                        problems.append(f"the plugin exited by itself: status {proc.returncode}")
                finally:
                    log.info("stopping %s: connection closed, then signals", full)
                    with anyio.CancelScope(shield=True):
                        await rt.host.close(full)
                    log.info("stopped; exit status %s", proc.returncode)

    captures = [
        (logging.getLogger(f"plugwire.plugin.{full}"), LogCapture(stderr)),
        (logging.getLogger("plugwire.ttrpc.nri"), LogCapture(runtime_log, logging.WARNING)),
    ]
    run_until_interrupted(go, problems=problems, captures=captures)
