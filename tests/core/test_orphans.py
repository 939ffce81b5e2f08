"""No orphans: a plugin dies with its host, even when the host is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

HOST = textwrap.dedent(
    """
    import sys, anyio
    from plugwire.core import Host, ProcessPlugin

    PLUGIN = [sys.executable, "-c", "import time\\nprint('up', flush=True)\\ntime.sleep(120)"]

    async def main():
        async with Host("victim") as host:
            plugin = ProcessPlugin("sleeper", PLUGIN, env={}, stdin=STDIN)
            proc = (await host.launch(plugin)).process
            assert await proc.readline_stdout(timeout=20) == "up"
            print(proc.pid, flush=True)
            await anyio.sleep(120)

    anyio.run(main, backend=sys.argv[1])
    """
)

BLOCKING_HOST = textwrap.dedent(
    """
    import sys, time
    from plugwire.core import ProcessPlugin
    from plugwire.core.blocking import BlockingHost

    PLUGIN = [sys.executable, "-c", "import time\\nprint('up', flush=True)\\ntime.sleep(120)"]
    with BlockingHost(backend=sys.argv[1]) as host:
        proc = host.launch(ProcessPlugin("sleeper", PLUGIN, env={})).process
        assert proc.readline_stdout(20) == "up"
        print(proc.pid, flush=True)
        time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose; it has no parent to reap it until init does
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize(
    ("source", "stdin"), [(HOST, "False"), (HOST, "True"), (BLOCKING_HOST, "")]
)
def test_plugin_dies_within_2s_of_host_sigkill(source: str, stdin: str, backend: str) -> None:
    code = source.replace("STDIN", stdin)
    host = subprocess.Popen(
        [sys.executable, "-c", code, backend], stdout=subprocess.PIPE, text=True
    )
    try:
        assert host.stdout is not None
        line = host.stdout.readline()
        plugin_pid = int(line)
        assert _alive(plugin_pid)
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=10)
        deadline = time.monotonic() + 2.0
        while _alive(plugin_pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(plugin_pid), f"plugin {plugin_pid} outlived its SIGKILLed host"
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
