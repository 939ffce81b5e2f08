"""A plugin that lies about its wire: ``$LIE`` is ``ttrpc`` (announces ttrpc, serves
gRPC with health) or ``grpc`` (announces grpc, serves ttrpc with health)."""

import asyncio
import os
import sys
import tempfile

from plugwire.core.transport import Address


async def main() -> None:
    lie = os.environ["LIE"]
    path = tempfile.mktemp(prefix="liar", dir=os.environ.get("PLUGIN_UNIX_SOCKET_DIR"))
    if lie == "ttrpc":
        import grpc

        from plugwire.grpc.goplugin.health import add_health

        server = grpc.aio.server()
        await add_health(server)
        server.add_insecure_port(f"unix:{path}")
        await server.start()
        print(f"1|1|unix|{path}|ttrpc|", flush=True)
        await asyncio.sleep(120)
    else:
        from plugwire.grpc.goplugin.wires import HEALTH, HealthServicer
        from plugwire.ttrpc import Server

        ttrpc_server = Server()
        ttrpc_server.add_servicer(HealthServicer(), HEALTH)
        async with ttrpc_server.listen(Address("unix", path)):
            print(f"1|1|unix|{path}|grpc|", flush=True)
            await asyncio.sleep(120)


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    asyncio.run(main())
