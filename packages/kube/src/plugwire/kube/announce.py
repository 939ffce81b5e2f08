"""The plugin's container log: its announce line, and every other line into :mod:`logging`.

A plugin in a pod prints go-plugin's announce line on stdout like any go-plugin
plugin; the host reads it from ``pods/log?follow=true``. :class:`PodLog` follows the
log for the life of the plugin: the first line shaped like an announce line is parsed
(:func:`~plugwire.kube.goplugin.parse_announce`), every other line is forwarded to the
plugin's logger.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any

import anyio
import anyio.abc

from plugwire.core.errors import PlugwireError
from plugwire.core.logs import forward_log_line

from .api import KubeAPI
from .errors import PluginAnnounceError
from .goplugin import Announce, looks_like_announce, parse_announce
from .logs import LogFollow, describe_error, follow_logs

__all__ = ["PodLog"]


class PodLog:
    """Follows one container's log: the announce line, then log forwarding.

    Run :meth:`follow` in a task; :meth:`announce` waits for the announce line.
    ``lines`` counts the lines forwarded to ``logger`` so far.
    """

    def __init__(
        self,
        api: KubeAPI,
        namespace: str,
        pod: str,
        container: str,
        *,
        versions: tuple[int, ...],
        peer: str,
        logger: logging.Logger,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.pod = pod
        self.container = container
        self.versions = versions
        self.peer = peer
        self.logger = logger
        self.lines = 0
        self._found = anyio.Event()
        self._result: list[Announce | BaseException] = []
        self._tail: collections.deque[str] = collections.deque(maxlen=5)
        self._logs: LogFollow | None = None

    async def follow(self) -> None:
        """Read the log until cancelled."""
        async with follow_logs(self.api, self.namespace, self.pod, self.container) as logs:
            self._logs = logs
            async for line in logs.lines:
                if not self._result and looks_like_announce(line):
                    try:
                        self._result.append(
                            parse_announce(line, versions=self.versions, peer=self.peer)
                        )
                    except PlugwireError as exc:
                        self._result.append(exc)
                    self._found.set()
                    continue
                self.lines += 1
                if not self._result:
                    self._tail.append(str(line))
                forward_log_line(self.logger, line)

    async def announce(self, deadline: float) -> Announce:
        """The parsed announce line, once :meth:`follow` has seen it (by ``deadline``,
        a :func:`time.monotonic` value).

        Raises :class:`PluginAnnounceError` quoting the last lines when none came, or
        the error :func:`~plugwire.kube.goplugin.parse_announce` raised.
        """
        with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
            await self._found.wait()
        if not self._result:
            logs: Any = self._logs
            seen = (
                f"{self.lines} other log lines, ending {list(self._tail)}"
                if logs is not None and logs.opened
                else f"no log: {describe_error(logs.last_error if logs is not None else None)}"
            )
            raise PluginAnnounceError(
                "the plugin printed no announce line",
                peer=self.peer,
                step="announce",
                expected="CORE|APP|NETWORK|ADDR|PROTOCOL|CERT in the container log",
                seen=seen,
            )
        first = self._result[0]
        if isinstance(first, BaseException):
            raise first
        return first
