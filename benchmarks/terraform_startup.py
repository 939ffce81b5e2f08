"""Terraform provider start-up: launch -> handshake line, with AutoMTLS. Not a test.

Run: ``.venv/bin/python benchmarks/terraform_startup.py [--runs N]``

Terraform launches a provider several times per plan/apply, so this is the per-launch
cost a user waits for. Measured, median of N runs each (spawn to the announce line on
stdout, as Terraform's go-plugin client sees it):

* ``python -c pass``          -- the interpreter alone
* ``python -c 'import grpc'`` -- the baseline issue 18/21 compare with (to its first
  printed line, measured like the handshake)
* example provider, plain     -- ``python -m plugwire.grpc.terraform.examples.thing``
* example provider, AutoMTLS  -- the same with ``PLUGIN_CLIENT_CERT`` (what Terraform does)

and prints each figure as ms and as a ratio to the grpc import.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from plugwire.grpc.mtls import generate_cert
from plugwire.grpc.terraform.serving import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE

PY = sys.executable


def _line_time(code: str) -> float:
    """Spawn to the first stdout line of ``python -c code`` (measured like the handshake)."""
    start = time.perf_counter()
    proc = subprocess.Popen([PY, "-c", code + "; print(1, flush=True)"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.wait()
    return elapsed


def _handshake_time(env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [PY, "-m", "plugwire.grpc.terraform.examples.thing"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.terminate()
    proc.wait()
    if not line.startswith(b"1|"):
        raise SystemExit(f"no handshake line: {line!r}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    base = {
        "PATH": os.environ.get("PATH", ""),
        MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE,
        "PLUGIN_PROTOCOL_VERSIONS": "5,6",
        "PLUGIN_MIN_PORT": "10000",
        "PLUGIN_MAX_PORT": "25000",
    }
    mtls = {**base, "PLUGIN_CLIENT_CERT": generate_cert().cert_pem.decode()}
    cases = {
        "python -c pass": lambda: _line_time("pass"),
        "python -c 'import grpc'": lambda: _line_time("import grpc"),
        "provider handshake, plain": lambda: _handshake_time(base),
        "provider handshake, AutoMTLS": lambda: _handshake_time(mtls),
    }
    results = {}
    for name, run in cases.items():
        run()  # warm the page cache
        results[name] = statistics.median(run() for _ in range(args.runs)) * 1000
    grpc_ms = results["python -c 'import grpc'"]
    for name, ms in results.items():
        print(f"{name:32s} {ms:8.1f} ms  {ms / grpc_ms:5.2f}x import grpc")


if __name__ == "__main__":
    main()
