"""A provider executable and its one-shot commands (``define``, ``unpack DIR``).

:class:`ProviderCommand` is how dr-provision runs a provider binary: its argv (relative
paths pinned, since the provider runs in a scratch directory), its environment (a
clean base plus ``RS_ENDPOINT``, ``RS_TOKEN``, ``RS_FILESERVER``, ``RS_WEBROOT``) and
its working directory, settled once when built. The one-shot commands run to
completion through :class:`~plugwire.core.process.PluginProcess`, so they cannot
outlive their caller.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs

from plugwire.core.errors import PluginStartError, PluginTimeoutError, ProtocolError
from plugwire.core.process import PluginProcess

from .files import check_tree
from .models import PluginProvider

__all__ = ["ProviderCommand", "parse_definition"]

_PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")

#: What a provider command may be: an executable, or an argv prefix such as
#: ``[sys.executable, "provider.py"]``.
CommandLike = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


#: ``define`` may print its definition (embedded content included) on one line.
_MAX_OUTPUT_LINE = 16 * 1024 * 1024


@attrs.frozen
class ProviderCommand:
    """A provider executable, ready to run (see the module docs)."""

    argv: tuple[str, ...]
    name: str
    env: Mapping[str, str]
    cwd: str | None = None

    @classmethod
    def build(
        cls,
        command: CommandLike,
        *,
        name: str | None = None,
        endpoint: str = "https://127.0.0.1:8092",
        token: str = "",
        fileserver: str = "",
        webroot: str = "",
        env: Mapping[str, str] | None = None,
        inherit_env: bool = False,
        cwd: str | os.PathLike[str] | None = None,
    ) -> ProviderCommand:
        if isinstance(command, (str, os.PathLike)):
            argv = [os.fspath(command)]
        else:
            argv = [os.fspath(c) for c in command]
        if not argv:
            raise PluginStartError("empty provider command", step="start")
        # The provider runs in a scratch directory: pin relative paths now.
        argv = [
            os.path.abspath(a) if "/" in a and not os.path.isabs(a) and os.path.exists(a) else a
            for a in argv
        ]
        base = {k: v for k, v in os.environ.items() if k in _PASS_ENV}
        full_env = {
            **(dict(os.environ) if inherit_env else base),
            **(env or {}),
            "RS_ENDPOINT": endpoint,
            "RS_TOKEN": token,
            "RS_FILESERVER": fileserver,
            "RS_WEBROOT": webroot,
        }
        return cls(
            argv=tuple(argv),
            name=name or Path(argv[-1]).name,
            env=full_env,
            cwd=None if cwd is None else os.fspath(cwd),
        )

    async def run(self, args: Sequence[str], step: str, timeout: float) -> str:
        """Run a one-shot command (``define``, ``unpack``) to completion within
        ``timeout`` seconds and return its stdout."""
        lines: list[str] = []
        proc = PluginProcess(
            [*self.argv, *args],
            env=self.env,
            name=self.name,
            cwd=self.cwd,
            on_stdout=lines.append,
            max_line=_MAX_OUTPUT_LINE,
        )
        try:
            async with proc:
                with anyio.move_on_after(timeout) as scope:
                    status = await proc.wait()
        except PluginStartError as exc:
            exc.step = step
            raise
        if scope.cancelled_caught:
            raise PluginTimeoutError(
                f"provider did not finish {step} within {timeout} s",
                peer=self.name,
                step=step,
            )
        if status != 0:
            raise proc.exit_error(step)
        return "\n".join(lines)

    async def define(self, timeout: float) -> PluginProvider:
        """Run ``define``; parse and validate the definition (:func:`parse_definition`)."""
        return parse_definition(await self.run(["define"], "define", timeout), peer=self.name)

    async def unpack(self, directory: str | os.PathLike[str], timeout: float) -> Path:
        """Run ``unpack DIR`` (the directory is created); return it.

        The directory is checked before and after (:func:`.files.check_tree`): a
        symlink in it leaving it raises :class:`.files.PathEscapeError`, before the
        provider runs or after it wrote one."""
        path = Path(directory)
        os.makedirs(path, exist_ok=True)
        check_tree(path, peer=self.name, step="unpack (before)")
        await self.run(["unpack", os.fspath(path)], "unpack", timeout)
        check_tree(path, peer=self.name, step="unpack")
        return path


def parse_definition(out: str, *, peer: str) -> PluginProvider:
    """The ``models.PluginProvider`` a provider printed for ``define``.

    Raises :class:`ProtocolError` for output that is not JSON or not a valid
    definition (empty Name, PluginVersion < 1, an action without Command, an action
    declared twice)."""
    try:
        doc: Any = json.loads(out)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError(
            f"define printed something that is not JSON: {exc}",
            peer=peer,
            step="define",
            expected="models.PluginProvider JSON",
            seen=out.strip()[:200],
        ) from None
    try:
        definition = PluginProvider.from_json(doc)
    except ProtocolError as exc:
        exc.peer, exc.step = peer, "define"
        raise
    problems = []
    if not definition.name:
        problems.append("Name is empty")
    if definition.plugin_version < 1:
        problems.append(f"PluginVersion {definition.plugin_version} is not a version")
    for action in definition.available_actions:
        if not action.command:
            problems.append("an AvailableAction has no Command")
    commands = [(a.model, a.command) for a in definition.available_actions]
    if len(set(commands)) != len(commands):
        problems.append("an AvailableAction is declared twice")
    if problems:
        raise ProtocolError(
            "invalid provider definition: " + "; ".join(problems),
            peer=peer,
            step="define",
            expected="a valid models.PluginProvider",
            seen=doc,
        )
    return definition
