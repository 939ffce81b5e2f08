"""The helpers ``plugwire.core.check`` gives the family checkers and ``plugwire run``:
:class:`LogCapture` (a plugin's log lines as evidence) and :func:`run_until_interrupted`
(the tail of every ``plugwire run <family>``: Ctrl-C, captured logs, problems)."""

from __future__ import annotations

import logging
import signal
import sys
import textwrap
from collections.abc import Iterator

import anyio
import anyio.lowlevel
import click
import pytest
from support.cli_interrupt import interrupt_when_ready  # type: ignore[import-not-found,unused-ignore]

from plugwire.core.check import LogCapture, run_until_interrupted


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("plugwire.test.core-check")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    log.handlers.clear()
    log.propagate = True
    log.setLevel(logging.NOTSET)


@pytest.fixture
def sigint_restored() -> Iterator[None]:
    saved = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, saved)


def test_log_capture_keeps_formatted_messages_from_its_level_up(logger: logging.Logger) -> None:
    everything: list[str] = []
    warnings: list[str] = []
    logger.addHandler(LogCapture(everything))
    logger.addHandler(LogCapture(warnings, logging.WARNING))
    logger.debug("stderr: %s", "starting")
    logger.info("plain")
    logger.warning("dropped %s after %d s", "plugin", 3)
    assert everything == ["stderr: starting", "plain", "dropped plugin after 3 s"]
    assert warnings == ["dropped plugin after 3 s"]


def test_log_capture_formatting_error_reaches_the_logging_call(logger: logging.Logger) -> None:
    into: list[str] = []
    logger.addHandler(LogCapture(into))
    with pytest.raises(TypeError):
        logger.info("%d lines", "many")
    assert into == []


def test_run_until_interrupted_attaches_captures_for_the_run_only(
    logger: logging.Logger, sigint_restored: None
) -> None:
    into: list[str] = []
    capture = LogCapture(into)
    seen: list[bool] = []

    async def main() -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(capture in logger.handlers)
        logger.info("during the run")

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a background job starts
    run_until_interrupted(main, captures=[(logger, capture)])
    assert seen == [True]
    assert into == ["during the run"]
    assert capture not in logger.handlers
    logger.info("after the run")
    assert into == ["during the run"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_run_until_interrupted_raises_the_problems_as_one_click_error(
    logger: logging.Logger, sigint_restored: None
) -> None:
    problems: list[str] = []
    capture = LogCapture([])

    async def main() -> None:
        problems.append("pin a: undecided after 1.0 s")
        problems.append("pin b: failed: exit status 5")

    with pytest.raises(click.ClickException) as caught:
        run_until_interrupted(main, problems=problems, captures=[(logger, capture)])
    assert caught.value.message == "pin a: undecided after 1.0 s; pin b: failed: exit status 5"
    assert capture not in logger.handlers


def test_run_until_interrupted_lets_other_errors_through(
    logger: logging.Logger, sigint_restored: None
) -> None:
    capture = LogCapture([])

    async def main() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_until_interrupted(main, problems=["never reported"], captures=[(logger, capture)])
    assert capture not in logger.handlers


def test_run_until_interrupted_ends_quietly_on_ctrl_c_even_with_sigint_ignored() -> None:
    script = textwrap.dedent(
        """
        import signal, sys
        import anyio
        from plugwire.core.check import run_until_interrupted

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # started as a background job

        async def main():
            print("running; Ctrl-C stops it", flush=True)
            try:
                await anyio.sleep_forever()
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.sleep(0.05)
                    print("stopped cleanly", flush=True)

        run_until_interrupted(main)
        print("returned", flush=True)
        """
    )
    run = interrupt_when_ready([sys.executable, "-c", script], timeout=30)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["stopped cleanly", "returned"], run.stdout + run.stderr
    assert "KeyboardInterrupt" not in run.stderr
