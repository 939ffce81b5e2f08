from __future__ import annotations

import logging
import os
import signal
import sys
import textwrap
import time

import anyio
import pytest

from plugwire.core import (
    ClosedError,
    PluginExitedError,
    PluginProcess,
    PluginStartError,
    PluginTimeoutError,
)

pytestmark = pytest.mark.anyio
PY = sys.executable


def script(body: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(body)]


async def test_env_is_explicit_and_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGWIRE_HOST_SECRET", "leak")
    argv = script("import os, json; print(json.dumps(sorted(os.environ)))")
    async with PluginProcess(argv, env={"ONLY": "1"}, name="env") as proc:
        line = await proc.readline_stdout(timeout=10)
        assert await proc.wait() == 0
    assert line is not None
    names = set(__import__("json").loads(line))
    assert "PLUGWIRE_HOST_SECRET" not in names
    assert "ONLY" in names
    # inherit_env opts in to the host's environment
    argv = script("import os; print(os.environ.get('PLUGWIRE_HOST_SECRET'))")
    async with PluginProcess(argv, env={}, name="env2", inherit_env=True) as proc:
        assert await proc.readline_stdout(timeout=10) == "leak"


async def test_stderr_lines_become_log_records(caplog: pytest.LogCaptureFixture) -> None:
    argv = script(
        """
        import sys, json
        print(json.dumps({"@level": "error", "@message": "bad thing", "code": 7}), file=sys.stderr)
        print("[WARN] careful", file=sys.stderr)
        print("just text", file=sys.stderr)
        """
    )
    with caplog.at_level(logging.DEBUG, logger="plugwire.plugin.logger"):
        async with PluginProcess(argv, env={}, name="logger") as proc:
            await proc.wait()
    got = [
        (r.levelno, r.getMessage()) for r in caplog.records if r.name == "plugwire.plugin.logger"
    ]
    assert (logging.ERROR, "bad thing code=7") in got
    assert (logging.WARNING, "careful") in got
    assert (logging.DEBUG, "just text") in got


async def test_death_is_reported_with_status_and_stderr_tail() -> None:
    argv = script(
        """
        import sys
        for i in range(30):
            print(f"line {i}", file=sys.stderr)
        sys.exit(3)
        """
    )
    async with PluginProcess(argv, env={}, name="dies") as proc:
        assert await proc.wait() == 3
        assert proc.done.is_set()
        err = proc.error
    assert isinstance(err, PluginExitedError)
    assert err.returncode == 3
    assert err.stderr_tail[-1] == "line 29" and len(err.stderr_tail) == 20
    assert "exited with status 3" in str(err) and "line 29" in str(err) and "dies" in str(err)


