"""The bundled example NRI plugin, except that it does not exit when the runtime closes
its connection (and ignores SIGTERM): a runtime must fall back to SIGKILL."""

import signal
import time

from plugwire.ttrpc.nri.example import main

signal.signal(signal.SIGTERM, signal.SIG_IGN)
try:
    main([])
except BaseException:
    pass
time.sleep(60)
