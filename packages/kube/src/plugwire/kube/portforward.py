"""Reach a pod port through the API server: a local TCP listener bridged to ``pods/portforward``.

Each connection accepted on the local address (``127.0.0.1``, a free port) opens
its own port-forward stream (the WebSocket ``pods/portforward`` subresource, as
``kubectl port-forward`` does) and copies bytes both ways. Works from outside the
cluster: only the API server must be reachable.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.abc

from plugwire.core._unix import stream_from_socket

from .api import KubeAPI
from .errors import KubeAPIError

__all__ = ["PortForwarder", "port_forward"]

_log = logging.getLogger("plugwire.kube")
_CHUNK = 65536
_GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class PortForwarder:
    """Forwards ``127.0.0.1:<local_port>`` to ``namespace/pod:port``; see :func:`port_forward`."""

    def __init__(self, api: KubeAPI, namespace: str, pod: str, port: int) -> None:
        self.api = api
        self.namespace = namespace
        self.pod = pod
        self.port = port
        self.local_port = 0
        self.connections = 0
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """``127.0.0.1:<local_port>`` (valid once serving)."""
        return f"127.0.0.1:{self.local_port}"

    def _open_blocking(self, **kwargs: Any) -> Any:
        from kubernetes import client
        from kubernetes.stream import portforward

        # kubernetes.stream swaps call_api on the ApiClient it is given while the call
        # runs: use a private ApiClient so concurrent API calls are not affected.
        api_client = client.ApiClient(configuration=self.api.api_client.configuration)
        core = client.CoreV1Api(api_client)
        return portforward(
            core.connect_get_namespaced_pod_portforward,
            self.pod,
            self.namespace,
            ports=str(self.port),
            **kwargs,
        )

    async def _bridge(self, local: anyio.abc.SocketStream) -> None:
        async with local:
            abandoned = threading.Event()

            def open_stream(**kwargs: Any) -> Any:
                pf = self._open_blocking(**kwargs)
                if abandoned.is_set():  # the caller gave up meanwhile: close it cleanly
                    _close_unused(pf, self.port)
                return pf

            what = f"port-forward pod {self.namespace}/{self.pod}:{self.port}"
            try:
                # The WebSocket connect of the kubernetes client takes no timeout: bound it
                # here (each try also has the API timeout for its HTTP part).
                with anyio.fail_after(self.api.timeout * self.api.backoff.steps + 1.0):
                    pf = await self.api.call(what, open_stream)
            except KubeAPIError as exc:
                _log.warning("%s", exc)
                return
            except TimeoutError:
                abandoned.set()
                _log.warning("%s: no answer within the API timeout", what)
                return
            except BaseException:
                abandoned.set()
                raise
            self.connections += 1
            raw = pf.socket(self.port)
            sock = getattr(raw, "_socket", raw)
            remote = await stream_from_socket(sock)  # not anyio's UNIXSocketStream: see core._unix
            try:
                async with anyio.create_task_group() as tg:

                    async def pump(src: anyio.abc.ByteStream, dst: anyio.abc.ByteStream) -> None:
                        with contextlib.suppress(*_GONE):
                            while True:
                                await dst.send(await src.receive(_CHUNK))
                        tg.cancel_scope.cancel()

                    tg.start_soon(pump, local, remote)
                    tg.start_soon(pump, remote, local)
            finally:
                # Close our end of the client's socket pair gracefully: EOF first, then
                # drain until its proxy thread closes its end (an abrupt close with
                # unread data resets the pair and kills that thread with an error).
                with anyio.move_on_after(2.0, shield=True), contextlib.suppress(*_GONE):
                    await remote.send_eof()
                    while True:
                        await remote.receive(_CHUNK)
                with anyio.CancelScope(shield=True):
                    await remote.aclose()
                with contextlib.suppress(Exception):
                    pf.close()

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen and bridge until cancelled; reports the local address when listening."""
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        async with listener:
            self.local_port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
            task_status.started(self.address)
            await listener.serve(self._bridge)


def _close_unused(pf: Any, port: int) -> None:
    raw = pf.socket(port)
    sock = getattr(raw, "_socket", raw)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)  # EOF: its proxy thread closes its end and stops
    with contextlib.suppress(Exception):
        pf.close()


@contextlib.asynccontextmanager
async def port_forward(
    api: KubeAPI, namespace: str, pod: str, port: int
) -> AsyncIterator[PortForwarder]:
    """Serve a :class:`PortForwarder` for the duration of the block.

    ``async with port_forward(api, "default", "kv-abc", 50077) as pf: dial(pf.address)``
    """
    forwarder = PortForwarder(api, namespace, pod, port)
    async with anyio.create_task_group() as tg:
        await tg.start(forwarder.serve)
        try:
            yield forwarder
        finally:
            tg.cancel_scope.cancel()
