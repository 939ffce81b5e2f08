"""The one-line JSON handshake a CIPD plugin host writes to the plugin's stdin.

``{"port":12345,"ticket":"..."}``: the 127.0.0.1 port of the host's gRPC server and
a secret the plugin sends back as ``x-plugin-ticket`` metadata on every call. The
host encodes it the way Go's protojson does; the plugin parses it with protobuf's
JSON rules (unknown fields and wrong types are errors).
"""

from __future__ import annotations

import base64
import json
import secrets

import attrs
from google.protobuf import json_format

from plugwire.core.errors import HandshakeError

from ._generated import cipd_plugin_pb2

__all__ = ["TICKET_METADATA_KEY", "PluginHandshake", "new_ticket"]

#: The gRPC metadata key carrying the ticket.
TICKET_METADATA_KEY = "x-plugin-ticket"

_EXPECTED = 'one JSON line {"port": <1..65535>, "ticket": "<secret>"}'


def new_ticket() -> str:
    """64 random bytes, standard base64 without padding (as LUCI's host makes them)."""
    return base64.b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()


@attrs.frozen
class PluginHandshake:
    """How the plugin reaches its host: ``port`` on 127.0.0.1, authenticated by ``ticket``."""

    port: int
    ticket: str = attrs.field(repr=False)

    def encode(self) -> bytes:
        """The compact JSON line, newline included."""
        body = json.dumps({"port": self.port, "ticket": self.ticket}, separators=(",", ":"))
        return body.encode() + b"\n"

    @classmethod
    def parse(cls, line: bytes | str, *, peer: str | None = "host") -> PluginHandshake:
        """Parse one handshake line; raise :class:`HandshakeError` when it is not one."""
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        text = text.strip()
        msg = cipd_plugin_pb2.Handshake()
        try:
            json_format.Parse(text, msg)
        except json_format.ParseError as exc:
            raise HandshakeError(
                f"malformed handshake: {exc}",
                peer=peer,
                step="handshake",
                expected=_EXPECTED,
                seen=text or "<empty line>",
            ) from None
        if not 0 < msg.port < 65536 or not msg.ticket:
            raise HandshakeError(
                "incomplete handshake",
                peer=peer,
                step="handshake",
                expected=_EXPECTED,
                seen=f"port={msg.port}, ticket {'present' if msg.ticket else 'missing'}",
            )
        return cls(msg.port, msg.ticket)
