"""plugwire.http: HTTP/1.1 (+ JSON) over unix sockets and TCP, on anyio.

The server is h11 driven by anyio (asyncio and trio alike); the client is httpx.
:class:`HttpTransport` is the ``http`` entry of ``plugwire.transports``; the
dr-provision plugin provider protocol lives in :mod:`plugwire.http.drp`.
"""

from __future__ import annotations

from .client import HttpClient
from .errors import HttpStatusError
from .limits import DEFAULT_LIMITS, Limits
from .messages import Headers, Request, Response, decode_json
from .server import Handler, HttpServer, listen
from .transport import HttpChannel, HttpTransport

__all__ = [
    "DEFAULT_LIMITS",
    "Handler",
    "Headers",
    "HttpChannel",
    "HttpClient",
    "HttpServer",
    "HttpStatusError",
    "HttpTransport",
    "Limits",
    "Request",
    "Response",
    "decode_json",
    "listen",
]
