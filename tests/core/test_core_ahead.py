"""plugwire.core._ahead: work a launch hands to a forked helper while it imports comes
back as bytes, or as None (never an exception) when the helper fails, dies or is too
slow; the helper holds none of the host's pipes, is always reaped, and never outlives
the process that forked it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from plugwire.core import _ahead


def _children() -> set[int]:
    """This process's children, from /proc (zombies included)."""
    found: set[int] = set()
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
            found.update(int(pid) for pid in f.read().split())
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_helper_s_bytes_come_back_and_it_is_reaped() -> None:
    before = _children()
    ahead = _ahead.start(lambda: b"made in %d" % os.getpid())
    assert ahead is not None
    assert ahead.pid != os.getpid()
    assert ahead.result(10) == b"made in %d" % ahead.pid
    assert ahead.pid not in _children() - before  # reaped: no zombie left
    assert ahead.result(10) is None  # taken once


def test_no_helper_where_the_platform_cannot_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "fork")
    assert _ahead.start(lambda: b"unreachable") is None


def test_large_results_are_read_whole() -> None:
    payload = os.urandom(1 << 20)  # beyond a pipe's buffer: the helper blocks in write
    ahead = _ahead.start(lambda: payload)
    assert ahead is not None
    assert ahead.result(10) == payload


def test_work_that_raises_gives_none() -> None:
    def broken() -> bytes:
        raise RuntimeError("no certificates today")

    before = _children()
    ahead = _ahead.start(broken)
    assert ahead is not None
    assert ahead.result(10) is None
    assert ahead.pid not in _children() - before


def test_a_helper_that_dies_midway_gives_none() -> None:
    def dies() -> bytes:
        os.kill(os.getpid(), signal.SIGKILL)
        return b"never"

    ahead = _ahead.start(dies)
    assert ahead is not None
    assert ahead.result(10) is None


def _sleep_then(data: bytes) -> bytes:
    time.sleep(60)
    return data


def test_a_slow_helper_is_killed_at_the_timeout() -> None:
    ahead = _ahead.start(lambda: _sleep_then(b"late"))
    assert ahead is not None
    started = time.monotonic()
    assert ahead.result(0.3) is None
    assert time.monotonic() - started < 5
    assert not _alive(ahead.pid)  # killed and reaped, not left sleeping


def test_the_helper_holds_none_of_the_host_s_pipes() -> None:
    def stdio() -> bytes:
        return "\n".join(os.readlink(f"/proc/self/fd/{fd}") for fd in (0, 1, 2)).encode()

    ahead = _ahead.start(stdio)
    assert ahead is not None
    result = ahead.result(10)
    assert result is not None
    assert result.decode().split("\n") == [os.devnull] * 3


@pytest.mark.fault
def test_the_helper_dies_with_the_process_that_forked_it() -> None:
    code = (
        "import time; from plugwire.core import _ahead; "
        "a = _ahead.start(lambda: time.sleep(60) or b''); "
        "print(a.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        helper = int(parent.stdout.readline())
        assert _alive(helper)
        parent.kill()  # SIGKILL: no clean-up of its own
        parent.wait()
        deadline = time.monotonic() + 5
        while _alive(helper) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(helper)
    finally:
        parent.kill()
        parent.wait()
