"""A plugin launched through plugwire.core.forkserver, for tests/core/test_core_forkserver.py.

Prints one JSON line (what the launch sees), then acts on ``FS_ACT``: ``echo`` (read a
stdin line, print it upper-cased), ``exit:N``, ``sigkill`` (kill itself), ``term``
(wait for SIGTERM, then exit 7), ``hang`` (sleep until killed).
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
PREPARED: list[int] = []


if os.environ.get("FS_THREAD"):  # a thread started at import: no fork server
    import threading

    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()


def prepare() -> None:
    PREPARED[:] = [PREPARED[0] + 1] if PREPARED else [1]


forkserver.start(NAME, prepare=prepare)

STATE["served"] += 1
print(
    json.dumps(
        {
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "imported_in": IMPORTED_IN,
            "served": STATE["served"],
            "prepared": PREPARED,
            "argv": sys.argv[1:],
            "cwd": os.getcwd(),
            "x": os.environ.get("FS_X"),
            "name": NAME,
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
