"""Ctrl-C of a long-running command (``plugwire run <family>``): start it, wait for the
line saying it runs, send SIGINT, collect what it printed while stopping."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

#: The line ``plugwire run <family>`` prints once the plugin runs (before Ctrl-C).
RUNNING = "running;"


@dataclass
class Interrupted:
    """What an interrupted command printed and how it ended."""

    #: stdout lines up to and including the ready line (newlines kept).
    before: list[str]
    #: stdout after the ready line (everything printed while stopping).
    stdout: str
    #: all of stderr.
    stderr: str
    returncode: int


def interrupt_when_ready(
    argv: Sequence[str], *, ready: str = RUNNING, timeout: float = 60
) -> Interrupted:
    """Run ``argv``, read stdout until a line starts with ``ready``, send SIGINT and wait
    up to ``timeout`` seconds for the exit.

    Fails the test (``AssertionError`` with the lines seen and stderr) when stdout ends
    before the ready line; ``subprocess.TimeoutExpired`` when the command does not exit
    within ``timeout`` of SIGINT. The process is killed on any failure.
    """
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        before: list[str] = []
        for line in proc.stdout:
            before.append(line)
            if line.startswith(ready):
                break
        else:
            proc.kill()
            _out, err = proc.communicate(timeout=timeout)
            raise AssertionError(
                f"{argv[:6]}: stdout ended without a {ready!r} line "
                f"(exit status {proc.returncode}); stdout: {before}; stderr: {err[-2000:]}"
            )
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Interrupted(before, out, err, proc.returncode)
