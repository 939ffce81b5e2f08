"""``plugwire check goplugin``: is this binary a conformant hashicorp/go-plugin gRPC plugin?

The checker launches the command exactly as a go-plugin host does, through
:class:`~plugwire.grpc.goplugin.PluginClient` in a :class:`plugwire.core.Host` (clean
environment, magic cookie, ``PLUGIN_PROTOCOL_VERSIONS``, a private
``PLUGIN_UNIX_SOCKET_DIR``, ``PLUGIN_CLIENT_CERT`` with AutoMTLS), and checks:

- **handshake**: one announce line on stdout within the start timeout (a plugin that
  exits, prints junk or nothing fails here, with its stderr as evidence);
- **core version** (1), **app version** (one the host offered), **protocol** (``grpc``);
- **AutoMTLS certificate**: the plugin announced a server certificate and the TLS
  connection with both certificates works;
- **socket**: a unix socket inside the host's socket directory, owned by the user,
  not reachable by other users (or a loopback TCP address);
- **services**: the gRPC reflection list when the plugin serves reflection (every Go
  plugin does), else the go-plugin standard services probed one by one
  (``grpc.health.v1.Health``, ``plugin.GRPCBroker``, ``plugin.GRPCStdio``;
  ``plugin.GRPCController`` is exercised by the shutdown check); ``--plugin NAME=SERVICE``
  requires a service the host would dispense;
- **health**: ``Health.Check("plugin")`` answers SERVING (go-plugin's ``Ping``);
- **shutdown**: ``GRPCController.Shutdown`` answers and the process exits by itself
  within the grace (2 s, go-plugin's); a plugin that needs SIGTERM or SIGKILL fails.

``plugwire inspect goplugin`` runs the handshake and services part only and prints
them; ``plugwire run goplugin`` keeps the plugin running under a host, prints the
reattach config (``PLUGIN_REATTACH`` / Terraform's ``TF_REATTACH_PROVIDERS`` shape) and
logs every call the host makes until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import stat
import sys
import time
from collections.abc import Sequence
from typing import Any

import anyio
import click

import grpc
from plugwire.core.check import CheckReport, LogCapture, evidence_of, finish, tail
from plugwire.core.handshake import Handshake
from plugwire.core.host import Host

from .announce import CORE_PROTOCOL_VERSION, Announce
from .client import PluginClient
from .config import ClientConfig
from .controller import shutdown as controller_shutdown
from .health import check_health

__all__ = ["GoPluginCheck", "check", "check_command", "inspect_command", "run_command"]

_log = logging.getLogger("plugwire.grpc.goplugin.check")

REFLECTION = (
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)
STANDARD = ("grpc.health.v1.Health", "plugin.GRPCBroker", "plugin.GRPCStdio")


# ------------------------------------------------------------------ tiny protobuf


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """Decode one protobuf message into (field, wire type, value) without a schema."""
    out: list[tuple[int, int, Any]] = []
    i = 0

    def varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            b = data[i]
            i += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    while i < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            out.append((field, wire, varint()))
        elif wire == 2:
            n = varint()
            out.append((field, wire, data[i : i + n]))
            i += n
        elif wire == 1:
            out.append((field, wire, data[i : i + 8]))
            i += 8
        elif wire == 5:
            out.append((field, wire, data[i : i + 4]))
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


async def reflection_services(channel: grpc.aio.Channel, timeout: float = 5.0) -> list[str] | None:
    """The services listed by gRPC server reflection (v1, then v1alpha); ``None`` when
    the server serves neither (``UNIMPLEMENTED``).

    The bidirectional reflection method is called as a unary call: one request, the
    request side closed with it, one reply; a reflection server answers it and ends the
    stream when the requests end. As a stream, writing the request could lose the race
    with a server answering UNIMPLEMENTED at once, and grpcio then turns the call's
    status into INTERNAL "Internal error from Core" (seen in CI); a unary call sends and
    receives in one batch, so the server's own status is what comes back.
    """
    list_services = b"\x3a\x00"  # ServerReflectionRequest{list_services: ""}
    for method in REFLECTION:
        try:
            reply = await channel.unary_unary(method)(list_services, timeout=timeout)  # type: ignore[call-arg]
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                continue
            raise
        names: list[str] = []
        for field, _wire, value in _fields(bytes(reply)):
            if field == 6:  # list_services_response
                for f2, _w2, service in _fields(value):
                    if f2 == 1:
                        names += [v.decode() for f3, _w3, v in _fields(service) if f3 == 1]
            elif field == 7:  # error_response
                raise RuntimeError(f"reflection error response: {_fields(value)!r}")
        return sorted(names)
    return None


async def probe_service(channel: grpc.aio.Channel, service: str) -> tuple[bool | None, str]:
    """Whether ``service`` is served: ``True``/``False`` with the wire evidence, or
    ``None`` when the server answers an unknown method without naming the service.

    grpc-go answers ``unknown method M for service S`` for a known service and
    ``unknown service S`` otherwise; other servers may say only UNIMPLEMENTED."""
    method = f"/{service}/PlugwireProbeNoSuchMethod"
    try:
        await channel.unary_unary(method)(b"", timeout=5)  # type: ignore[call-arg]
    except grpc.aio.AioRpcError as exc:
        details = exc.details() or ""
        seen = f"{exc.code().name}: {details}"
        if f"unknown service {service}" in details:
            return False, seen
        if "unknown method" in details and service in details:
            return True, seen
        return None, seen
    return True, "a probe call to an unknown method succeeded"


async def _probe_stream(channel: grpc.aio.Channel, method: str, *, close: bool) -> str | None:
    """Open a stream; ``None`` when it is served, else the status that refused it."""
    call: Any = channel.stream_stream(method)(timeout=5)  # type: ignore[call-arg]
    try:
        if close:
            await call.done_writing()
        with anyio.move_on_after(0.3):
            await call.code()
    finally:
        still_open = not call.done()
        if still_open:
            call.cancel()
    if still_open:
        return None
    code = await call.code()
    if code in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
        return None
    return f"{code.name}: {await call.details()}"


# ------------------------------------------------------------------ the checker


class GoPluginCheck:
    """One run of the checker against ``cmd`` (see the module docstring)."""

    def __init__(
        self,
        cmd: Sequence[str],
        *,
        handshake: Handshake,
        auto_mtls: bool = True,
        multiplex: bool = False,
        plugins: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        start_timeout: float = 20.0,
        grace: float = 2.0,
    ) -> None:
        self.cmd = list(cmd)
        self.handshake = handshake
        self.auto_mtls = auto_mtls
        self.multiplex = multiplex
        self.plugins = dict(plugins or {})
        self.env = dict(env or {})
        self.start_timeout = start_timeout
        self.grace = grace
        self.report = CheckReport("goplugin", " ".join(self.cmd))
        self.stderr: list[str] = []

    def config(self) -> ClientConfig:
        return ClientConfig(
            handshake=self.handshake,
            cmd=self.cmd,
            env=self.env,
            auto_mtls=self.auto_mtls,
            multiplex=self.multiplex,
            start_timeout=self.start_timeout,
            kill_grace=self.grace,
            name="plugin-under-check",
        )

    async def run(self, *, inspect_only: bool = False) -> CheckReport:
        r = self.report
        r.facts["cookie"] = f"{self.handshake.magic_cookie_key}={self.handshake.magic_cookie_value}"
        r.facts["offered versions"] = list(self.handshake.protocol_versions)
        capture = LogCapture(self.stderr)
        plugin_log = logging.getLogger("plugwire.plugin.plugin-under-check")
        plugin_log.addHandler(capture)
        try:
            async with Host("plugwire-check") as host:
                client = PluginClient(self.config())
                started = await self._handshake(host, client)
                if not started:
                    return r
                self._announce_checks(client)
                channel = getattr(client, "_raw_channel", None) or client.channel
                await self._services(client, channel)
                if inspect_only:
                    return r
                await self._health(channel)
                await self._shutdown(client, channel)
        finally:
            plugin_log.removeHandler(capture)
        return r

    async def _handshake(self, host: Host, client: PluginClient) -> bool:
        r = self.report
        async with r.step("handshake") as step:
            try:
                await host.launch(client)
            except BaseException:
                with contextlib.suppress(Exception):
                    await client.aclose()
                raise
            announce: Announce | None = getattr(client, "_announce", None)
            line = announce.format() if announce else "?"
            r.facts["announce"] = line
            step.detail = f"announce line {line[:60] + ('...' if len(line) > 60 else '')!r}"
        if r.failed("handshake"):
            row = r.results[-1]
            if self.stderr and "stderr" not in row.evidence:
                row.evidence += f"; plugin stderr: {tail(self.stderr)}"
            for name in ("core version", "app version", "protocol", "services", "shutdown"):
                r.skip(name, "no handshake")
            return False
        return True

    def _announce_checks(self, client: PluginClient) -> None:
        r = self.report
        announce: Announce | None = getattr(client, "_announce", None)
        assert announce is not None
        r.add(
            "core version",
            announce.core_version == CORE_PROTOCOL_VERSION,
            f"{announce.core_version}",
            f"expected {CORE_PROTOCOL_VERSION}, announced {announce.core_version}",
        )
        offered = sorted(self.handshake.protocol_versions)
        r.add(
            "app version",
            announce.app_version in offered,
            f"v{announce.app_version} of offered {offered}",
            f"announced {announce.app_version}, offered {offered}",
        )
        r.facts["negotiated version"] = announce.app_version
        r.add("protocol", announce.protocol == "grpc", announce.protocol, "expected grpc")
        if self.auto_mtls:
            cert = announce.server_cert
            if cert:
                from cryptography import x509

                parsed = x509.load_der_x509_certificate(cert)
                key = parsed.public_key()
                curve = getattr(getattr(key, "curve", None), "name", type(key).__name__)
                r.add(
                    "AutoMTLS certificate",
                    True,
                    f"{parsed.subject.rfc4514_string()} ({curve}), valid until "
                    f"{parsed.not_valid_after_utc:%Y-%m-%d}; mTLS connection up",
                )
            else:
                r.add(
                    "AutoMTLS certificate", False, "no server certificate", "announce field 6 empty"
                )
        else:
            r.skip("AutoMTLS certificate", "--no-auto-mtls")
        if self.multiplex:
            r.add(
                "broker multiplexing",
                announce.multiplex is True,
                f"announce field 7 = {announce.multiplex}",
                "PLUGIN_MULTIPLEX_GRPC was set but the plugin did not answer true",
            )
        assert client.address is not None
        r.facts["address"] = f"{client.address.network}:{client.address.address}"
        r.facts["pid"] = client.pid
        rc = client.reattach_config()
        if rc is not None:
            r.facts["reattach"] = rc.to_json()
        self._socket_check(client)

    def _socket_check(self, client: PluginClient) -> None:
        r = self.report
        address = client.address
        assert address is not None
        if address.network == "tcp":
            host = address.address.rsplit(":", 1)[0]
            r.add(
                "socket",
                host in ("127.0.0.1", "localhost", "[::1]", "::1"),
                f"tcp {address.address}",
                "a TCP plugin should listen on loopback only",
            )
            return
        path = address.address
        socket_dir = getattr(client, "_socket_dir", None)
        try:
            st = os.stat(path)
            dir_st = os.stat(os.path.dirname(path))
        except OSError as exc:
            r.add("socket", False, path, f"stat failed: {exc}")
            return
        problems = []
        if not stat.S_ISSOCK(st.st_mode):
            problems.append("not a socket")
        if st.st_uid != os.getuid():
            problems.append(f"owned by uid {st.st_uid}, not {os.getuid()}")
        if socket_dir and os.path.dirname(os.path.realpath(path)) != os.path.realpath(socket_dir):
            problems.append(f"not in PLUGIN_UNIX_SOCKET_DIR {socket_dir}")
        others_dir = dir_st.st_mode & 0o001  # search permission on the directory
        others_sock = st.st_mode & 0o002
        if others_dir and others_sock:
            problems.append("other users can connect (directory o+x and socket o+w)")
        detail = f"{path} socket {stat.filemode(st.st_mode)} in dir {stat.filemode(dir_st.st_mode)}"
        r.add("socket", not problems, detail, "; ".join(problems))

    async def _services(self, client: PluginClient, channel: grpc.aio.Channel) -> None:
        r = self.report
        async with r.step("services") as step:
            listed = await reflection_services(channel)
            if listed is not None:
                r.services = listed
                r.facts["discovery"] = "gRPC reflection"
                missing = [s for s in STANDARD if s not in listed]
                step.detail = f"{len(listed)} services via gRPC reflection"
                if missing:
                    step.fail(step.detail, f"standard services missing from reflection: {missing}")
            else:
                r.facts["discovery"] = "probed (no gRPC reflection)"
                found, evidence = await self._probe_standard(channel)
                r.services = found
                step.detail = f"{len(found)} standard services probed (no reflection)"
                if evidence:
                    step.fail(step.detail, "; ".join(evidence))
        for name, service in self.plugins.items():
            async with r.step(f"plugin {name}") as step:
                if r.facts.get("discovery") == "gRPC reflection":
                    ok = service in r.services
                    step.detail = f"{service} {'served' if ok else 'not served'}"
                    if not ok:
                        step.fail(step.detail, f"reflection lists {r.services}")
                    continue
                present, seen = await probe_service(channel, service)
                step.detail = f"{service}: {seen}"
                if present is False:
                    step.fail(f"{service} not served", seen)
                elif present is None:
                    step.skip(f"{service}: the server does not say ({seen})")

    async def _probe_standard(self, channel: grpc.aio.Channel) -> tuple[list[str], list[str]]:
        found: list[str] = []
        problems: list[str] = []
        try:
            await check_health(channel, timeout=5)
            found.append("grpc.health.v1.Health")
        except grpc.aio.AioRpcError as exc:
            problems.append(f"grpc.health.v1.Health: {evidence_of(exc)}")
        refused = await _probe_stream(channel, "/plugin.GRPCBroker/StartStream", close=True)
        if refused is None:
            found.append("plugin.GRPCBroker")
        else:
            problems.append(f"plugin.GRPCBroker/StartStream: {refused}")
        refused = await _probe_stream(channel, "/plugin.GRPCStdio/StreamStdio", close=True)
        if refused is None:
            found.append("plugin.GRPCStdio")
        else:
            problems.append(f"plugin.GRPCStdio/StreamStdio: {refused}")
        found.append("plugin.GRPCController (checked by shutdown)")
        return found, problems

    async def _health(self, channel: grpc.aio.Channel) -> None:
        async with self.report.step("health") as step:
            status = await check_health(channel, timeout=5)
            step.detail = f"Health.Check(service='plugin') -> {status}"
            if status != 1:
                step.fail(step.detail, f"expected SERVING (1), got {status}")
            else:
                step.detail = "Health.Check(service='plugin') -> SERVING"

    async def _shutdown(self, client: PluginClient, channel: grpc.aio.Channel) -> None:
        r = self.report
        async with r.step("shutdown") as step:
            proc = client.process
            assert proc is not None
            proc.expect_exit()
            t0 = time.monotonic()
            answered = "answered"
            try:
                await controller_shutdown(channel, timeout=self.grace)
            except grpc.aio.AioRpcError as exc:
                # A plugin may drop the connection while answering: fine if it exits.
                answered = f"ended with {exc.code().name}: {exc.details()}"
            with anyio.move_on_after(max(0.0, self.grace - (time.monotonic() - t0))):
                await proc.done.wait()
            waited = time.monotonic() - t0
            if proc.done.is_set():
                step.detail = (
                    f"GRPCController.Shutdown {answered}; exited {proc.returncode} "
                    f"after {waited * 1000:.0f} ms"
                )
                if proc.returncode != 0:
                    step.fail(step.detail, f"exit status {proc.returncode}")
            else:
                step.fail(
                    "still running after Shutdown",
                    f"GRPCController.Shutdown {answered}, process {proc.pid} still running "
                    f"{self.grace:.1f} s later (a host now sends SIGTERM, then SIGKILL)",
                )
        with contextlib.suppress(Exception):
            await client.aclose()


async def check(cmd: Sequence[str], **options: Any) -> CheckReport:
    """Run every check against ``cmd``; see :class:`GoPluginCheck` for the options."""
    return await GoPluginCheck(cmd, **options).run()


# ------------------------------------------------------------------ click


def _pairs(values: Sequence[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r}: expected {what}")
        out[key] = val
    return out


def _options(func: Any) -> Any:
    options = [
        click.argument("cmd", nargs=-1, required=True),
        click.option(
            "--cookie-key", default="BASIC_PLUGIN", show_default=True, help="Magic cookie key."
        ),
        click.option(
            "--cookie-value", default="hello", show_default=True, help="Magic cookie value."
        ),
        click.option(
            "--protocol-version",
            "versions",
            type=int,
            multiple=True,
            help="App protocol version the host offers (repeatable; default 1).",
        ),
        click.option(
            "--plugin",
            "plugins",
            multiple=True,
            help="NAME=grpc.Service: a plugin the host dispenses and the service serving it.",
        ),
        click.option(
            "--auto-mtls/--no-auto-mtls", default=True, show_default=True, help="AutoMTLS."
        ),
        click.option("--multiplex", is_flag=True, help="Ask for gRPC broker multiplexing."),
        click.option("--env", "env", multiple=True, help="KEY=VALUE for the plugin (repeatable)."),
        click.option("--start-timeout", default=20.0, show_default=True, help="Seconds."),
        click.option("--grace", default=2.0, show_default=True, help="Shutdown grace, seconds."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON (for CI)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _checker(opts: dict[str, Any]) -> GoPluginCheck:
    return GoPluginCheck(
        opts["cmd"],
        handshake=Handshake(
            opts["cookie_key"], opts["cookie_value"], protocol_versions=opts["versions"] or (1,)
        ),
        auto_mtls=opts["auto_mtls"],
        multiplex=opts["multiplex"],
        plugins=_pairs(opts["plugins"], "NAME=grpc.Service"),
        env=_pairs(opts["env"], "KEY=VALUE"),
        start_timeout=opts["start_timeout"],
        grace=opts["grace"],
    )


@click.command("goplugin")
@_options
def check_command(**opts: Any) -> None:
    """Check a hashicorp/go-plugin gRPC plugin: plugwire check goplugin -- ./my-plugin"""
    report = anyio.run(_checker(opts).run)
    finish(report, as_json=opts["as_json"])


@click.command("goplugin")
@_options
def inspect_command(**opts: Any) -> None:
    """Print a go-plugin plugin's handshake and served services."""

    async def go() -> CheckReport:
        return await _checker(opts).run(inspect_only=True)

    finish(anyio.run(go), as_json=opts["as_json"])


