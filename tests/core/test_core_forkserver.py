"""plugwire.core.forkserver: later launches by one host are forked from the first
launch's imported state, served with their own stdio, environment, arguments and
directory, and nothing outlives the host."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugwire.core import forkserver

pytestmark = pytest.mark.skipif(not forkserver.enabled({}), reason="needs Linux pidfds")

PEERS = Path(__file__).with_name("forkserver_peers")
HOST = PEERS / "host.py"


def _host(launches: list[dict[str, Any]], env: dict[str, str] | None = None) -> list[Any]:
    """Run the test host over ``launches``; its report, one dict per launch."""
    out = subprocess.run(
        [sys.executable, str(HOST), json.dumps(launches)],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone before the open, or the read
        return False


def _gone_within(pids: list[int], seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def test_later_launches_fork_from_the_first_and_get_their_own_launch(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    report = _host(
        [
            {"env": {"FS_X": "one", "FS_ACT": "echo"}, "args": ["1"], "stdin": "hello\n"},
            {
                "env": {"FS_X": "two", "FS_ACT": "echo"},
                "args": ["2", "--x"],
                "cwd": str(tmp_path / "a"),
                "stdin": "second\n",
            },
            {"env": {"FS_X": "three", "FS_ACT": "exit:3"}, "cwd": str(tmp_path / "b")},
        ]
    )
    first, second, third = report
    # the first launch imported and served itself
    assert first["plugin"]["pid"] == first["launch_pid"] == first["plugin"]["imported_in"]
    assert first["plugin"]["prepared"] == first["plugin"]["warmed"] == []
    assert first["plugin"]["preloaded"] == []  # preload runs in the server, not here
    assert first["code"] == 0 and first["stdout"] == "HELLO\n" and "to stderr" in first["stderr"]
    # later ones: a child of the fork server, forked from the first launch's imports
    for later in (second, third):
        plugin = later["plugin"]
        assert plugin["pid"] != later["launch_pid"]
        assert plugin["imported_in"] == first["plugin"]["pid"]
        assert plugin["ppid"] not in (first["plugin"]["pid"], later["launch_pid"])
        assert plugin["served"] == 1  # nothing the earlier launches did at run time
        # a standby: warmed up and prepared by itself, and by nobody else
        assert plugin["warmed"] == plugin["prepared"] == [plugin["pid"]]
        # preloaded once, by the server (its parent) before it forked any child
        assert plugin["preloaded"] == [plugin["ppid"]]
    assert second["plugin"]["ppid"] == third["plugin"]["ppid"]  # one server
    # forked ahead: the third's standby as the second was handed over, long before the
    # third launch's process started (the second's may come just after the second
    # launch's: the server forks it as it starts, and the first launch ends at once)
    assert third["plugin"]["started"] <= third["launch_started"]
    # each with its own environment, arguments, directory and stdio
    assert [r["plugin"]["x"] for r in report] == ["one", "two", "three"]
    assert second["plugin"]["argv"] == ["2", "--x"] and third["plugin"]["argv"] == []
    assert second["plugin"]["cwd"] == str(tmp_path / "a")
    assert third["plugin"]["cwd"] == str(tmp_path / "b")
    assert second["stdout"] == "SECOND\n" and "to stderr" in second["stderr"]
    # nothing of the server's (such as the launch's connection) reaches what a child starts
    assert [r["plugin"]["inheritable"] for r in report] == [[], [], []]
    # the launch exits with the child's status
    assert second["code"] == 0 and third["code"] == 3


def test_a_child_ending_tells_its_launch_before_it_is_gone() -> None:
    # The child lingers in its last step, after telling its launch (it never ends by
    # itself): the launch must still end with the child's status, its stdout and stderr
    # closed, without waiting for the child's end; the server then kills the child.
    report = _host([{"env": {"FS_ACT": "exit:0"}}, {"env": {"FS_ACT": "fastexit:4"}}])
    first, later = report
    assert later["plugin"]["pid"] != later["launch_pid"]
    assert later["code"] == 4 and "to stderr" in later["stderr"]
    assert _gone_within([later["plugin"]["pid"]]) == []  # its launch gone: killed
    # a process that serves its own launch has nobody to tell: it ends as before
    assert first["code"] == 0 and first["plugin"]["pid"] == first["launch_pid"]


def test_a_launch_the_child_cannot_take_on_fails_with_a_message(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    # the launch's directory vanishes between its start and the child's chdir
    report = _host(
        [
            {"env": {"FS_ACT": "exit:0"}},
            {"env": {"FS_ACT": "exit:0", "FS_RMDIR_FIRST": "1"}, "cwd": str(gone)},
            {"env": {"FS_ACT": "exit:5"}},
        ]
    )
    _, failed, after = report
    assert failed["plugin"] is None and failed["code"] == 1
    assert "plugwire fork server: cannot serve this launch: FileNotFoundError" in failed["stderr"]
    assert after["code"] == 5 and after["plugin"]["pid"] != after["launch_pid"]  # server lives


def test_off_with_the_environment_variable() -> None:
    report = _host([{"env": {"FS_ACT": "exit:0"}}] * 2, env={forkserver.ENV: "0"})
    for launch in report:
        assert launch["plugin"]["pid"] == launch["launch_pid"] == launch["plugin"]["imported_in"]


def test_off_when_the_plugin_runs_threads_at_start() -> None:
    report = _host([{"env": {"FS_ACT": "exit:0", "FS_THREAD": "1"}}] * 2)
    for launch in report:
        assert launch["plugin"]["pid"] == launch["launch_pid"] == launch["plugin"]["imported_in"]


def test_signals_reach_the_child_and_its_death_is_the_launchs() -> None:
    report = _host(
        [
            {"env": {"FS_ACT": "exit:0"}},
            {"env": {"FS_ACT": "term"}, "signal": int(signal.SIGTERM)},
            {"env": {"FS_ACT": "sigkill"}},
        ]
    )
    _, term, killed = report
    assert term["plugin"]["pid"] != term["launch_pid"]
    assert term["code"] == 7  # the child's SIGTERM handler ran and chose the status
    assert killed["plugin"]["pid"] != killed["launch_pid"]
    assert killed["code"] == -signal.SIGKILL  # the launch dies of the child's signal


@contextlib.contextmanager
def _started_host(launches: list[Any]) -> Iterator[subprocess.Popen[str]]:
    """The test host over ``launches``, left running (stdout a pipe); killed at exit."""
    host = subprocess.Popen(
        [sys.executable, str(HOST), json.dumps(launches)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield host
    finally:
        host.kill()
        host.wait()


@pytest.fixture
def running_host() -> Iterator[tuple[subprocess.Popen[str], list[dict[str, Any]]]]:
    """A host that ran one launch to its end and left a second running (a forked child)."""
    launches = [{"env": {"FS_ACT": "exit:0"}}, {"env": {"FS_ACT": "hang"}, "background": True}]
    with _started_host(launches) as host:
        assert host.stdout is not None
        yield host, [json.loads(host.stdout.readline()) for _ in launches]


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _forked_by(server: int, count: int) -> list[int]:
    """The server's children once there are ``count`` (it forks the next standby just
    after handing a launch over, which a loaded machine may delay)."""
    deadline = time.monotonic() + 10
    while len(children := _children(server)) != count:
        assert time.monotonic() < deadline, children
        time.sleep(0.01)
    return children


def test_nothing_outlives_a_sigkilled_host(running_host: Any) -> None:
    host, (_, background) = running_host
    launch_pid = background["launch_pid"]
    child = background["plugin"]["pid"]
    server = background["plugin"]["ppid"]
    assert child != launch_pid and all(_alive(p) for p in (launch_pid, child, server))
    forked = _forked_by(server, 2)  # the launch's child and the next standby
    assert child in forked
    host.kill()
    host.wait()
    # the launch sees its host die, the server too; the child and the standby die with it
    assert _gone_within([launch_pid, server, *forked]) == []


def test_a_killed_launch_takes_its_child_and_the_server_stays(running_host: Any) -> None:
    _host_proc, (_, background) = running_host
    launch_pid = background["launch_pid"]
    child = background["plugin"]["pid"]
    server = background["plugin"]["ppid"]
    os.kill(launch_pid, signal.SIGKILL)
    assert _gone_within([child]) == []
    assert _alive(server)


def test_the_server_ignores_garbage_and_serves_the_next_launch() -> None:
    # launch 1 starts the server; garbage arrives; launch 2 is still forked
    plan = [{"env": {"FS_ACT": "exit:0"}}, {"env": {"FS_ACT": "hang"}, "background": True}]
    with _started_host(plan) as host:
        assert host.stdout is not None
        first = json.loads(host.stdout.readline())
        name = first["plugin"]["name"]
        for junk in (b"", b"L", b"L\x00\x00\x00\x05hello", b"\xff" * 64, b"X" * 5):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect("\0" + name)
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                s.settimeout(10)
                try:
                    answer = s.recv(64)
                except ConnectionResetError:  # closed with our bytes unread
                    answer = b""
                assert answer == b""  # refused: closed without a child
        second = json.loads(host.stdout.readline())
        assert second["plugin"]["imported_in"] == first["plugin"]["pid"]


def test_the_server_exits_when_idle() -> None:
    launches = [
        {"env": {"FS_ACT": "exit:0", "FS_IDLE": "0.3"}},
        {"env": {"FS_ACT": "hang"}, "background": True},
    ]
    with _started_host(launches) as host:
        assert host.stdout is not None
        first = json.loads(host.stdout.readline())
        second = json.loads(host.stdout.readline())
        server = second["plugin"]["ppid"]
        assert second["plugin"]["imported_in"] == first["plugin"]["pid"]
        time.sleep(0.6)
        assert _alive(server)  # a child is running: not idle
        os.kill(second["launch_pid"], signal.SIGKILL)
        assert _gone_within([second["plugin"]["pid"], server], 5) == []


# -- delegate's fall-back: a launch that gets no child imports and serves itself -----


def _fake_server(name: str, reply: bytes, seen: list[tuple[bytes, int]]) -> threading.Thread:
    """A server under ``name`` that takes one hand-off (header and descriptors into
    ``seen``; the payload read to its end, as the real server does before it answers:
    hanging up on a launch still sending fails its send), answers ``reply`` and hangs
    up."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind("\0" + name)
    listener.listen(1)

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            header, ancdata, _flags, _addr = conn.recvmsg(5, socket.CMSG_SPACE(12))
            fds = [
                fd for _l, _k, data in ancdata for fd in struct.unpack(f"{len(data) // 4}i", data)
            ]
            for fd in fds:
                os.close(fd)
            seen.append((header, len(fds)))
            left = struct.unpack("!cI", header)[1]
            while left > 0 and (chunk := conn.recv(min(left, 65536))):
                left -= len(chunk)
            conn.sendall(reply)
        listener.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("reply", [b"", b"Q\x00\x00\x00\x01", b"P\x00"])
