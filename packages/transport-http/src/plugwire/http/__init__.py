"""plugwire.http: the http transport (work in progress; see the issue tracker)."""

from __future__ import annotations

__all__: list[str] = []
