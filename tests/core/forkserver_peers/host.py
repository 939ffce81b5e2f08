"""A host for tests/core/test_core_forkserver.py: launches the plugin as told, reports.

argv[1] is a JSON list of launches, each ``{"env": {...}, "args": [...], "cwd": ...,
"stdin": "..."}``; every launch runs to its end in turn (``"background": true``: left
running), and one JSON line per launch goes to stdout: the plugin's own line, the pid
the host started, the exit status and the stdout/stderr that followed. With
``"background"`` the host prints the launch's first line and its pid, then waits for
stdin to close (the test SIGKILLs it meanwhile).
"""

import json
import os
import subprocess
import sys

PLUGIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugin.py")

for launch in json.loads(sys.argv[1]):
    env = {**os.environ, **launch.get("env", {})}
    argv = [sys.executable, PLUGIN, *launch.get("args", [])]
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=launch.get("cwd"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    with open(f"/proc/{proc.pid}/stat") as stat:  # its start time, in clock ticks
        launch_started = int(stat.read().rsplit(") ", 1)[1].split()[19])
    line = proc.stdout.readline()
    first = json.loads(line) if line else None  # None: the launch printed nothing
    if launch.get("background"):
        report = {"launch_pid": proc.pid, "launch_started": launch_started, "plugin": first}
        print(json.dumps(report), flush=True)
        sys.stdin.read()
        continue
    if launch.get("signal"):
        proc.stdout.readline()  # "waiting": its handler is in place
        proc.send_signal(launch["signal"])
    out, err = proc.communicate(launch.get("stdin", ""), timeout=30)
    print(
        json.dumps(
            {
                "launch_pid": proc.pid,
                "launch_started": launch_started,
                "plugin": first,
                "code": proc.returncode,
                "stdout": out,
                "stderr": err,
            }
        ),
        flush=True,
    )
