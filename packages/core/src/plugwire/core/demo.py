"""What a protocol family contributes to ``plugwire demo``.

Each family registers an entry point in the ``plugwire.demos`` group naming an async
function ``async def demo() -> Sequence[DemoRow]``. ``plugwire demo`` runs every one
it finds (a family whose extra is not installed is simply absent), catches what they
raise, and prints the rows as one table.
"""

from __future__ import annotations

import attrs

__all__ = ["DemoRow"]


@attrs.frozen
class DemoRow:
    """One line of the demo table: what ran, whether it worked, what was seen."""

    family: str
    check: str
    ok: bool
    detail: str = ""
    seconds: float | None = None
