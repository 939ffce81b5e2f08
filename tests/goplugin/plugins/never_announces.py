"""Never prints its announce line (tests StartTimeout)."""

import sys
import time

print("starting up, slowly", file=sys.stderr, flush=True)
time.sleep(120)