def test_delegate_returns_when_the_server_does_not_fork(reply: bytes) -> None:
    name = f"plugwire-forkserver-test/{os.getpid()}/{reply.hex()}"
    seen: list[tuple[bytes, int]] = []
    thread = _fake_server(name, reply, seen)
    forkserver.delegate(name)  # returns to the caller (it would exit once a child served)
    thread.join(5)
    assert not thread.is_alive()
    assert len(seen) == 1 and seen[0][0][:1] == b"L" and seen[0][1] == 3  # stdio offered


@pytest.mark.parametrize(("status", "code"), [(5 << 8, 5), (int(signal.SIGTERM), -signal.SIGTERM)])
def test_delegate_ends_as_a_child_that_ended_before_the_server_named_it(
    status: int, code: int
) -> None:
    # The child's own report of its end (it served and ended at once) may reach the
    # launch before the server's b"P": the launch ends with that status, it does not
    # serve the launch again by itself.
    name = f"plugwire-forkserver-test/{os.getpid()}/early-{status}"
    seen: list[tuple[bytes, int]] = []
    thread = _fake_server(name, struct.pack("!ci", b"X", status), seen)
    script = (
        "from plugwire.core import forkserver; "
        f"forkserver.delegate({name!r}); print('served by itself')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    thread.join(5)
    assert done.returncode == code and "served by itself" not in done.stdout
    assert len(seen) == 1 and seen[0][1] == 3


def test_delegate_returns_when_nobody_listens() -> None:
    forkserver.delegate(f"plugwire-forkserver-test/{os.getpid()}/none")  # returns


def test_key_names_the_user_the_host_and_the_plugin() -> None:
    name = forkserver.key("pkg.mod:provider")
    uid, ppid = name.split("/")[1:3]
    assert (int(uid), int(ppid)) == (os.getuid(), os.getppid())
    assert name != forkserver.key("pkg.mod:other")
    assert len(name) < 107  # a unix socket address


def test_enabled_follows_the_environment() -> None:
    assert forkserver.enabled({forkserver.ENV: "0"}) is False
    assert forkserver.enabled({}) is True


def test_overlapping_launches_never_share_what_was_prepared() -> None:
    """Every child prepares its own share, in itself: a launch that comes while another
    still runs gets the next standby, with its own."""
    launches = [
        {"env": {"FS_ACT": "echo"}, "stdin": "one\n"},
        {"env": {"FS_ACT": "hang"}, "background": True},  # still running at the next
        {"env": {"FS_ACT": "echo"}, "stdin": "three\n"},
        {"env": {"FS_ACT": "echo"}, "stdin": "four\n"},  # after the third has ended
    ]
    out = subprocess.run(
        [sys.executable, str(HOST), json.dumps(launches)],
        input="",  # the host goes on at once after the background launch
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    first, second, third, fourth = (json.loads(line) for line in out.splitlines())
    assert first["plugin"]["prepared"] == []  # the first launch imported: no server yet
    shares = [r["plugin"]["prepared"] for r in (second, third, fourth)]
    assert shares == [[r["plugin"]["pid"]] for r in (second, third, fourth)], shares
    assert third["code"] == 0 and third["stdout"] == "THREE\n"
    assert second["plugin"]["ppid"] == third["plugin"]["ppid"] == fourth["plugin"]["ppid"]


def test_a_failing_warm_up_leaves_the_launch_served() -> None:
    """warm() raising (here in every standby: the server has the first launch's
    environment) costs the launch nothing but the warm-up."""
    report = _host(
        [
            {"env": {"FS_ACT": "exit:0", "FS_WARM_FAIL": "1"}},
            {"env": {"FS_ACT": "echo"}, "stdin": "warm\n"},
        ]
    )
    first, second = report
    plugin = second["plugin"]
    assert plugin["imported_in"] == first["plugin"]["pid"] != plugin["pid"]
    assert plugin["warmed"] == plugin["prepared"] == [plugin["pid"]]
    assert second["code"] == 0 and second["stdout"] == "WARM\n"


def test_the_standby_dies_with_an_idle_server() -> None:
    launches = [{"env": {"FS_ACT": "exit:0", "FS_IDLE": "0.5"}}, {"env": {"FS_ACT": "exit:0"}}]
    with _started_host([*launches, {"env": {"FS_ACT": "hang"}, "background": True}]) as host:
        assert host.stdout is not None
        reports = [json.loads(host.stdout.readline()) for _ in range(3)]
        server = reports[1]["plugin"]["ppid"]
        forked = _forked_by(server, 2)  # the last launch's child and the next standby
        os.kill(reports[2]["launch_pid"], signal.SIGKILL)  # its child goes; the server idles
        standby = [p for p in forked if p != reports[2]["plugin"]["pid"]]
        assert len(standby) == 1
        assert _gone_within([server, *standby], 5) == []


def test_the_warm_up_has_a_private_scratch_directory_gone_with_the_server() -> None:
    first, second, third = _host([{"env": {"FS_ACT": "exit:0"}}] * 3)
    assert first["plugin"]["warm_dir"] == []  # the first launch was not warmed
    (scratch,) = second["plugin"]["warm_dir"]
    assert third["plugin"]["warm_dir"] == [scratch]  # one per server
    assert scratch.startswith(f"{forkserver.WARM_SCRATCH}/plugwire-forkserver-")
    assert [r["plugin"]["warm_dir_now"] for r in (first, second, third)] == [None] * 3
    # the host has exited: the server removed it (after its standby)
    deadline = time.monotonic() + 10
    while os.path.exists(scratch):
        assert time.monotonic() < deadline, f"{scratch} is still there"
        time.sleep(0.05)


def test_a_sigtermed_server_takes_its_standby_and_scratch_directory(running_host: Any) -> None:
    _host_proc, (_, background) = running_host
    server = background["plugin"]["ppid"]
    forked = _forked_by(server, 2)
    (scratch,) = background["plugin"]["warm_dir"]
    assert os.path.isdir(scratch)
    os.kill(server, signal.SIGTERM)
    assert _gone_within([server, *forked]) == []  # the running child dies with it too
    assert not os.path.exists(scratch)
