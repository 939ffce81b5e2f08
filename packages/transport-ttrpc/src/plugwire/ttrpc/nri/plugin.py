"""One NRI plugin as the runtime sees it: a :class:`~plugwire.core.BasePluginHandle`.

An :class:`NriPlugin` is either pre-installed (the runtime launches its executable
with one end of a socketpair as fd 3: :attr:`~NriPlugin.process` is its
:class:`~plugwire.core.PluginProcess`) or external (it dialled the runtime's socket:
no process). Starting it runs the connection (a ttrpc server for the Runtime service
and a client for the Plugin service over one multiplexed socket), waits for
RegisterPlugin and sends Configure (:mod:`.registration`).

Closing follows upstream ``plugin.close``/``plugin.stop``: the graceful step closes
the connection (there is no Shutdown RPC from the runtime; a launched plugin exits
when its connection is gone), then the core shutdown sequence gives it
``grace`` seconds, SIGTERM and SIGKILL.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Callable, Mapping
from typing import ClassVar, TypeVar

import anyio
import anyio.abc
from google.protobuf.message import Message

from plugwire.core.controller import Controller
from plugwire.core.errors import ConnectionClosedError, PluginExitedError, PlugwireError
from plugwire.core.handle import BasePluginHandle
from plugwire.core.process import PluginProcess
from plugwire.core.shutdown import ShutdownPolicy

from . import api
from ._generated import api_pb2 as pb
from ._net import socket_stream
from ._session import Session, open_session
from .discovery import InstalledPlugin
from .registration import (
    CAPABILITIES,
    GrantFn,
    RegistrationConfig,
    configure,
    runtime_service,
    wait_registered,
)

__all__ = ["NRI_SHUTDOWN", "NriPlugin"]

log = logging.getLogger("plugwire.ttrpc.nri.runtime")

M = TypeVar("M", bound=Message)

#: Closing the connection asks a launched plugin to exit; it gets 1 s before
#: SIGTERM and 1 s more before SIGKILL (upstream kills at once).
NRI_SHUTDOWN = ShutdownPolicy(grace=1.0, term_grace=1.0)

_UNREGISTERED = "unregistered plugin"


def _grant_all(_name: str) -> frozenset[str]:
    return CAPABILITIES


class NriPlugin(BasePluginHandle):
    """One plugin connection of an NRI :class:`~plugwire.ttrpc.nri.Runtime`.

    Arguments:
        config: the runtime's identity and timeouts (sent in Configure).
        installed: a pre-installed plugin to launch (``None``: external).
        connection: the accepted socket of an external plugin.
        capabilities: what the runtime offers plugins, by capability name
            (``register_plugin``, ``update_containers``).
        grant: which of them a plugin (``idx-name``) gets; all by default.
        on_disconnect: called when the connection ends, for whatever reason.
    """

    family: ClassVar[str] = "nri"

    def __init__(
        self,
        config: RegistrationConfig,
        *,
        installed: InstalledPlugin | None = None,
        connection: socket.socket | None = None,
        capabilities: Mapping[str, object] | None = None,
        grant: GrantFn | None = None,
        on_disconnect: Callable[[NriPlugin], None] | None = None,
        shutdown: ShutdownPolicy | None = None,
    ) -> None:
        if (installed is None) == (connection is None):
            raise ValueError("an NRI plugin is either installed or connected")
        self.idx = installed.idx if installed is not None else ""
        self.base = installed.base if installed is not None else ""
        #: the configuration sent in Configure
        self.config = installed.config if installed is not None else ""
        self._installed = installed
        self._connection = connection
        self._settings = config
        self._offered = dict(capabilities or {})
        self._grant = grant or _grant_all
        self._on_disconnect = on_disconnect
        self._suffix = ""
        super().__init__(
            self._label(),
            controller=self._controller_for(self._label()),
            shutdown=shutdown if shutdown is not None else NRI_SHUTDOWN,
        )
        #: subscribed events (bit mask) and failure policy, from Configure
        self.events = 0
        self.policy = pb.FailurePolicy()
        self.session: Session | None = None
        #: the runtime closed the connection (a launched plugin then exits as asked)
        self.stopping = False
        #: the runtime SIGKILLed the launched plugin
        self.killed = False
        #: registered and configured: failures from here on are the plugin's own
        self.configured = False
        self.registered = anyio.Event()
        self.registration_error: PlugwireError | None = None
        #: set when the connection has ended
        self.disconnected = anyio.Event()
        self._stop = anyio.Event()

    # -- identity -------------------------------------------------------------------

    def _label(self) -> str:
        if not (self.idx or self.base):
            return _UNREGISTERED
        return f"{self.idx}-{self.base}{self._suffix}"

    @property
    def name(self) -> str:
        """``idx-name`` once known (``unregistered plugin`` before RegisterPlugin)."""
        return self._label()

    @property
    def external(self) -> bool:
        return self._installed is None

    def _controller_for(self, name: str) -> Controller:
        granted = self._offered if name == _UNREGISTERED else self._granted(name)
        return Controller(name, granted)

    def _granted(self, name: str) -> dict[str, object]:
        allowed = set(self._grant(name))
        return {cap: obj for cap, obj in self._offered.items() if cap in allowed}

    def identify(self, idx: str, base: str) -> None:
        """Take the identity an external plugin registered with."""
        self.idx, self.base = idx, base
        self._controller = self._controller_for(self.name)
        if self.session is not None:
            self.session.client.peer = self.name

    def disambiguate(self, n: int) -> None:
        """Tell apart a second live plugin registered under the same name."""
        self._suffix = f"#{n}"
        self._controller = Controller(self.name, self._granted(f"{self.idx}-{self.base}"))

    def registration_failed(self, err: PlugwireError) -> None:
        self.registration_error = err
        self.registered.set()

    @property
    def gone(self) -> bool:
        """The connection ended or the runtime is closing it."""
        return self.disconnected.is_set() or self.closing or self.stopping

    # -- lifecycle ------------------------------------------------------------------

    async def _start(self, task_group: anyio.abc.TaskGroup | None) -> None:
        tg = self._require_task_group(task_group)
        if self._installed is not None:
            trunk = await self._launch(tg, self._installed)
        else:
            assert self._connection is not None
            conn, self._connection = self._connection, None
            trunk = await socket_stream(conn)
        await tg.start(self._serve, trunk)
        await wait_registered(self, self._settings.registration_timeout)
        await configure(self, self._settings)

    async def _launch(
        self, tg: anyio.abc.TaskGroup, installed: InstalledPlugin
    ) -> anyio.abc.ByteStream:
        """Start a pre-installed plugin with a socketpair end as its fd 3 and only the
        three NRI variables in its environment (upstream ``newLaunchedPlugin``).

        The child's stderr becomes ``plugwire.plugin.NN-name`` log records, it dies
        with the runtime (``PR_SET_PDEATHSIG``), and its exit status and last stderr
        lines make up the :class:`PluginExitedError` reported if it dies unasked.
        Raises :class:`PluginStartError` when the executable cannot be run.
        """
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        proc = PluginProcess(
            [installed.path],
            env={
                api.PLUGIN_NAME_ENV: installed.base,
                api.PLUGIN_IDX_ENV: installed.idx,
                api.PLUGIN_SOCKET_ENV: "3",
            },
            name=self.name,
            capture_stdout=False,
            fd_map={3: child.fileno()},
            # closing the connection is the polite request (see NRI_SHUTDOWN)
            polite_signal=None,
        )
        try:
            await proc.start(tg)
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self._process = proc
        tg.start_soon(self._watch_process, proc)
        return await socket_stream(parent)

    async def _serve(
        self, trunk: anyio.abc.ByteStream, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        try:
            async with open_session(
                trunk, runtime_service(self), plugin_side=False, peer=self.name, stop=self._stop
            ) as session:
                self.session = session
                task_status.started()
                await session.closed.wait()
        finally:
            self.disconnected.set()
            if not self.registered.is_set():
                self.registered.set()
            if self.configured:
                log.info("connection to plugin %s closed", self.name)
            if self._on_disconnect is not None:
                self._on_disconnect(self)

    async def _watch_process(self, proc: PluginProcess) -> None:
        """Report a running pre-installed plugin that dies unasked, with its exit
        status and last stderr lines (start-up failures are reported by the caller)."""
        rc = await proc.wait()
        if self.closing or not self.configured:
            return
        if (rc == -signal.SIGKILL and self.killed) or (rc == 0 and self.stopping):
            return  # what the runtime asked for
        err = proc.exit_error("run")
        log.log(logging.ERROR if rc else logging.WARNING, "pre-installed plugin %s", err)

    async def _graceful_stop(self) -> None:
        await self.disconnect()

    async def _release(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        await self.disconnect()

    # -- what the runtime does with it -------------------------------------------------

    async def disconnect(self) -> None:
        """Close the connection (upstream ``plugin.close``); a launched plugin exits."""
        self.stopping = True
        self._stop.set()
        if self.session is not None:
            await self.session.aclose()

    async def kill(self) -> None:
        """Close the connection and SIGKILL a launched plugin (upstream ``stop``)."""
        proc = self._process
        if proc is not None:
            self.killed = proc.returncode is None
            await proc.kill()
        await self.disconnect()

    async def exit_error(self, step: str, wait: float = 1.0) -> PluginExitedError | None:
        """Why a launched plugin whose connection ended died (status and stderr
        tail), if it exits unasked within ``wait`` seconds; ``None`` otherwise."""
        proc = self._process
        if proc is None:
            return None
        with anyio.move_on_after(wait):
            await proc.done.wait()
        if proc.error is None:
            return None
        return proc.exit_error(step)

    async def call(self, method: str, req: Message, resp_type: type[M], timeout: float) -> M:
        """Call ``method`` of the plugin's Plugin service."""
        if self.session is None or self.gone:
            raise ConnectionClosedError("plugin connection closed", peer=self.name, step=method)
        return await self.session.call(api.PLUGIN_SERVICE, method, req, resp_type, timeout=timeout)
