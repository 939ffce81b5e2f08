"""Fixtures for the CIPD admission family: asyncio only (grpc.aio), test plugins, Go peers."""

from __future__ import annotations

import os

# grpcio's fork support restarts its epoll poller in a child forked while gRPC is
# active; with subprocess's close_fds that child can abort (SIGABRT, "epoll_wait
# error: Bad file descriptor", grpc/grpc#43055) before it execs the plugin. core's
# PluginProcess forks (preexec_fn) from a process running grpc.aio, so disable fork
# support before anything imports grpc. The product-level fix belongs where
# plugwire.grpc is first imported (reported to the lead).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

HERE = Path(__file__).parent
MODES = HERE / "plugins" / "modes.py"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def plugin_argv() -> Callable[..., list[str]]:
    """``plugin_argv(mode, *args)``: the command line of plugins/modes.py in that mode."""

    def argv(*args: str) -> list[str]:
        return [sys.executable, str(MODES), *args]

    return argv


@pytest.fixture(autouse=True)
def _quiet_grpc() -> None:
    logging.getLogger("grpc").setLevel(logging.WARNING)
