"""Run by test_terraform_provider_serve: which modules a served provider loads.

Serves the example provider for protocol ``argv[1]`` until its announce line is out,
then prints a JSON report of sys.modules. ``PLUGIN_CLIENT_CERT`` in the environment
turns AutoMTLS on.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys


async def main(version: str) -> dict[str, object]:
    import plugwire.grpc.terraform as tf

    report: dict[str, object] = {
        "after_import": sorted(
            m for m in ("grpc", "cryptography", "google.protobuf") if m in sys.modules
        )
    }
    from plugwire.grpc.terraform.examples.thing import provider
    from plugwire.grpc.terraform.serving import MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE

    env = {MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE, "PLUGIN_PROTOCOL_VERSIONS": version}
    if os.environ.get("PLUGIN_CLIENT_CERT"):
        env["PLUGIN_CLIENT_CERT"] = os.environ["PLUGIN_CLIENT_CERT"]
    out, stop = io.StringIO(), asyncio.Event()
    task = asyncio.create_task(tf.serve_async(provider(), environ=env, stdout=out, stop=stop))
    while "\n" not in out.getvalue() and not task.done():  # noqa: ASYNC110 (StringIO)
        await asyncio.sleep(0.01)
    report["announce"] = out.getvalue().strip()
    stop.set()
    report["code"] = await task
    gen = "plugwire.grpc.terraform._generated."
    report["loaded"] = sorted(
        m
        for m in sys.modules
        if m.startswith(gen) or m == "cryptography" or m.startswith("plugwire.grpc.terraform._s")
    )
    return report


if __name__ == "__main__":
    print("REPORT " + json.dumps(asyncio.run(main(sys.argv[1]))), file=sys.__stdout__, flush=True)
