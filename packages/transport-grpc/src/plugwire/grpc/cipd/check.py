"""``plugwire check cipd``: is this binary a conformant CIPD admission plugin?

The checker runs the plugin as the CIPD client does, through a
:class:`~plugwire.grpc.cipd.CipdHost` (LUCI's ``plugin/host``): the process starts on
the first admission check, reads the ``{port, ticket}`` handshake line on stdin and
must dial back and open ``Admissions.ListAdmissions`` with the ticket. It checks:

- **handshake**: the plugin connected and opened its admission stream within the
  connect timeout, giving its version (a plugin that exits, never connects or
  presents a wrong ticket fails, with its exit status and stderr as evidence);
- **admission decisions**: every ``--pin`` (default: one package under
  ``experimental/`` and one elsewhere) gets a decision, admitted or denied with a
  reason; an undecided check (the timeout) or a crash fails;
- **shutdown**: the host closes the plugin's stdin and the plugin exits by itself
  within the grace (5 s upstream); one needing SIGTERM or SIGKILL fails.

The host answers ``Host.ListMetadata`` from an empty metadata source (``--metadata
KEY=VALUE`` adds entries for every checked pin) and logs ``Host.Log`` calls; the
calls the plugin made into the host are listed as its services.

``plugwire run cipd`` launches the plugin the same way, logs its handshake and the
decision on every ``--pin`` (default: one sample pin), then keeps it running until
Ctrl-C (``--once``: stop after the decisions) and stops it with the shutdown sequence.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
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
from plugwire.core.shutdown import ShutdownPolicy

from .errors import AdmissionDeniedError
from .host import CipdHost
from .metadata import MetadataEntry, StaticMetadataSource
from .pins import HashAlgo, ObjectRef, Pin

__all__ = ["CipdCheck", "check_command", "default_pins", "inspect_command", "run_command"]

SAMPLE_IID = ObjectRef(HashAlgo.SHA256, "a" * 64).instance_id


def default_pins() -> list[Pin]:
    return [Pin("plugwire/check/package", SAMPLE_IID), Pin("experimental/plugwire", SAMPLE_IID)]


class CipdCheck:
    """One run of the CIPD checker (see the module docstring)."""

    def __init__(
        self,
        cmd: Sequence[str],
        *,
        pins: Sequence[Pin] = (),
        metadata: dict[str, str] | None = None,
        connect_timeout: float = 10.0,
        decide_timeout: float = 10.0,
        grace: float = 5.0,
        service_url: str = "https://chrome-infra-packages.appspot.com",
    ) -> None:
        self.cmd = list(cmd)
        self.pins = list(pins) or default_pins()
        self.metadata = dict(metadata or {})
        self.connect_timeout = connect_timeout
        self.decide_timeout = decide_timeout
        self.grace = grace
        self.service_url = service_url
        self.report = CheckReport("cipd", " ".join(self.cmd))
        self.stderr: list[str] = []

    async def run(self, *, inspect_only: bool = False) -> CheckReport:
        """Every check; ``inspect_only``: the handshake and the shutdown only (one
        admission check is still asked for: it is what starts a CIPD plugin)."""
        r = self.report
        source = StaticMetadataSource()
        for pin in self.pins:
            for key, value in self.metadata.items():
                source.add(pin, MetadataEntry(key, value.encode()))
        capture = LogCapture(self.stderr)
        plugin_log = logging.getLogger("plugwire.plugin.plugin-under-check")
        plugin_log.addHandler(capture)
        try:
            async with CipdHost(
                service_url=self.service_url,
                metadata=source,
                shutdown=ShutdownPolicy(grace=self.grace, term_grace=1.0),
            ) as host:
                plugin = await host.launch(
                    self.cmd, name="plugin-under-check", connect_timeout=self.connect_timeout
                )
                pins = self.pins[:1] if inspect_only else self.pins
                decisions = [plugin.check_admission(pin) for pin in pins]
                async with r.step("handshake") as step:
                    t0 = time.monotonic()
                    with anyio.move_on_after(self.connect_timeout + 1):
                        while plugin.plugin_version is None and plugin.error is None:  # noqa: ASYNC110
                            await anyio.sleep(0.02)
                    if plugin.plugin_version is None:
                        why = evidence_of(plugin.error) if plugin.error else "no ListAdmissions"
                        step.fail("no admission stream", f"{why}; stderr: {tail(self.stderr)}")
                    else:
                        step.detail = (
                            f"dialled 127.0.0.1:{host.port} with its ticket; ListAdmissions "
                            f"version {plugin.plugin_version!r} after "
                            f"{(time.monotonic() - t0) * 1000:.0f} ms"
                        )
                        r.facts["plugin version"] = plugin.plugin_version
                if r.failed("handshake"):
                    if not inspect_only:
                        r.skip("admission decisions", "no handshake")
                    r.skip("shutdown", "no handshake")
                    return r
                r.services = ["cipd.plugin.Admissions/ListAdmissions (the plugin's stream)"]
                r.facts["discovery"] = "the CIPD plugin protocol (the plugin serves nothing)"
                r.facts["handshake"] = (
                    f'stdin: {{"port": {host.port}, "ticket": "..."}}; the plugin dialled back '
                    "and opened Admissions.ListAdmissions with the ticket"
                )
                checked = [] if inspect_only else list(zip(pins, decisions, strict=True))
                for pin, promise in checked:
                    async with r.step(f"admission {pin.package}") as step:
                        with anyio.move_on_after(self.decide_timeout):
                            try:
                                await promise.wait()
                                step.detail = "admitted"
                            except AdmissionDeniedError as exc:
                                step.detail = f"denied: {exc.message}"
                            continue
                        step.fail(
                            "undecided",
                            f"no decision within {self.decide_timeout} s; "
                            f"stderr: {tail(self.stderr)}",
                        )
                await self._shutdown(host, plugin)
        finally:
            plugin_log.removeHandler(capture)
        return r

    async def _shutdown(self, host: CipdHost, plugin: Any) -> None:
        async with self.report.step("shutdown") as step:
            proc = plugin.process
            if proc is None:
                step.fail("no process", "the plugin process is gone before shutdown")
                return
            t0 = time.monotonic()
            await host.host.close(plugin)
            waited = time.monotonic() - t0
            status = proc.returncode
            step.detail = f"stdin closed; exited {status} after {waited * 1000:.0f} ms"
            if status is None or status < 0 or waited > self.grace + 0.2:
                step.fail(
                    "did not exit when stdin closed",
                    f"exit status {status} after {waited:.1f} s (grace {self.grace} s; a "
                    f"negative status is the signal that stopped it)",
                )


def _metadata(items: tuple[str, ...]) -> list[tuple[str, str]]:
    """``--metadata KEY=VALUE`` options as (key, value) pairs, in order."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE")
        pairs.append((key, value))
    return pairs


