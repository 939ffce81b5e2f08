"""A client for the {{ cookiecutter.service_name }} service.

``{{ cookiecutter.project_slug }}-client ADDRESS NAME [START]`` greets ``NAME`` and
counts down from ``START`` (default 3), printing one line per reply.
"""

from __future__ import annotations

import sys

import anyio
from plugwire.ttrpc import Client, ServiceClient

from .proto import SERVICE, CountRequest, GreetRequest


async def call(address: str, name: str, start: int) -> None:
    async with await Client.connect(address) as client:
        stub = ServiceClient(client, SERVICE)
        reply = await stub.Greet(GreetRequest(name=name), timeout=5)
        print(reply.message)
        async for tick in await stub.Countdown(CountRequest(start=start), timeout=5):
            print(tick.value)


def main() -> None:
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: {{ cookiecutter.project_slug }}-client ADDRESS NAME [START]")
    start = int(sys.argv[3]) if len(sys.argv) == 4 else 3
    anyio.run(call, sys.argv[1], sys.argv[2], start)


if __name__ == "__main__":
    main()
