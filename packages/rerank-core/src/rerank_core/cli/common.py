"""What every subcommand shares: user errors, CLI-worded hints, the progress bar and Ctrl-C handling."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TextIO

from rerank_core.errors import RerankError


class UserError(Exception):
    """A problem the user can fix: reported as one line, exit code 2, no traceback."""


# Library hints speak Python ("Pass api_key=..."); on the command line the same advice names a flag or a file.
CLI_HINTS: tuple[tuple[str, str], ...] = (
    (r"Pass api_key=\.\.\. or set", "Set"),
    (r"or pass model=\.\.\.", "or pass --model"),
    (r"Pass base_url=\.\.\.", "Pass --base-url URL"),
    (r"set on_failure='passthrough'", 'set on_failure = "passthrough" in a --config file'),
    (r"options=\{", "a --config file with options = {"),
)


def cli_hint(text: str) -> str:
    for pattern, replacement in CLI_HINTS:
        text = re.sub(pattern, replacement, text)
    return text


def describe(error: BaseException) -> str:
    if isinstance(error, RerankError):
        return cli_hint(str(error))
    return str(error)


class Progress:
    """A one-line progress bar on stderr, redrawn in place; silent when disabled."""

    def __init__(self, stream: TextIO, enabled: bool, unit: str) -> None:
        self.stream, self.enabled, self.unit = stream, enabled, unit
        self._last = 0.0
        self._drawn = False

    def show(self, done: int, total: int | None, fraction: float | None = None, force: bool = False) -> None:
        """`done` units of `total` (None when unknown; then `fraction` of the input read, if known)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:  # redraw at most ten times a second
            return
        self._last = now
        if fraction is None and total:
            fraction = done / total
        width = 30
        filled = int(width * min(fraction or 0.0, 1.0))
        bar = "#" * filled + "-" * (width - filled)
        count = f"{done}/{total}" if total is not None else str(done)
        self.stream.write(f"\r[{bar}] {count} {self.unit}")
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


class Interrupt:
    """Ctrl-C at any point: flush what is written, say what was done, exit 130 at once.

    The work runs in worker threads (torch in the local engine, HTTP waits on the event loop); a cooperative
    stop would wait for the running batch, and torch cannot be cancelled mid-call. Every finished result is
    already written (output is streamed and flushed per result), so the handler flushes, reports and ends the
    process with `os._exit`, which also skips the C++ teardown of busy torch threads.
    """

    def __init__(self) -> None:
        self.summary: Callable[[], str] = lambda: "nothing was finished"
        self.on_exit: list[Callable[[], None]] = []
        self._held = 0
        self._pending = False

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold a Ctrl-C until the block ends, so a result taken off the queue is written and counted whole.
        Signal handlers run on the main thread, between bytecodes, as the writer does: no lock is needed."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if not self._held and self._pending:
                self._pending = False  # the exit steps write under held() too
                self._exit()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._held:
            self._pending = True
            return
        self._exit()

    def _exit(self) -> None:
        for step in self.on_exit:
            with contextlib.suppress(Exception):  # leaving anyway; the rest must still be flushed
                step()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a reentrant flush or a closed pipe: nothing more to save
                stream.flush()
        try:
            summary = self.summary()
        except Exception:
            summary = "interrupted"
        os.write(2, f"\nrerank: interrupted: {summary}\n".encode())
        os._exit(130)


INTERRUPT = Interrupt()
