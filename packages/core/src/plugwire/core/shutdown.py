"""The one shutdown sequence every plugin goes through.

Whatever the family, stopping a plugin is the same four steps; a family supplies only
the first one:

1. **graceful step** of the family (go-plugin ``GRPCController.Shutdown``, CIPD:
   close stdin, NRI ``Shutdown``, dr-provision ``/stop``, task plugins ``Dispose``,
   kube: delete the Deployment),
2. **grace**: wait up to :attr:`ShutdownPolicy.grace` seconds (counted from the start
   of step 1) for the process to exit,
3. **SIGTERM** (and stdin closed), then wait up to :attr:`ShutdownPolicy.term_grace`,
4. **SIGKILL** (to the process group when the child has its own session).

So a plugin that ignores everything is gone after at most ``grace + term_grace``
seconds (plus the time the kernel needs to reap it). A plugin without a process (a
Kubernetes deployment, an in-process object) gets step 1 only, bounded by ``grace``.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Awaitable, Callable

import anyio
import attrs

from .process import PluginProcess

__all__ = ["ShutdownPolicy", "shutdown_sequence"]

log = logging.getLogger("plugwire.shutdown")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class ShutdownPolicy:
    """How long each step of :func:`shutdown_sequence` may take.

    Attributes:
        grace: seconds for the graceful step and the exit that should follow it.
        term_grace: seconds between SIGTERM and SIGKILL.
    """

    grace: float = attrs.field(default=2.0, converter=float, validator=_non_negative)
    term_grace: float = attrs.field(default=1.0, converter=float, validator=_non_negative)

    @property
    def bound(self) -> float:
        """The longest a plugin that ignores every request can survive its stop."""
        return self.grace + self.term_grace


async def shutdown_sequence(
    peer: str,
    *,
    graceful: Callable[[], Awaitable[object]] | None,
    process: PluginProcess | None,
    policy: ShutdownPolicy,
) -> None:
    """Stop one plugin: graceful step, grace, SIGTERM, SIGKILL (see module docs).

    Never raises for a plugin that fails or hangs in its graceful step (that is logged
    at debug level and the sequence goes on). Not shielded: the caller decides (a
    handle's ``aclose`` shields it up to the host's close deadline).
    """
    started = time.monotonic()
    if process is not None:
        process.expect_exit()
    if graceful is not None and not (process is not None and process.done.is_set()):
        with anyio.move_on_after(policy.grace) as scope:
            try:
                await graceful()
            except Exception as exc:  # the graceful step is best effort
                log.debug("%s: graceful step failed: %r", peer, exc)
        if scope.cancelled_caught:
            log.debug("%s: graceful step did not finish within %s s", peer, policy.grace)
    if process is None or not process.running:
        return
    remaining = policy.grace - (time.monotonic() - started)
    if remaining > 0:
        with anyio.move_on_after(remaining):
            await process.done.wait()
    if process.done.is_set():
        return
    log.debug("%s: still running after a grace of %s s: SIGTERM", peer, policy.grace)
    await process.close_stdin()
    process.signal_group(signal.SIGTERM)
    with anyio.move_on_after(policy.term_grace):
        await process.done.wait()
    if not process.done.is_set():
        log.warning(
            "%s: ignored its graceful step and SIGTERM for %s s: SIGKILL",
            peer,
            policy.bound,
        )
        await process.kill()
