"""A provider executable that breaks the protocol in the way MISBEHAVE says."""

from __future__ import annotations

import json
import os
import sys
import time

mode = os.environ.get("MISBEHAVE", "")
command = sys.argv[1] if len(sys.argv) > 1 else ""

if command == "define":
    if mode == "define-junk":
        print("this is not json")
    elif mode == "define-invalid":
        print(json.dumps({"Name": "", "PluginVersion": 4, "AvailableActions": [{"Model": "m"}]}))
    elif mode == "define-hang":
        time.sleep(60)
    elif mode == "define-fail":
        sys.stderr.write("cannot define today\n")
        sys.exit(2)
    else:
        print(json.dumps({"Name": "misbehave", "PluginVersion": 4}))
    sys.exit(0)

if command == "unpack":
    if mode == "unpack-escape":
        # dr-provision gives unpack a directory: this one writes beside and out of it
        os.makedirs(sys.argv[2], exist_ok=True)
        os.symlink("/etc", os.path.join(sys.argv[2], "etc"))
        with open("stray.txt", "w") as f:
            f.write("written into the working directory\n")
    sys.exit(0)

if command == "listen":
    if mode == "junk":
        print("Starting up, please wait", flush=True)
        print("{oops}", flush=True)
        sys.stderr.write("fatal: no config\n")
        sys.exit(3)
    if mode == "silent":
        print("almost ready...", flush=True)
        time.sleep(60)
    if mode == "ready-no-socket":
        print("READY!", flush=True)
        time.sleep(60)
    sys.exit(0)
sys.exit(1)
