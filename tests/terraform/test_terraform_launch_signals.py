"""Signals around a provider launch by Terraform, as go-plugin's ``Serve`` has them.

A Ctrl-C reaches the whole foreground process group, providers included, and
Terraform stops its providers itself: a launch ignores SIGINT from its start, while it
is still importing. SIGTERM stops a provider through the same clean-up as a
``Shutdown`` from the moment it starts serving: its socket and private directory go,
even when the signal comes just as the announce line is out. The fork server's
standby child warms up without a file in the host's directories.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plugwire.grpc.mtls import generate_cert
from plugwire.grpc.terraform.serving import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE

HERE = Path(__file__).parent
DEADLINE = 30.0


def _env(tmp_path: Path, forkserver: str, **extra: str) -> dict[str, str]:
    client = generate_cert(curve="P-256")
    sockets = tmp_path / "sockets"
    sockets.mkdir()
    env = dict(os.environ)
    env.update(
        {
            MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE,
            "PLUGIN_PROTOCOL_VERSIONS": "6",
            "PLUGIN_CLIENT_CERT": client.cert_pem.decode(),
            "PLUGWIRE_FORKSERVER": forkserver,
            "TMPDIR": str(sockets),
            **extra,
        }
    )
    return env


def _launch(target: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); "
        f"from plugwire.grpc.terraform import launch; launch({target!r})"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # the test's own process group stays out of it
    )


def _wait_for(path: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.005)


def _stop(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=DEADLINE)
    return proc.returncode, err.decode(errors="replace")


@pytest.mark.parametrize("forkserver", ["0", "1"])
def test_an_interrupt_while_the_launch_imports_is_ignored(tmp_path: Path, forkserver: str) -> None:
    marker = tmp_path / "importing"
    env = _env(tmp_path, forkserver, SLOW_IMPORT_MARKER=str(marker))
    proc = _launch("slow_import_probe:provider", env)
    try:
        _wait_for(marker, proc)
        proc.send_signal(signal.SIGINT)  # mid-import: the provider module is loading
        line = proc.stdout.readline() if proc.stdout else b""
        assert line.startswith(b"1|6|unix|"), (line, proc.poll())
        proc.send_signal(signal.SIGINT)  # serving: still ignored
        time.sleep(0.2)
        assert proc.poll() is None
    finally:
        code, err = _stop(proc)
    assert code == 0, err[-2000:]
    assert "KeyboardInterrupt" not in err
    assert "plugin received interrupt signal, ignoring" in err
    assert list((tmp_path / "sockets").iterdir()) == []


@pytest.mark.parametrize("forkserver", ["0", "1"])
def test_sigterm_as_serving_starts_cleans_up(tmp_path: Path, forkserver: str) -> None:
    """SIGTERM as soon as the provider starts to serve (its first log line) and again
    as soon as the announce line is out: both exit 0 and leave nothing behind."""
    for when in ("starting", "announced"):
        directory = tmp_path / when
        directory.mkdir()
        proc = _launch(
            "plugwire.grpc.terraform.examples.thing._provider:provider", _env(directory, forkserver)
        )
        assert proc.stderr is not None and proc.stdout is not None
        if when == "starting":
            # A fork server of this host (this test process) may serve the launch: its
            # child logs that first. Either way this line comes as serving starts.
            seen = []
            while not seen or b"configuring server automatic mTLS" not in seen[-1]:
                seen.append(proc.stderr.readline())
                assert seen[-1], seen  # EOF: the launch ended early
        else:
            assert proc.stdout.readline().startswith(b"1|6|unix|")
        code, err = _stop(proc)
        assert code == 0, (when, err[-2000:])
        assert "plugin shutting down" in err, when
        assert list((directory / "sockets").iterdir()) == [], when


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_the_standby_warms_up_outside_the_hosts_directories(tmp_path: Path) -> None:
    """The first launch starts the fork server, which forks a standby at once; while it
    warms up the host's temp and socket directories hold only the launch's own files,
    and the server has its scratch directory. The next launch (this test is its host
    too) is served by a child of that server; both directories end empty."""
    from plugwire.core import forkserver

    socket_dir = tmp_path / "host-sockets"
    socket_dir.mkdir()
    env = _env(tmp_path, "1", PLUGIN_UNIX_SOCKET_DIR=str(socket_dir))
    watched = (tmp_path / "sockets", socket_dir)
    # A target no other test launches: the fork server is keyed on it (and on this
    # host), so this first launch starts its own rather than handing off to another's.
    target = "plugwire.grpc.terraform.examples.thing:provider"
    first = _launch(target, env)
    try:
        assert first.stdout is not None
        assert first.stdout.readline().startswith(b"1|6|unix|")
        own = {p for d in watched for p in d.iterdir()}
        (server,) = _children(first.pid)
        deadline = time.monotonic() + DEADLINE
        while not (standby := _children(server)):
            assert time.monotonic() < deadline, "no standby"
            time.sleep(0.001)
        assert len(standby) == 1
        (scratch,) = Path(forkserver.WARM_SCRATCH).glob(f"plugwire-forkserver-{server}-*")
        assert scratch.stat().st_mode & 0o777 == 0o700
        watch_until = time.monotonic() + 1.0  # the dry run takes well under a second
        while time.monotonic() < watch_until:
            assert {p for d in watched for p in d.iterdir()} == own
            time.sleep(0.001)
    finally:
        code, err = _stop(first)
    assert code == 0, err[-2000:]
    assert [list(d.iterdir()) for d in watched] == [[], []]
    second = _launch(target, env)
    try:
        assert second.stdout is not None
        assert second.stdout.readline().startswith(b"1|6|unix|")
    finally:
        code, err = _stop(second)
    assert code == 0, err[-2000:]
    assert "launch served by a fork server child" in err
    assert [list(d.iterdir()) for d in watched] == [[], []]


WARM_PROBE = """
import json, os, sys
from plugwire.core import forkserver
from plugwire.grpc.terraform import _launch, serving
from plugwire.grpc.terraform.examples.thing._provider import provider

lines = []


class Capture(serving._AnnounceCapture):
    def __init__(self, on_line):
        super().__init__(lambda line: (lines.append(line), on_line(line)))


serving._AnnounceCapture = Capture
forkserver._warm_dir = sys.argv[1]
_launch._warm(provider())
print(json.dumps({"lines": lines, "left": os.listdir(sys.argv[1])}))
"""


def test_the_warm_up_serves_once_in_the_scratch_directory(tmp_path: Path) -> None:
    """A standby's dry run: the provider served up to its announce line, listening in
    the fork server's scratch directory (not the temp or socket directory the first
    launch's environment names), then stopped with nothing left there."""
    scratch, socket_dir = tmp_path / "scratch", tmp_path / "host-sockets"
    scratch.mkdir()
    socket_dir.mkdir()
    env = _env(tmp_path, "1", PLUGIN_UNIX_SOCKET_DIR=str(socket_dir))
    out = subprocess.run(
        [sys.executable, "-c", WARM_PROBE, str(scratch)],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=True,
    ).stdout
    report = json.loads(out)
    (line,) = report["lines"]
    fields = line.split("|")
    assert fields[:3] == ["1", "6", "unix"] and fields[4] == "grpc", line
    assert Path(fields[3]).parent == scratch
    assert report["left"] == []
    assert list((tmp_path / "sockets").iterdir()) == list(socket_dir.iterdir()) == []
