"""Prints the announce line given in $RAW_ANNOUNCE and waits."""

import os
import sys
import time

sys.stdout.write(os.environ["RAW_ANNOUNCE"] + "\n")
sys.stdout.flush()
time.sleep(120)
