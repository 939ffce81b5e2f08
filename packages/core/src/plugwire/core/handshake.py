"""Handshakes: the magic cookie and protocol-version negotiation.

Negotiation is pure: :func:`negotiate` takes what the peer offers and what we
support and returns the highest version both list, or raises
:class:`~plugwire.core.errors.VersionMismatchError` naming both lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from .errors import ConfigError, MagicCookieError, VersionMismatchError

__all__ = ["Handshake", "negotiate", "parse_versions"]


def negotiate(offered: Iterable[int], supported: Iterable[int], *, peer: str | None = None) -> int:
    """Return the highest version present in both ``offered`` and ``supported``.

    Raises :class:`VersionMismatchError` when they share none (also when either is empty).
    """
    offered_t = tuple(offered)
    supported_t = tuple(supported)
    common = set(offered_t) & set(supported_t)
    if not common:
        raise VersionMismatchError(
            f"no common protocol version: peer offers {sorted(offered_t)}, "
            f"we support {sorted(supported_t)}",
            offered=sorted(offered_t),
            supported=sorted(supported_t),
            peer=peer,
        )
    return max(common)


def parse_versions(text: str, *, what: str = "protocol versions") -> tuple[int, ...]:
    """Parse a comma-separated version list such as ``PLUGIN_PROTOCOL_VERSIONS="1,2,3"``.

    Blank entries are ignored; a non-integer entry raises :class:`ConfigError`.
    """
    versions = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            versions.append(int(part))
        except ValueError:
            raise ConfigError(
                f"malformed {what}",
                step="handshake",
                expected="comma-separated integers",
                seen=text,
            ) from None
    return tuple(versions)


def _versions(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


def _check_key(_inst: object, _attr: object, value: str) -> None:
    if not value or "=" in value:
        raise ConfigError(
            "invalid magic cookie key",
            step="handshake",
            expected="a non-empty env name",
            seen=value,
        )


@attrs.frozen
class Handshake:
    """What a host and its plugins agree on before any call.

    ``magic_cookie_key``/``magic_cookie_value`` is a UX guard, not security: it stops a
    user running a plugin binary by hand. ``protocol_versions`` lists the versions
    this side supports.
    """

    magic_cookie_key: str = attrs.field(validator=_check_key)
    magic_cookie_value: str
    protocol_versions: tuple[int, ...] = attrs.field(default=(1,), converter=_versions)

    def cookie_env(self) -> dict[str, str]:
        """The environment entry a host sets so its plugin passes :meth:`check_cookie`."""
        return {self.magic_cookie_key: self.magic_cookie_value}

    def check_cookie(self, environ: Mapping[str, str], *, peer: str | None = None) -> None:
        """Raise :class:`MagicCookieError` unless ``environ`` carries the cookie.

        The message is the friendly one go-plugin prints: this binary is a plugin, run
        it through its host.
        """
        seen = environ.get(self.magic_cookie_key)
        if seen != self.magic_cookie_value:
            raise MagicCookieError(
                "This binary is a plugin. These are not meant to be executed directly. "
                "Please execute the program that consumes these plugins, which will "
                "load any plugins automatically",
                peer=peer,
                step="magic cookie",
                expected=f"{self.magic_cookie_key}=<the host's cookie>",
                seen="unset" if seen is None else f"{self.magic_cookie_key}={seen!r}",
            )

    def negotiate(self, offered: Iterable[int], *, peer: str | None = None) -> int:
        """:func:`negotiate` ``offered`` against this handshake's versions."""
        return negotiate(offered, self.protocol_versions, peer=peer)
