"""A provider target for test_terraform_launch_signals: its import takes a while.

Imported by ``launch("slow_import_probe:provider")``: it creates the file named by
``SLOW_IMPORT_MARKER`` and then sleeps ``SLOW_IMPORT_SECONDS``, so a test knows the
launch is importing and can signal it in that window.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from plugwire.grpc.terraform import Provider

Path(os.environ["SLOW_IMPORT_MARKER"]).touch()
time.sleep(float(os.environ.get("SLOW_IMPORT_SECONDS", "0.5")))


def provider() -> Provider:
    return Provider(name="probe")
