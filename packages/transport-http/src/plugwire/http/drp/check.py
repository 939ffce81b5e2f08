"""``plugwire check drp``: is this binary a conformant dr-provision plugin provider?

The checker runs the provider as dr-provision does, through a
:class:`~plugwire.http.drp.ProviderHost` (which serves a minimal dr-provision API
behind a bearer token, so ``RS_ENDPOINT``/``RS_TOKEN`` work), in a scratch working
directory, and checks:

- **define**: ``<provider> define`` exits 0 and prints one ``models.PluginProvider``
  JSON document with a Name, a PluginVersion, and AvailableActions that each have a
  Command and are declared once (the raw output is the evidence of a failure);
- **plugin version**: ``PluginVersion`` is 4, the only one dr-provision v4 talks to;
- **unpack**: ``<provider> unpack DIR`` exits 0, writes nothing outside ``DIR`` (nor
  into its working directory) and leaves no symlink pointing out of ``DIR``;
- **listen + READY!**: ``<provider> listen TO FROM`` prints ``READY!`` within the ready
  timeout and then accepts connections on ``TO`` (junk printed before it and the
  stderr of a provider that died are the evidence);
- **sockets**: the socket directory is the user's and mode 0700, ``TO`` is a unix
  socket owned by the user (its mode is shown: with a 0700 directory nobody else
  reaches it);
- **config**: ``POST /api-plugin/v4/config`` with ``--param`` values (the
  definition's RequiredParams must be given) answers 2xx;
- **action**: ``POST /api-plugin/v4/action`` for ``--action NAME``, or else the first
  *safe* action of the definition (a system action, no Model, no RequiredParams),
  answers 2xx with its result; without one the row is skipped and the actions listed;
- **unknown action**: an action the definition does not declare gets an HTTP error
  whose body is a ``models.Error`` (not a 2xx, not a closed connection);
- **stop**: ``POST /api-plugin/v4/stop`` is answered (or the provider exits while
  answering, as the Go library does) and the process exits 0 by itself within the
  grace (dr-provision waits 5 s); one that needs SIGTERM or SIGKILL fails.

``plugwire inspect drp`` runs define, listen and the sockets check and prints the
definition and the endpoints the provider serves; ``plugwire run drp`` keeps the
provider running under a host (``/config``, ``--action`` calls, its ``/log`` lines
and stderr logged) until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import click

from plugwire.core.check import CheckReport, evidence_of, finish, run_until_interrupted
from plugwire.core.errors import PlugwireError

from .app import PLUGIN_API
from .command import ProviderCommand, parse_definition
from .files import PathEscapeError
from .host import ProviderHost
from .models import Action, AvailableAction, Error, PluginProvider
from .plugin import ProviderPlugin

__all__ = ["DrpCheck", "check_command", "inspect_command", "run_command", "safe_action"]

#: The only PluginVersion dr-provision v4 runs.
PLUGIN_VERSION = 4
UNKNOWN_ACTION = "plugwire-check-no-such-action"


def safe_action(definition: PluginProvider) -> AvailableAction | None:
    """The first action that is safe to exercise blindly: a system action (no Model)
    without RequiredParams."""
    for action in definition.available_actions:
        if not action.model and not action.required_params:
            return action
    return None


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unpack_problems(root: Path, cwd: Path, target: Path) -> tuple[int, list[str]]:
    """(files written, escapes): anything beside ``target`` in ``root``, anything in
    the working directory ``cwd``, a symlink in ``target`` pointing out of it."""
    problems: list[str] = []
    stray = sorted(p.name for p in root.iterdir() if p.name not in ("cwd", "unpack"))
    stray += [f"cwd/{p.name}" for p in cwd.iterdir()]
    if stray:
        problems.append(f"wrote outside its directory: {stray}")
    files = 0
    top = target.resolve()
    for dirpath, dirnames, filenames in os.walk(target):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            if path.is_symlink():
                dest = path.resolve()
                if dest != top and top not in dest.parents:
                    problems.append(f"{path.relative_to(target)} -> {os.readlink(path)}")
            elif path.is_file():
                files += 1
    return files, problems


def _describe(action: AvailableAction) -> str:
    text = f"{action.command} ({action.model or 'system'})"
    if action.required_params:
        text += f" requires {', '.join(action.required_params)}"
    return text


class DrpCheck:
    """One run of the dr-provision checker (see the module docstring)."""

    def __init__(
        self,
        cmd: Sequence[str],
        *,
        params: Mapping[str, Any] | None = None,
        action: str | None = None,
        action_params: Mapping[str, Any] | None = None,
        exercise_action: bool = True,
        define_timeout: float = 20.0,
        ready_timeout: float = 10.0,
        call_timeout: float = 10.0,
        grace: float = 5.0,
    ) -> None:
        self.cmd = list(cmd)
        self.params = dict(params or {})
        self.action = action
        self.action_params = dict(action_params or {})
        self.exercise_action = exercise_action
        self.define_timeout = define_timeout
        self.ready_timeout = ready_timeout
        self.call_timeout = call_timeout
        self.grace = grace
        self.report = CheckReport("drp", " ".join(self.cmd))
        self.definition: PluginProvider | None = None

    async def run(self, *, inspect_only: bool = False) -> CheckReport:
        r = self.report
        with tempfile.TemporaryDirectory(prefix="plugwire-check-drp-") as tmp:
            root = Path(tmp)
            cwd = root / "cwd"
            cwd.mkdir()
            async with ProviderHost(name="plugwire-check") as drp:
                command = drp.provider(self.cmd, cwd=cwd).command
                if not await self._define(command):
                    for name in ("unpack", "listen + READY!", "sockets", "config", "stop"):
                        r.skip(name, "no valid definition")
                    return r
                if not inspect_only:
                    await self._unpack(command, root, cwd)
                plugin = drp.provider(
                    self.cmd,
                    cwd=cwd,
                    definition=self.definition,
                    ready_timeout=self.ready_timeout,
                    call_timeout=self.call_timeout,
                    define_timeout=self.define_timeout,
                )
                async with r.step("listen + READY!") as step:
                    t0 = time.monotonic()
                    await drp.launch(plugin)
                    step.detail = (
                        f"READY! after {(time.monotonic() - t0) * 1000:.0f} ms, "
                        f"pid {plugin.pid}, accepting on its socket"
                    )
                    if plugin.junk:
                        step.detail += f" (junk before it: {plugin.junk[:3]})"
                if r.failed("listen + READY!"):
                    for name in ("sockets", "config", "stop"):
                        r.skip(name, "not listening")
                    return r
                r.facts["pid"] = plugin.pid
                self._sockets(plugin)
                if inspect_only:
                    await drp.close(plugin)
                    return r
                configured = await self._config(plugin)
                if self.exercise_action:
                    await self._action(plugin, configured)
                    await self._unknown_action(plugin)
                await self._stop(drp, plugin)
        return r

    # -- define / unpack -----------------------------------------------------------

    async def _define(self, command: ProviderCommand) -> bool:
        r = self.report
        async with r.step("define") as step:
            out = await command.run(["define"], "define", self.define_timeout)
            try:
                definition = parse_definition(out, peer=command.name)
            except PlugwireError as exc:
                step.fail(exc.message, f"define printed: {_short(out.strip() or '(nothing)')}")
                return False
            self.definition = definition
            step.detail = (
                f"Name {definition.name!r}, Version {definition.version!r}, "
                f"{len(definition.available_actions)} AvailableActions"
            )
        if self.definition is None:
            return False
        d = self.definition
        r.add(
            "plugin version",
            d.plugin_version == PLUGIN_VERSION,
            f"PluginVersion {d.plugin_version}",
            f"dr-provision v4 runs PluginVersion {PLUGIN_VERSION} providers only; "
            f"saw {d.plugin_version}",
        )
        r.services = [f"POST {PLUGIN_API}/config", f"POST {PLUGIN_API}/stop"]
        r.services += [f"POST {PLUGIN_API}/action: {_describe(a)}" for a in d.available_actions]
        if d.has_publish:
            r.services.append(f"POST {PLUGIN_API}/publish (HasPublish)")
        r.facts["discovery"] = "the define output (models.PluginProvider)"
        r.facts["name"] = d.name
        r.facts["version"] = d.version
        r.facts["plugin version"] = d.plugin_version
        if d.required_params:
            r.facts["required params"] = list(d.required_params)
        if d.optional_params:
            r.facts["optional params"] = list(d.optional_params)
        if d.store_objects:
            r.facts["store objects"] = sorted(d.store_objects)
        return True

    async def _unpack(self, command: ProviderCommand, root: Path, cwd: Path) -> None:
        r = self.report
        target = root / "unpack"
        async with r.step("unpack") as step:
            refused: PathEscapeError | None = None
            try:
                await command.unpack(target, self.define_timeout)
            except PathEscapeError as exc:  # the host's own check refused the tree
                refused = exc
            files, problems = _unpack_problems(root, cwd, target)
            if refused is not None and not problems:
                problems.append(str(refused))
            if problems:
                step.fail("unpack escapes its directory", "; ".join(problems))
            else:
                step.detail = f"{files} files in the unpack directory, nothing outside it"

    # -- sockets -------------------------------------------------------------------

    def _sockets(self, plugin: ProviderPlugin) -> None:
        r = self.report
        assert plugin.socket_dir is not None
        uid = os.getuid()
        dir_st = os.stat(plugin.socket_dir)
        to_sock = plugin.socket_dir / "to.sock"
        problems = []
        dir_mode = stat.S_IMODE(dir_st.st_mode)
        if dir_st.st_uid != uid or dir_mode & 0o077:
            problems.append(f"directory {plugin.socket_dir} uid {dir_st.st_uid} mode {dir_mode:o}")
        try:
            st = os.lstat(to_sock)
        except OSError as exc:
            problems.append(f"{to_sock}: {exc.strerror}")
            sock_mode = None
        else:
            sock_mode = stat.S_IMODE(st.st_mode)
            if not stat.S_ISSOCK(st.st_mode):
                problems.append(f"{to_sock} is not a socket (mode {st.st_mode:o})")
            if st.st_uid != uid:
                problems.append(f"{to_sock} owned by uid {st.st_uid}, not {uid}")
        detail = f"dir mode {dir_mode:o}, uid {dir_st.st_uid}"
        if sock_mode is not None:
            detail += f"; to.sock mode {sock_mode:o}"
            if sock_mode & 0o077:
                detail += " (others blocked by the directory)"
        r.add("sockets", not problems, detail, "; ".join(problems))
        r.facts["socket"] = str(to_sock)

    # -- the provider's API --------------------------------------------------------

    async def _post(self, plugin: ProviderPlugin, path: str, body: Any) -> tuple[int, Any, str]:
        """One raw POST: (status, decoded body or None, the body as text)."""
        reply = await plugin.request("POST", path, json.dumps(body).encode())
        text = reply.body.decode("utf-8", "replace")
        try:
            decoded = json.loads(text) if text.strip() else None
        except json.JSONDecodeError:
            decoded = None
        return reply.status, decoded, text

    async def _config(self, plugin: ProviderPlugin) -> bool:
        r = self.report
        assert self.definition is not None
        missing = [p for p in self.definition.required_params if p not in self.params]
        if missing:
            r.skip(
                "config",
                f"the definition requires {missing}: give --param NAME=JSON for each",
            )
            return False
        async with r.step("config") as step:
            status, _doc, text = await self._post(plugin, "config", self.params)
            if 200 <= status < 300:
                step.detail = f"HTTP {status} for {len(self.params)} params"
            else:
                step.fail(f"config refused: HTTP {status}", f"HTTP {status}: {_short(text)}")
        return not r.failed("config")

    async def _action(self, plugin: ProviderPlugin, configured: bool) -> None:
        r = self.report
        assert self.definition is not None
        declared = ", ".join(_describe(a) for a in self.definition.available_actions) or "none"
        if self.action is not None:
            chosen = self.definition.find_action(self.action)
            if chosen is None:
                r.add(
                    f"action {self.action}",
                    False,
                    "not declared in the definition",
                    f"AvailableActions: {declared}",
                )
                return
        else:
            chosen = safe_action(self.definition)
            if chosen is None:
                r.skip(
                    "action", f"no safe action (system, no RequiredParams); declared: {declared}"
                )
                return
        name = f"action {chosen.command}"
        if not configured:
            r.skip(name, "not configured")
            return
        action = Action(
            command=chosen.command, plugin=self.definition.name, params=dict(self.action_params)
        )
        async with r.step(name) as step:
            status, doc, text = await self._post(plugin, "action", action.to_json())
            if 200 <= status < 300:
                step.detail = f"HTTP {status}: {_short(doc if doc is not None else text, 120)}"
            else:
                step.fail(f"action failed: HTTP {status}", f"HTTP {status}: {_short(text)}")

    async def _unknown_action(self, plugin: ProviderPlugin) -> None:
        assert self.definition is not None
        action = Action(command=UNKNOWN_ACTION, plugin=self.definition.name)
        async with self.report.step("unknown action") as step:
            status, doc, text = await self._post(plugin, "action", action.to_json())
            evidence = f"HTTP {status}: {_short(text)}"
            if 200 <= status < 300:
                step.fail("an undeclared action succeeded", evidence)
                return
            try:
                error = Error.from_json(doc)
            except PlugwireError:
                step.fail("the error is not a models.Error", evidence)
                return
            step.detail = f"HTTP {status}, models.Error {error.describe()}"[:160]

    async def _stop(self, drp: ProviderHost, plugin: ProviderPlugin) -> None:
        # the exit we ask for is no error: keep the handle's "exited" log quiet
        plugin.logger.disabled = True
        try:
            await self._stop_steps(drp, plugin)
        finally:
            plugin.logger.disabled = False

    async def _stop_steps(self, drp: ProviderHost, plugin: ProviderPlugin) -> None:
        async with self.report.step("stop") as step:
            t0 = time.monotonic()
            answer = "no answer"
            with anyio.move_on_after(self.grace):
                try:
                    status, _doc, text = await self._post(plugin, "stop", None)
                    answer = f"HTTP {status}" + (f" {_short(text, 80)}" if status >= 300 else "")
                except PlugwireError as exc:
                    with anyio.move_on_after(0.5):
                        await plugin.wait()
                    if plugin.returncode is not None:
                        answer = "connection closed as the provider exited"
                    else:
                        answer = f"no reply ({evidence_of(exc)[:120]})"
                left = self.grace - (time.monotonic() - t0)
                with anyio.move_on_after(max(left, 0)):
                    await plugin.wait()
            waited = time.monotonic() - t0
            exited = plugin.returncode
            if exited is None:
                await drp.close(plugin, grace=0.1)
            status_text = f"exit status {plugin.returncode}"
            step.detail = f"/stop: {answer}; exited {exited} after {waited * 1000:.0f} ms"
            if exited is None:
                step.fail(
                    f"did not exit within {self.grace} s of /stop",
                    f"/stop: {answer}; still running after {waited:.1f} s, then "
                    f"{status_text} (the negative status is the signal that stopped it)",
                )
            elif exited != 0:
                step.fail(f"exited {exited} after /stop", f"/stop: {answer}; {status_text}")


# ------------------------------------------------------------------ click


def _json_values(items: Sequence[str], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint=what)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value  # a bare string
    return out


def _options(func: Any) -> Any:
    options = [
        click.argument("cmd", nargs=-1, required=True),
        click.option(
            "--param", "params", multiple=True, help="NAME=JSON sent in /config (repeatable)."
        ),
        click.option("--define-timeout", default=20.0, show_default=True, help="Seconds."),
        click.option("--ready-timeout", default=10.0, show_default=True, help="Seconds."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON (for CI)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command("drp")
@_options
@click.option("--action", default=None, help="The action to exercise (default: a safe one).")
@click.option("--action-param", "action_params", multiple=True, help="NAME=JSON for the action.")
@click.option("--no-action", is_flag=True, help="Exercise no action (list them only).")
@click.option("--grace", default=5.0, show_default=True, help="Seconds to exit after /stop.")
def check_command(
    cmd: tuple[str, ...],
    params: tuple[str, ...],
    define_timeout: float,
    ready_timeout: float,
    as_json: bool,
    action: str | None,
    action_params: tuple[str, ...],
    no_action: bool,
    grace: float,
) -> None:
    """Check a dr-provision plugin provider: plugwire check drp -- ./my-provider"""
    checker = DrpCheck(
        cmd,
        params=_json_values(params, "--param"),
        action=action,
        action_params=_json_values(action_params, "--action-param"),
        exercise_action=not no_action,
        define_timeout=define_timeout,
        ready_timeout=ready_timeout,
        grace=grace,
    )
    finish(anyio.run(checker.run), as_json=as_json)


@click.command("drp")
@_options
def inspect_command(
    cmd: tuple[str, ...],
    params: tuple[str, ...],
    define_timeout: float,
    ready_timeout: float,
    as_json: bool,
) -> None:
    """Print a dr-provision provider's definition and the endpoints it serves."""
    checker = DrpCheck(
        cmd,
        params=_json_values(params, "--param"),
        define_timeout=define_timeout,
        ready_timeout=ready_timeout,
    )

    async def go() -> CheckReport:
        report = await checker.run(inspect_only=True)
        if checker.definition is not None:
            report.facts["definition"] = checker.definition.to_json()
        return report

    report = anyio.run(go)
    if not as_json and "definition" in report.facts:
        definition = report.facts.pop("definition")
        click.echo("definition (define):")
        click.echo(json.dumps(definition, indent=2))
        click.echo()
    finish(report, as_json=as_json)