@click.command("goplugin")
@_options
@click.option("--ping-every", default=0.0, help="Health-check every N seconds (0: never).")
def run_command(ping_every: float, **opts: Any) -> None:
    """Run a go-plugin plugin under a plugwire host until Ctrl-C; print its reattach
    config; its logs (stderr, GRPCStdio) and every call the host makes are logged."""
    checker = _checker(opts)
    logging.getLogger("plugwire").setLevel(min(logging.getLogger().level, logging.INFO))
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("plugwire.plugin").setLevel(logging.DEBUG)

    async def go() -> None:
        cfg = checker.config()
        cfg = ClientConfig(
            **{
                **{f: getattr(cfg, f) for f in ("handshake", "cmd", "env", "auto_mtls")},
                "multiplex": cfg.multiplex,
                "start_timeout": cfg.start_timeout,
                "kill_grace": cfg.kill_grace,
                "name": os.path.basename(cfg.cmd[0]) if cfg.cmd else "plugin",
                "sync_stdout": _LogWriter("stdout"),
                "sync_stderr": _LogWriter("stderr"),
            }
        )
        async with Host("plugwire-run") as host:
            client = await host.launch(PluginClient(cfg))
            rc = client.reattach_config()
            announce: Announce | None = getattr(client, "_announce", None)
            click.echo(f"announce: {announce.format() if announce else '?'}")
            if rc is not None:
                click.echo("reattach config (PLUGIN_REATTACH / TF_REATTACH_PROVIDERS value):")
                click.echo(json.dumps(rc.to_json()))
            click.echo("running; Ctrl-C stops it (Shutdown RPC, grace, SIGTERM, SIGKILL)")
            sys.stdout.flush()
            try:
                while not client.exited:
                    if ping_every > 0:
                        await anyio.sleep(ping_every)
                        t0 = time.monotonic()
                        await client.ping()
                        _log.info("call Health.Check -> SERVING in %.1f ms", _ms(t0))
                    else:
                        await client.wait_exited(3600)
            finally:
                _log.info("stopping %s: GRPCController.Shutdown, then signals", client.name)
                with anyio.CancelScope(shield=True):
                    await host.aclose()
                proc = client.process
                _log.info("stopped; exit status %s", proc.returncode if proc else None)

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        anyio.run(go)


def _ms(t0: float) -> float:
    return (time.monotonic() - t0) * 1000


class _LogWriter:
    def __init__(self, stream: str) -> None:
        self.log = logging.getLogger(f"plugwire.plugin.{stream}")

    def write(self, data: bytes) -> int:
        for line in data.decode(errors="replace").splitlines():
            self.log.info("%s", line)
        return len(data)
