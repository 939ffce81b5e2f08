"""Prints the announce line given in $RAW_ANNOUNCE and waits.

With $IGNORE_SIGTERM set it also ignores SIGTERM (only SIGKILL stops it).
"""

import os
import signal
import sys
import time

if os.environ.get("IGNORE_SIGTERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

sys.stdout.write(os.environ["RAW_ANNOUNCE"] + "\n")
sys.stdout.flush()
time.sleep(120)
