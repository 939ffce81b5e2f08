"""What a protocol family contributes to ``plugwire demo``.

Each family registers an entry point in the ``plugwire.demos`` group naming an async
function ``async def demo() -> Sequence[DemoRow]``. ``plugwire demo`` runs every one
it finds (a family whose extra is not installed is simply absent), catches what they
raise, and prints the rows as one table.

A row is ``ok``, ``FAILED`` or ``SKIP``: a step that did not run (no control plane,
an option not given) is a skipped row (:meth:`DemoRow.skip`), never an ``ok`` one, and
its detail says what would run it. The summary counts skips apart.
"""

from __future__ import annotations

import attrs

__all__ = ["DemoRow"]


@attrs.frozen
class DemoRow:
    """One line of the demo table: what ran, whether it worked, what was seen.

    ``skipped``: the step did not run (then ``ok`` is ``False`` too and ``detail`` says
    why and how to run it).
    """

    family: str
    check: str
    ok: bool
    detail: str = ""
    seconds: float | None = None
    skipped: bool = False

    @classmethod
    def skip(cls, family: str, check: str, reason: str) -> DemoRow:
        """A step that did not run; ``reason`` says why and what would run it."""
        return cls(family, check, False, reason, None, skipped=True)

    @property
    def status(self) -> str:
        """``ok``, ``FAILED`` or ``SKIP``."""
        return "SKIP" if self.skipped else ("ok" if self.ok else "FAILED")

    @property
    def failed(self) -> bool:
        return not self.ok and not self.skipped