@click.command("drp")
@_options
@click.option(
    "--action",
    "actions",
    multiple=True,
    help="An action to call once configured (repeatable; its result is logged).",
)
def run_command(
    cmd: tuple[str, ...],
    params: tuple[str, ...],
    define_timeout: float,
    ready_timeout: float,
    as_json: bool,
    actions: tuple[str, ...],
) -> None:
    """Run a dr-provision provider under a plugwire ProviderHost until Ctrl-C: its
    definition, /config, the actions asked for, and its logs (/log and stderr)."""
    import logging

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("plugwire.drp").setLevel(logging.DEBUG)  # its /log lines
    logging.getLogger("plugwire.plugin").setLevel(logging.DEBUG)  # its stderr
    log = logging.getLogger("plugwire.drp.run")
    config = _json_values(params, "--param")

    async def go() -> None:
        async with ProviderHost(name="plugwire-run") as drp:
            plugin = drp.provider(
                list(cmd), ready_timeout=ready_timeout, define_timeout=define_timeout
            )
            definition = await plugin.define()
            if as_json:
                click.echo(json.dumps(definition.to_json()))
            else:
                click.echo(f"definition: {_short(definition.to_json(), 400)}")
            await drp.launch(plugin)
            assert plugin.socket_dir is not None
            click.echo(f"listening: pid {plugin.pid}, {plugin.socket_dir / 'to.sock'}")
            try:
                await plugin.config(config)
                log.info("POST /config %s -> ok", json.dumps(config))
                for action in actions:
                    try:
                        result = await plugin.action(action)
                        log.info("POST /action %s -> %s", action, _short(result))
                    except PlugwireError as exc:
                        log.error("POST /action %s -> %s", action, evidence_of(exc))
                click.echo("running; Ctrl-C stops it (/stop, grace, SIGTERM, SIGKILL)")
                sys.stdout.flush()
                status = await plugin.wait()
                log.info("the provider exited by itself: status %s", status)
            finally:
                log.info("stopping %s: /stop, then signals", plugin.name)
                with anyio.CancelScope(shield=True):
                    await drp.aclose()
                log.info("stopped; exit status %s", plugin.returncode)

    run_until_interrupted(go)
