"""Size limits every plugwire HTTP peer enforces."""

from __future__ import annotations

from typing import Any

import attrs

from plugwire.core.errors import ConfigError

__all__ = ["DEFAULT_LIMITS", "Limits"]


def _positive(_inst: object, attr: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ConfigError(
            f"{attr.name} must be positive", step="limits", expected="> 0", seen=value
        )


@attrs.frozen
class Limits:
    """How much a peer accepts before refusing a message.

    ``max_body_size`` bounds one request or response body (bytes after any
    transfer decoding); ``max_header_size`` bounds the request line or status line
    plus all header fields. A server answers an oversized request with ``413`` or
    ``431`` and closes the connection; a client raises
    :class:`~plugwire.core.errors.MessageTooLargeError`.

    ``request_timeout`` (seconds) bounds receiving one request on a server, from its
    first byte to the end of its body: a peer trickling bytes (slow loris) gets
    ``408`` and the connection closes. An idle keep-alive connection is not timed.
    """

    max_body_size: int = attrs.field(default=16 * 1024 * 1024, validator=_positive)
    max_header_size: int = attrs.field(default=64 * 1024, validator=_positive)
    request_timeout: float = attrs.field(default=60.0, validator=_positive)


DEFAULT_LIMITS = Limits()
