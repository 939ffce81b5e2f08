"""A plugwire admission plugin with test behaviours, picked by argv[1].

normal        good/* admitted; false/* handler returns False; boom/* raises
              RuntimeError (-> Aborted); crash/* exits 3; hang/* never decides;
              meta/* admitted iff an "allowed" metadata value equals the hex digest
              (visited 2 per page); slow/* admitted after 100 ms; anything else is
              logged at WARNING and refused (FailedPrecondition).
crash-once F  like normal, but crash/* exits 3 only if file F does not exist yet
              (it is created first), so a restarted plugin admits it.
admit-all     every admission admitted (benchmarks).
spy F         write the handshake line to file F, then wait for stdin EOF.
never         read the handshake, never connect, wait for stdin EOF.
exit-early    read the handshake, print to stderr and exit 4.
die-now       exit 5 at once, before reading anything.
die-once F    like die-now if file F does not exist yet (creating it), else normal.
deaf          read the handshake, connect, ignore stdin EOF and SIGTERM.
"""

from __future__ import annotations

import os
import sys

if sys.argv[1:2] == ["die-now"]:  # exits before reading the handshake
    os._exit(5)
if sys.argv[1:2] == ["die-once"]:  # like die-now the first time (marker file argv[2])
    try:
        os.close(os.open(sys.argv[2], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os._exit(5)
    except FileExistsError:
        sys.argv[1] = "normal"

import asyncio
import logging
import signal

from plugwire.grpc.cipd import plugin

log = logging.getLogger("modes")
mode = sys.argv[1] if len(sys.argv) > 1 else "normal"


async def normal(adm: plugin.Admission, info: plugin.InstanceInfo) -> object:
    pkg = adm.package
    if pkg.startswith("good/"):
        return None
    if pkg.startswith("false/"):
        return False
    if pkg.startswith("boom/"):
        raise RuntimeError("kaboom")
    if pkg.startswith("crash/"):
        if mode == "crash-once":
            marker = sys.argv[2]
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return None
        os._exit(3)
    if pkg.startswith("hang/"):
        await asyncio.Event().wait()
    if pkg.startswith("slow/"):
        await asyncio.sleep(0.1)
        return None
    if pkg.startswith("meta/"):
        seen = 0
        async for md in info.visit_metadata(["allowed"], page_size=2):
            seen += 1
            if md.value.decode() == adm.instance.hex_digest:
                return None
        raise plugin.not_admitted(f'no matching "allowed" metadata among {seen} entries')
    log.warning("rejecting %s", pkg)
    raise plugin.not_admitted(f"package {pkg} is not allowed")


async def admit_all(adm: plugin.Admission, info: plugin.InstanceInfo) -> None:
    return None


def read_line() -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 1)
        if not chunk:
            break
        line += chunk
    return line


if mode in ("normal", "crash-once"):
    plugin.serve(normal, version=f"plugwire-test ({mode})")
elif mode == "admit-all":
    plugin.serve(admit_all, version="plugwire-test (admit-all)")
elif mode == "spy":
    with open(sys.argv[2] + ".tmp", "wb") as f:
        f.write(read_line())
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    while os.read(0, 4096):
        pass
elif mode == "never":
    read_line()
    while os.read(0, 4096):
        pass
elif mode == "exit-early":
    read_line()
    print("giving up before connecting", file=sys.stderr)
    sys.exit(4)
elif mode == "deaf":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    async def deaf() -> None:
        import anyio
        import grpc.aio

        from plugwire.grpc.cipd.handshake import PluginHandshake
        from plugwire.grpc.cipd.plugin import _HostClient, _list_admissions

        hs = PluginHandshake.parse(read_line())
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{hs.port}")
        async with channel, anyio.create_task_group() as tg:
            await _list_admissions(normal, _HostClient(channel, hs.ticket), "deaf", tg)
            await anyio.sleep_forever()

    asyncio.run(deaf())
else:
    sys.exit(f"unknown mode {mode}")