async def test_killed_by_signal_is_named() -> None:
    argv = script("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    async with PluginProcess(argv, env={}, name="sig") as proc:
        assert await proc.wait() == -signal.SIGKILL
        assert "SIGKILL" in str(proc.error)


async def test_terminate_polite_signal_then_sigkill_after_grace() -> None:
    stubborn = script(
        """
        import os, signal, sys, time
        # os.write: print() from a handler can hit the buffer lock print("ready") holds
        signal.signal(signal.SIGTERM, lambda *a: os.write(1, b"got TERM\\n"))
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    async with PluginProcess(stubborn, env={}, name="stubborn") as proc:
        assert await proc.readline_stdout(timeout=10) == "ready"
        started = time.monotonic()
        await proc.terminate(grace=2.0)
        elapsed = time.monotonic() - started
        assert await proc.readline_stdout(timeout=5) == "got TERM"
    assert proc.returncode == -signal.SIGKILL
    assert 1.9 < elapsed < 15  # waited the grace, then killed
    assert proc.error is None  # we asked it to stop


async def test_terminate_polite_plugin_exits_within_grace() -> None:
    polite = script(
        """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    async with PluginProcess(polite, env={}, name="polite") as proc:
        await proc.readline_stdout(timeout=10)
        await proc.terminate(grace=10)
        assert proc.returncode == 0


async def test_stdin_roundtrip_and_eof() -> None:
    cat = script(
        """
        import sys
        for line in sys.stdin:
            print(line.strip()[::-1], flush=True)
        print("eof", flush=True)
        """
    )
    async with PluginProcess(cat, env={}, name="rev", stdin=True, polite_signal=None) as proc:
        await proc.write_stdin(b"abc\n")
        assert await proc.readline_stdout(timeout=10) == "cba"
        await proc.write_stdin(b"x" * 200_000 + b"\n")  # more than a pipe buffer
        assert await proc.readline_stdout(timeout=10) == "x" * 200_000
        await proc.close_stdin()
        assert await proc.readline_stdout(timeout=10) == "eof"
        assert await proc.readline_stdout(timeout=10) is None
        assert await proc.wait() == 0
        with pytest.raises(ClosedError):
            await proc.write_stdin(b"late")


async def test_readline_timeout() -> None:
    async with PluginProcess(script("import time; time.sleep(30)"), env={}, name="quiet") as proc:
        with pytest.raises(PluginTimeoutError, match="quiet"):
            await proc.readline_stdout(timeout=0.2)


async def test_missing_command_is_a_start_error() -> None:
    with pytest.raises(PluginStartError) as info:
        async with PluginProcess(["/nonexistent/plugin"], env={}, name="ghost"):
            pass
    assert "/nonexistent/plugin" in str(info.value)


async def test_errors_in_the_body_propagate_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with PluginProcess(script("import time; time.sleep(30)"), env={}, name="body"):
            raise KeyError("mine")


async def test_pass_fds() -> None:
    read_fd, write_fd = os.pipe()
    try:
        argv = script(f"import os; os.write({write_fd}, b'hi'); os.close({write_fd})")
        async with PluginProcess(argv, env={}, name="fd", pass_fds=[write_fd]) as proc:
            await proc.wait()
        os.close(write_fd)
        write_fd = -1
        assert os.read(read_fd, 10) == b"hi"
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)


async def test_unread_stdout_never_blocks_the_plugin() -> None:
    chatty = script("import sys\nfor i in range(50000): print('x' * 100)\nprint('done')")
    async with PluginProcess(chatty, env={}, name="chatty", stdout_buffer=10) as proc:
        with anyio.fail_after(20):
            assert await proc.wait() == 0


async def test_fd_map_moves_a_host_descriptor_to_a_child_number() -> None:
    import socket

    host_end, plugin_end = socket.socketpair()
    try:
        # the plugin finds its socket on fd 3, whatever number the host had
        argv = script(
            """
            import os, socket
            s = socket.socket(fileno=3)
            s.sendall(b"hello from fd 3 " + str(os.get_inheritable(3)).encode())
            """
        )
        async with PluginProcess(argv, env={}, name="fd3", fd_map={3: plugin_end.fileno()}) as proc:
            plugin_end.close()
            assert await proc.wait() == 0, proc.stderr_tail
        host_end.settimeout(10)
        assert host_end.recv(100) == b"hello from fd 3 True"
    finally:
        host_end.close()
        plugin_end.close()


def test_fd_map_refuses_stdio() -> None:
    with pytest.raises(PluginStartError, match="stdin, stdout or stderr"):
        PluginProcess(["true"], env={}, name="x", fd_map={1: 7})


async def test_no_python_runs_in_the_child_unless_fd_map_needs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A preexec_fn forces fork(), whose atfork handlers crash children of busy gRPC
    # hosts; the default path hands PDEATHSIG to setpriv instead.
    import plugwire.core.process as process_module

    if process_module._setpriv_path() is None:
        pytest.skip("util-linux setpriv not installed: apt-get install util-linux")

    def forbidden(*args: object) -> None:
        raise AssertionError("preexec_fn path used")

    monkeypatch.setattr(process_module, "_child_setup", forbidden)
    async with PluginProcess(script("print('ok')"), env={}, name="vfork") as proc:
        assert await proc.readline_stdout(timeout=10) == "ok"
    with pytest.raises(PluginStartError, match="no such executable"):
        async with PluginProcess(["no-such-plugin-binary"], env={}, name="ghost"):
            pass