def _pin(value: str) -> Pin:
    package, sep, iid = value.partition("@")
    try:
        return Pin(package, iid if sep else SAMPLE_IID)
    except Exception as exc:
        raise click.BadParameter(f"{value!r}: {exc}") from None


@click.command("cipd")
@click.argument("cmd", nargs=-1, required=True)
@click.option("--connect-timeout", default=10.0, show_default=True, help="Seconds.")
@click.option("--grace", default=5.0, show_default=True, help="Shutdown grace, seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for CI).")
def inspect_command(
    cmd: tuple[str, ...], connect_timeout: float, grace: float, as_json: bool
) -> None:
    """Print a CIPD admission plugin's handshake (its ListAdmissions version) and the
    calls it makes into the host, then stop it: plugwire inspect cipd -- ./plugin"""
    checker = CipdCheck(cmd, connect_timeout=connect_timeout, grace=grace)

    async def go() -> CheckReport:
        return await checker.run(inspect_only=True)

    finish(anyio.run(go), as_json=as_json)


@click.command("cipd")
@click.argument("cmd", nargs=-1, required=True)
@click.option("--pin", "pins", multiple=True, help="PACKAGE[@INSTANCE_ID] to check (repeatable).")
@click.option("--metadata", multiple=True, help="KEY=VALUE metadata of every checked pin.")
@click.option("--connect-timeout", default=10.0, show_default=True, help="Seconds.")
@click.option("--decide-timeout", default=10.0, show_default=True, help="Seconds per pin.")
@click.option("--grace", default=5.0, show_default=True, help="Shutdown grace, seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for CI).")
def check_command(
    cmd: tuple[str, ...],
    pins: tuple[str, ...],
    metadata: tuple[str, ...],
    connect_timeout: float,
    decide_timeout: float,
    grace: float,
    as_json: bool,
) -> None:
    """Check a CIPD admission plugin: plugwire check cipd -- ./my-admission-plugin"""
    meta = dict(_metadata(metadata))
    checker = CipdCheck(
        cmd,
        pins=[_pin(p) for p in pins],
        metadata=meta,
        connect_timeout=connect_timeout,
        decide_timeout=decide_timeout,
        grace=grace,
    )
    finish(anyio.run(checker.run), as_json=as_json)


