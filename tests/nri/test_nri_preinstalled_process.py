"""Pre-installed plugins as child processes of plugwire's NRI runtime: their stderr
becomes log records, unasked exits are reported with the status and the last stderr
lines, and none outlives the runtime (even one killed with SIGKILL)."""

from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path

import anyio
import pytest
from nri_support import python_plugin_executable

from plugwire.ttrpc.nri import Runtime
from plugwire.ttrpc.nri.api import pb

pytestmark = pytest.mark.anyio

POD = pb.PodSandbox(id="pod0", name="pod0", namespace="default")
CTR = pb.Container(id="c1", pod_sandbox_id="pod0", name="c1")


def shell_plugin(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def preinstalled(plugins: Path, registration_timeout: float) -> Runtime:
    return Runtime(
        "plugwire-test",
        "0.1",
        socket_path=None,
        listen=False,
        plugin_path=plugins,
        registration_timeout=registration_timeout,
    )


async def test_plugin_exiting_before_registration_reports_status_and_stderr(
    sockdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plugins = sockdir / "plugins"
    plugins.mkdir()
    shell_plugin(
        plugins,
        "10-crash",
        'echo "[WARN] env: NRI_PLUGIN_SOCKET=$NRI_PLUGIN_SOCKET HOME=${HOME:-unset}" >&2\n'
        'echo "cannot start: no config" >&2\nexit 3\n',
    )
    caplog.set_level(logging.DEBUG)
    started = anyio.current_time()
    async with preinstalled(plugins, registration_timeout=10) as rt:
        # the exit is seen at once, not after the 10 s registration timeout
        assert rt.plugins == []
        assert anyio.current_time() - started < 5
    [failure] = [
        r
        for r in caplog.records
        if r.name == "plugwire.ttrpc.nri.runtime" and "failed to start" in r.getMessage()
    ]
    message = failure.getMessage()
    assert "plugin '10-crash' exited with status 3" in message
    assert "last stderr lines:" in message and "cannot start: no config" in message
    # stderr lines are log records of the plugin's logger, with their level; the
    # environment holds only the NRI variables
    [env_line] = [
        r
        for r in caplog.records
        if r.name == "plugwire.plugin.10-crash" and "env:" in r.getMessage()
    ]
    assert env_line.levelno == logging.WARNING
    assert "NRI_PLUGIN_SOCKET=3 HOME=unset" in env_line.getMessage()


async def test_plugin_dying_mid_call_is_dropped_and_its_exit_reported(
    sockdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plugins = sockdir / "plugins"
    plugins.mkdir()
    python_plugin_executable(
        plugins,
        "10-crasher",
        textwrap.dedent(
            """
            import os, sys
            import anyio
            from plugwire.ttrpc.nri import Stub

            class Crasher:
                async def create_container(self, pod, ctr):
                    print("[ERROR] giving up on " + ctr.id, file=sys.stderr, flush=True)
                    os._exit(4)

            Stub(Crasher()).serve()
            """
        ),
    )
    caplog.set_level(logging.INFO)
    async with preinstalled(plugins, registration_timeout=20) as rt:
        [info] = await rt.wait_for_plugins(1, timeout=20)
        assert info.pid is not None and alive(info.pid)
        rpl = await rt.create_container(POD, CTR)  # carries on without the plugin
        assert rpl == pb.CreateContainerResponse(adjust=rpl.adjust)
        assert rt.plugins == []
        with anyio.fail_after(5):
            while not any("exited with status 4" in r.getMessage() for r in caplog.records):  # noqa: ASYNC110
                await anyio.sleep(0.02)
    [report] = [r for r in caplog.records if "exited with status 4" in r.getMessage()]
    assert report.levelno == logging.ERROR
    assert "10-crasher" in report.getMessage() and "giving up on c1" in report.getMessage()
    assert [
        r.levelno
        for r in caplog.records
        if r.name == "plugwire.plugin.10-crasher" and "giving up" in r.getMessage()
    ] == [logging.ERROR]


async def test_plugin_ignoring_the_closed_connection_is_killed_on_exit(sockdir: Path) -> None:
    """A plugin that registers but then ignores the end of its connection is
    SIGKILLed after the 1 s grace when the runtime closes."""
    plugins = sockdir / "plugins"
    plugins.mkdir()
    python_plugin_executable(
        plugins,
        "10-stubborn",
        textwrap.dedent(
            """
            import signal, time
            import anyio
            from plugwire.ttrpc.nri import Stub

            class Env:
                async def create_container(self, pod, ctr):
                    return None

            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                Stub(Env()).serve()
            finally:
                time.sleep(60)
            """
        ),
    )
    async with preinstalled(plugins, registration_timeout=20) as rt:
        [info] = await rt.wait_for_plugins(1, timeout=20)
        assert info.pid is not None
        started = anyio.current_time()
    assert 0.9 < anyio.current_time() - started < 5
    assert not alive(info.pid)


async def test_no_orphan_when_the_runtime_is_killed(sockdir: Path) -> None:
    """The host dies by SIGKILL (no cleanup runs): its launched plugin dies too."""
    plugins = sockdir / "plugins"
    plugins.mkdir()
    pidfile = sockdir / "plugin.pid"
    shell_plugin(
        plugins,
        "10-sleeper",
        f"echo $$ > {pidfile}.tmp\nmv {pidfile}.tmp {pidfile}\nexec sleep 60\n",
    )
    host = textwrap.dedent(
        f"""
        import anyio
        from plugwire.ttrpc.nri import Runtime

        async def main():
            async with Runtime("host", "0", socket_path=None, listen=False,
                               plugin_path={str(plugins)!r}, registration_timeout=60):
                pass

        anyio.run(main)
        """
    )
    async with await anyio.open_process([sys.executable, "-c", host]) as proc:
        try:
            with anyio.fail_after(20):
                while not pidfile.exists():
                    assert proc.returncode is None, "host exited early"
                    await anyio.sleep(0.02)
            pid = int(pidfile.read_text())
            assert alive(pid)
            proc.kill()  # SIGKILL
            await proc.wait()
            with anyio.fail_after(5):
                while alive(pid):  # noqa: ASYNC110
                    await anyio.sleep(0.02)
        finally:
            if proc.returncode is None:
                proc.kill()
