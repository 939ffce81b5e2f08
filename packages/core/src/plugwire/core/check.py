"""The report model of ``plugwire check`` / ``plugwire inspect``, shared by every family.

A family's checker (``plugwire.grpc.goplugin.check``, ``plugwire.ttrpc.nri.check``...)
launches a plugin as the real host would and fills one :class:`CheckReport`: a list of
:class:`CheckResult` rows (``pass``/``fail``/``skip``), the services the plugin serves
and a few facts (the announce line, the negotiated version, a reattach config). The
report renders as a table (:meth:`CheckReport.table`) or JSON (:meth:`CheckReport.to_json`);
``plugwire check`` exits 0 only when no row failed and at least one passed.

A failing row carries the *evidence*: what was seen on the wire (an announce line, a
gRPC status and its details, stderr lines of the plugin, an exit status), so the table
alone says what to fix.

Two helpers serve the checkers and ``plugwire run <family>``: :class:`LogCapture`
keeps a plugin's log lines (its stderr, its runtime's warnings) as evidence, and
:func:`run_until_interrupted` runs a ``plugwire run`` command until it ends or Ctrl-C.

Checkers register click commands in the ``plugwire.commands`` entry-point group under
dotted names: ``check.<family>``, ``inspect.<family>`` and ``run.<family>`` become
``plugwire check <family>``, ``plugwire inspect <family>`` and ``plugwire run <family>``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal

import attrs
import click

from .errors import PluginExitedError, PlugwireError

__all__ = [
    "PASS",
    "SKIP",
    "CheckReport",
    "CheckResult",
    "LogCapture",
    "Step",
    "evidence_of",
    "finish",
    "run_until_interrupted",
    "tail",
]

Status = Literal["pass", "fail", "skip"]
PASS: Status = "pass"
FAIL: Status = "fail"
SKIP: Status = "skip"


@attrs.define
class CheckResult:
    """One row of the table: a check, its status, what was seen, and (on failure) why."""

    name: str
    status: Status
    detail: str = ""
    evidence: str = ""
    seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == PASS


def tail(lines: Sequence[str], n: int = 5) -> str:
    """The last ``n`` lines, joined: stderr evidence of a plugin."""
    return " | ".join(line.strip() for line in list(lines)[-n:] if line.strip())


def evidence_of(exc: BaseException) -> str:
    """What an exception says about the wire: a plugwire error's message with its peer,
    step, expected and seen; a gRPC error's status code and details; the plugin's exit
    status and last stderr lines when it died."""
    code = getattr(exc, "code", None)
    if callable(code) and hasattr(exc, "details"):  # grpc.aio.AioRpcError, without grpc
        try:
            return f"gRPC status {code().name}: {exc.details()}"
        except Exception:  # pragma: no cover - defensive
            pass
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, PluginExitedError):
        extra = getattr(exc, "stderr_tail", None)
        last = tail(extra or [], 1)
        if last and last not in text:
            text += f"; stderr: {tail(extra or [])}"
    return text


@attrs.define
class Step:
    """What the body of :meth:`CheckReport.step` sets: the detail shown on success, or
    ``fail(evidence)`` to fail the row without raising, or ``skip(reason)``."""

    detail: str = ""
    evidence: str = ""
    status: Status = PASS

    def fail(self, detail: str, evidence: str = "") -> None:
        self.status = FAIL
        self.detail = detail
        self.evidence = evidence

    def skip(self, reason: str) -> None:
        self.status = SKIP
        self.detail = reason


@attrs.define
class CheckReport:
    """Every check run against one plugin (see the module docstring)."""

    family: str
    target: str
    results: list[CheckResult] = attrs.field(factory=list)
    services: list[str] = attrs.field(factory=list)
    facts: dict[str, Any] = attrs.field(factory=dict)

    # -- filling -----------------------------------------------------------------

    def add(
        self,
        name: str,
        ok: bool,
        detail: str = "",
        evidence: str = "",
        seconds: float | None = None,
    ) -> CheckResult:
        row = CheckResult(name, PASS if ok else FAIL, detail, "" if ok else evidence, seconds)
        self.results.append(row)
        return row

    def skip(self, name: str, reason: str) -> CheckResult:
        row = CheckResult(name, SKIP, reason)
        self.results.append(row)
        return row

    @contextlib.asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[Step]:
        """A timed row: the body's exception fails it with :func:`evidence_of` as evidence
        (and is swallowed: the checker goes on to its next check)."""
        step = Step()
        start = time.monotonic()
        try:
            yield step
        except Exception as exc:
            message = exc.message if isinstance(exc, PlugwireError) else type(exc).__name__
            step.fail(step.detail or message, evidence_of(exc))
        self.results.append(
            CheckResult(name, step.status, step.detail, step.evidence, time.monotonic() - start)
        )

    def failed(self, name: str) -> bool:
        """Whether the row called ``name`` failed (or is missing)."""
        return not any(r.name == name and r.ok for r in self.results)

    # -- verdict -----------------------------------------------------------------

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {PASS: 0, FAIL: 0, SKIP: 0}
        for row in self.results:
            out[row.status] += 1
        return out

    @property
    def ok(self) -> bool:
        """No row failed and at least one passed."""
        counts = self.counts
        return counts[FAIL] == 0 and counts[PASS] > 0

    # -- output ------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "target": self.target,
            "ok": self.ok,
            "counts": self.counts,
            "services": list(self.services),
            "facts": dict(self.facts),
            "checks": [attrs.asdict(r) for r in self.results],
        }

    def table(self, *, color: bool = False) -> str:
        """The report as a plain-text table (``color``: ANSI colours on the status)."""
        header = ("check", "result", "time", "detail")
        rows = [
            (
                r.name,
                r.status.upper() if r.status != PASS else "ok",
                "" if r.seconds is None else f"{r.seconds * 1000:.0f} ms",
                r.detail,
            )
            for r in self.results
        ]
        widths = [max(len(x[i]) for x in [header, *rows]) for i in range(3)]
        lines = [f"plugwire check {self.family}: {self.target}", ""]
        for i, row in enumerate([header, *rows]):
            cells = [c.ljust(w) for c, w in zip(row[:3], widths, strict=True)]
            if color and i > 0:
                fg = {"ok": "green", "FAIL": "red", "SKIP": "yellow"}[row[1]]
                cells[1] = click.style(cells[1], fg=fg, bold=row[1] == "FAIL")
            lines.append("  ".join([*cells, row[3]]).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 6)
            elif self.results[i - 1].evidence:
                lines.append(" " * (widths[0] + 2) + "evidence: " + self.results[i - 1].evidence)
        if self.services:
            lines += ["", "services:", *(f"  {s}" for s in self.services)]
        if self.facts:
            lines += ["", "facts:"]
            lines += [f"  {k}: {_fact(v)}" for k, v in self.facts.items()]
        c = self.counts
        lines += ["", f"{c[PASS]} passed, {c[FAIL]} failed, {c[SKIP]} skipped"]
        return "\n".join(lines)


def _fact(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def finish(report: CheckReport, *, as_json: bool, exit_code: bool = True) -> None:
    """Print ``report`` (table or JSON) and exit non-zero unless it is :attr:`~CheckReport.ok`."""
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(report.table(color=sys.stdout.isatty()))
    if exit_code and not report.ok:
        sys.exit(1)


class LogCapture(logging.Handler):
    """A logging handler that appends the message of every record it gets to a list.

    ``into`` receives ``record.getMessage()`` (the message with its arguments, no level,
    logger name or time), in order; records below ``level`` are dropped. The checkers
    attach one to ``plugwire.plugin.<name>`` (the plugin's stderr lines) and quote the
    last lines with :func:`tail` as a failing row's evidence.

    A record whose message cannot be formatted (``msg % args`` fails) is not appended:
    the formatting error (:class:`TypeError`, :class:`ValueError`...) propagates to the
    logging call that made the record (:meth:`logging.Handler.handle` does not catch it).

    :param into: the list the messages are appended to (the caller keeps it).
    :param level: the lowest level captured (default :data:`logging.DEBUG`: every record
        the logger passes on).
    """

    def __init__(self, into: list[str], level: int = logging.DEBUG) -> None:
        super().__init__(level)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


def run_until_interrupted(
    main: Callable[[], Awaitable[object]],
    *,
    problems: Sequence[str] = (),
    captures: Iterable[tuple[logging.Logger, logging.Handler]] = (),
) -> None:
    """Run ``main`` with :func:`anyio.run` until it returns or Ctrl-C: the tail of a
    ``plugwire run <family>`` command.

    Ctrl-C stops it even when the process started with SIGINT ignored (a shell's
    background job, a CI runner), where Python installs no KeyboardInterrupt handler of
    its own: the SIGINT handler is set to :func:`signal.default_int_handler` first (and
    left so). The :class:`KeyboardInterrupt` that stops the run is not an error: ``main``
    is expected to stop its plugin in a shielded ``finally``.

    Each ``(logger, handler)`` of ``captures`` is attached for the run and removed
    after it, whatever happened (typically :class:`LogCapture` handlers filling the
    lists ``main`` quotes in ``problems``).

    ``problems`` is read once the run is over (``main`` appends to it): when it is not
    empty the command fails.

    :param main: the command's async body, run with no arguments on anyio's default
        (asyncio) backend.
    :param problems: what went wrong, filled by ``main`` (the list itself, not a copy).
    :param captures: ``(logger, handler)`` pairs attached for the run only.
    :raises click.ClickException: after the run, when ``problems`` is not empty; its
        message is the problems joined by ``"; "`` (click prints ``Error: ...`` and
        exits 1).
    :raises Exception: whatever ``main`` raises other than KeyboardInterrupt,
        unchanged (the handlers are removed first).
    :raises ValueError: when called outside the main thread (only it may set a
        signal handler).
    """
    import anyio

    attached = list(captures)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for logger, handler in attached:
        logger.addHandler(handler)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            anyio.run(main)
    finally:
        for logger, handler in attached:
            logger.removeHandler(handler)
    if problems:
        raise click.ClickException("; ".join(problems))


def run_checker(
    checker: Callable[[], Awaitable[CheckReport]], *, backend: str = "asyncio"
) -> CheckReport:
    """Run an async checker to completion (from a click command)."""
    import anyio

    return anyio.run(checker, backend=backend)


def command_error(exc: PlugwireError) -> click.ClickException:
    """A usage-level failure (bad option) as a click error."""
    return click.ClickException(str(exc))
