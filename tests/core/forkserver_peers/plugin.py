"""A plugin launched through plugwire.core.forkserver, for tests/core/test_core_forkserver.py.

Prints one JSON line (what the launch sees), then acts on ``FS_ACT``: ``echo`` (read a
stdin line, print it upper-cased), ``exit:N``, ``fastexit:N`` (end through
plugwire.core._fastexit with status N, then linger in its last step until killed),
``sigkill`` (kill itself), ``term`` (wait for SIGTERM, then exit 7), ``hang`` (sleep
until killed).
"""

import json
import os
import signal
import sys
import time

from plugwire.core import forkserver

if os.environ.get("FS_IDLE"):
    forkserver.IDLE_SECONDS = float(os.environ["FS_IDLE"])
NAME = forkserver.key("tests.forkserver:plugin")
if os.environ.get("FS_RMDIR_FIRST"):  # the launch's directory vanishes before the fork
    HERE = os.getcwd()
    os.chdir("/")
    os.rmdir(HERE)
    os.getcwd = lambda: HERE
forkserver.delegate(NAME)

# the "imports": done once per fork server, by the first launch
IMPORTED_IN = os.getpid()
STATE = {"served": 0}
PREPARED: list[int] = []  # the pid of the process that ran prepare()
WARMED: list[int] = []  # the pid of the process that ran warm()
PRELOADED: list[int] = []  # the pid of the process that ran preload()


if os.environ.get("FS_THREAD"):  # a thread started at import: no fork server
    import threading

    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()


def prepare() -> None:
    PREPARED.append(os.getpid())


def preload() -> None:
    PRELOADED.append(os.getpid())


WARM_DIR: list[str | None] = []  # what warm() got from forkserver.warm_dir()


def warm() -> None:
    WARMED.append(os.getpid())
    scratch = forkserver.warm_dir()
    WARM_DIR.append(scratch if scratch and os.path.isdir(scratch) else None)
    if os.environ.get("FS_WARM_FAIL"):  # the first launch's environment: every warm fails
        raise RuntimeError("warm-up failed")


def started() -> int:
    """This process's start time, in clock ticks since boot."""
    with open(f"/proc/{os.getpid()}/stat") as stat:
        return int(stat.read().rsplit(") ", 1)[1].split()[19])


def inheritable() -> list[int]:
    """Descriptors above stdio that a process this one starts would inherit."""
    fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    return sorted(fd for fd in fds if fd > 2 and _inheritable(fd))


def _inheritable(fd: int) -> bool:
    try:
        return os.get_inheritable(fd)
    except OSError:  # the listing's own descriptor, closed by now
        return False


forkserver.start(NAME, prepare=prepare, warm=warm, preload=preload)

STATE["served"] += 1
print(
    json.dumps(
        {
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "imported_in": IMPORTED_IN,
            "served": STATE["served"],
            "prepared": PREPARED,
            "warmed": WARMED,
            "preloaded": PRELOADED,
            "warm_dir": WARM_DIR,
            "warm_dir_now": forkserver.warm_dir(),
            "started": started(),
            "argv": sys.argv[1:],
            "cwd": os.getcwd(),
            "x": os.environ.get("FS_X"),
            "name": NAME,
            "inheritable": inheritable(),
        }
    ),
    flush=True,
)
act = os.environ.get("FS_ACT", "")
if act == "echo":
    print(sys.stdin.readline().strip().upper(), flush=True)
    print("to stderr", file=sys.stderr, flush=True)
elif act.startswith("exit:"):
    sys.exit(int(act[5:]))
elif act.startswith("fastexit:"):
    from plugwire.core import _fastexit

    report = _fastexit.before_exit  # a forked child's: tells the launch its status

    def report_then_linger(code: int) -> None:
        if report is not None:
            report(code)
        while True:  # the process never gets to its end by itself
            time.sleep(1)

    _fastexit.before_exit = report_then_linger
    print("to stderr", file=sys.stderr, flush=True)
    _fastexit.exit_process(int(act[9:]))
elif act == "sigkill":
    os.kill(os.getpid(), signal.SIGKILL)
elif act == "term":
    signal.signal(signal.SIGTERM, lambda *_: os._exit(7))
    print("waiting", flush=True)
    while True:
        time.sleep(1)
elif act == "hang":
    while True:
        time.sleep(1)
