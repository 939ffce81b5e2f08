"""One process of an admission plugin: launch, handshake, ``ListAdmissions``, stop.

An :class:`~plugwire.grpc.cipd.admission.AdmissionPlugin` runs one :class:`Session`
at a time (a restart is a new one): a process started through core's
:class:`~plugwire.core.process.PluginProcess`, the ticket it authenticates its calls
with, and what its ``ListAdmissions`` stream has in flight.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from plugwire.core.errors import PluginStartError, PluginTimeoutError, PlugwireError
from plugwire.core.process import PluginProcess
from plugwire.core.shutdown import shutdown_sequence

from .handshake import PluginHandshake, new_ticket

if TYPE_CHECKING:
    from .admission import AdmissionPlugin

__all__ = ["Session"]

#: How long to wait for the exit status of a plugin that closed its stdin early.
_HANDSHAKE_EXIT_WAIT = 2.0


async def _close_stdin_and_wait(process: PluginProcess) -> None:
    """The CIPD graceful step: EOF on the plugin's stdin, then wait for its exit."""
    await process.close_stdin()
    await process.done.wait()


class Session:
    """One launched plugin process and the ticket it authenticates with."""

    def __init__(self, plugin: AdmissionPlugin) -> None:
        self.plugin = plugin
        self.ticket = new_ticket()
        self.process: PluginProcess | None = None
        self.connected = anyio.Event()
        self.connects = 0
        self.disconnected = False
        self.inflight: set[str] = set()

    async def start(self, task_group: anyio.abc.TaskGroup) -> PluginProcess:
        """Start the plugin's process (registering the ticket first); raises what
        :meth:`PluginProcess.start` raises, with the ticket dropped again."""
        plugin = self.plugin
        logger = plugin.logger
        process = PluginProcess(
            plugin.argv,
            env=plugin.env,
            name=plugin.name,
            stdin=True,
            inherit_env=plugin.inherit_env,
            polite_signal=None,
            logger=logger,
            on_stdout=lambda line: logger.info("%s", line, extra={"stream": "stdout"}),
        )
        plugin.host._add_session(self)
        try:
            await process.start(task_group)
        except BaseException:
            plugin.host._drop_session(self.ticket)
            raise
        self.process = process
        return process

    async def connect(self, process: PluginProcess) -> PlugwireError | None:
        """Send the handshake and wait for ``ListAdmissions``: ``None`` once it came,
        else why not (exited, timed out, closed, refused)."""
        plugin = self.plugin
        try:
            await process.write_stdin(PluginHandshake(plugin.host.port, self.ticket).encode())
        except PlugwireError as exc:
            # Its stdin is gone: it is exiting. Report how, as a failed start.
            with anyio.move_on_after(_HANDSHAKE_EXIT_WAIT):
                await process.done.wait()
            return self._exited_early(process) if process.done.is_set() else exc
        with anyio.move_on_after(plugin.connect_timeout):
            async with anyio.create_task_group() as tg:

                async def first(event: anyio.Event) -> None:
                    await event.wait()
                    tg.cancel_scope.cancel()

                for event in (self.connected, process.done, plugin._stop_requested):
                    tg.start_soon(first, event)
        if plugin.error is not None:
            return plugin.error  # closed, or the protocol version was refused
        if self.connected.is_set():
            return None
        if process.done.is_set():
            return self._exited_early(process)
        return PluginTimeoutError(
            f"the admission plugin did not call ListAdmissions within {plugin.connect_timeout} s",
            peer=plugin.name,
            step="connect",
            expected="a ListAdmissions call",
            seen="nothing",
        )

    def _exited_early(self, process: PluginProcess) -> PluginStartError:
        exited = process.exit_error("connect")
        error = PluginStartError(
            "the admission plugin terminated before making ListAdmissions RPC",
            peer=self.plugin.name,
            step="connect",
            expected="a ListAdmissions call",
            seen=exited.seen,
        )
        error.__cause__ = exited
        return error

    async def stop(self) -> None:
        """Forget the ticket and stop the process with core's shutdown sequence
        (stdin EOF first) under the plugin's policy. Shielded."""
        plugin = self.plugin
        plugin.host._drop_session(self.ticket)
        process = self.process
        if process is None:
            return
        with anyio.CancelScope(shield=True):
            await shutdown_sequence(
                plugin.peer,
                graceful=functools.partial(_close_stdin_and_wait, process),
                process=process,
                policy=plugin.shutdown,
            )