@click.command("cipd")
@click.argument("cmd", nargs=-1, required=True)
@click.option(
    "--pin",
    "pins",
    multiple=True,
    help="PACKAGE@INSTANCE_ID to ask admission for (repeatable; default: one sample pin).",
)
@click.option("--metadata", multiple=True, help="KEY=VALUE metadata of every pin.")
@click.option("--connect-timeout", default=10.0, show_default=True, help="Seconds.")
@click.option("--decide-timeout", default=10.0, show_default=True, help="Seconds per pin.")
@click.option("--grace", default=5.0, show_default=True, help="Shutdown grace, seconds.")
@click.option("--once", is_flag=True, help="Stop after the decisions (no Ctrl-C wait).")
def run_command(
    cmd: tuple[str, ...],
    pins: tuple[str, ...],
    metadata: tuple[str, ...],
    connect_timeout: float,
    decide_timeout: float,
    grace: float,
    once: bool,
) -> None:
    """Run a CIPD admission plugin under a plugwire CipdHost until Ctrl-C: its
    handshake, the decision on every --pin and its logs (Host.Log calls, stderr):
    plugwire run cipd --pin PACKAGE@IID -- ./my-admission-plugin"""
    import sys

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("plugwire.plugin").setLevel(logging.DEBUG)  # Host.Log and stderr
    logging.getLogger("plugwire.grpc.cipd").setLevel(logging.INFO)  # the host's own log
    log = logging.getLogger("plugwire.grpc.cipd.run")
    checked = [_pin(p) for p in pins] or default_pins()[:1]
    source = StaticMetadataSource()
    for key, value in _metadata(metadata):
        for pin in checked:
            source.add(pin, MetadataEntry(key, value.encode()))
    stderr: list[str] = []
    problems: list[str] = []
    name = "plugin"

    async def go() -> None:
        async with CipdHost(
            metadata=source, shutdown=ShutdownPolicy(grace=grace, term_grace=1.0)
        ) as host:
            plugin = await host.launch(list(cmd), name=name, connect_timeout=connect_timeout)
            # A CIPD plugin starts on its first admission check.
            decisions = [plugin.check_admission(pin) for pin in checked]
            try:
                t0 = time.monotonic()
                with anyio.move_on_after(connect_timeout + 1):
                    while plugin.plugin_version is None and plugin.error is None:  # noqa: ASYNC110
                        await anyio.sleep(0.02)
                if plugin.plugin_version is None:
                    why = evidence_of(plugin.error) if plugin.error else "no ListAdmissions"
                    problems.append(
                        f"the plugin never opened its admission stream: {why}; "
                        f"stderr: {tail(stderr) or 'nothing'}"
                    )
                    return
                proc = plugin.process
                click.echo(
                    f"handshake: pid {proc.pid if proc else '?'} dialled 127.0.0.1:{host.port} "
                    f"with its ticket; ListAdmissions version {plugin.plugin_version!r} after "
                    f"{(time.monotonic() - t0) * 1000:.0f} ms"
                )
                for pin, promise in zip(checked, decisions, strict=True):
                    outcome = "undecided"
                    with anyio.move_on_after(decide_timeout):
                        try:
                            await promise.wait()
                            outcome = "admitted"
                        except AdmissionDeniedError as exc:
                            outcome = f"denied: {exc.message}"
                        except PlugwireError as exc:
                            outcome = f"failed: {evidence_of(exc)}"
                    if outcome == "undecided":
                        outcome = f"undecided after {decide_timeout} s"
                    if not outcome.startswith(("admitted", "denied")):
                        problems.append(f"{pin}: {outcome}; stderr: {tail(stderr) or 'nothing'}")
                    click.echo(f"admission {pin}: {outcome}")
                if not once and plugin.process is not None and not problems:
                    click.echo("running; Ctrl-C stops it (stdin closed, grace, SIGTERM, SIGKILL)")
                    sys.stdout.flush()
                    await plugin.process.done.wait()
                    problems.append(
                        f"the plugin exited by itself: status {plugin.process.returncode}; "
                        f"stderr: {tail(stderr) or 'nothing'}"
                    )
            finally:
                proc = plugin.process  # the handle forgets it once closed
                log.info("stopping %s: stdin closed, then signals", plugin.name)
                with anyio.CancelScope(shield=True):
                    await host.host.close(plugin)
                log.info("stopped; exit status %s", proc.returncode if proc else None)

    plugin_log = logging.getLogger(f"plugwire.plugin.{name}")
    run_until_interrupted(go, problems=problems, captures=[(plugin_log, LogCapture(stderr))])
