"""Live status for anything a person waits on.

On a terminal a spinner line shows what is happening and how long it has taken; elsewhere
(CI logs, pipes) each step prints once, so logs stay readable.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from kubelab.i18n import _

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class Status:
    """One line of live status: a message, a detail that changes, elapsed seconds."""

    def __init__(self, message: str, *, stream: TextIO | None = None) -> None:
        self.message = message
        self.detail = ""
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def elapsed(self) -> float:
        """Seconds since the status started."""
        return time.monotonic() - self._start

    def update(self, detail: str) -> None:
        """Change the detail shown after the message."""
        self.detail = detail

    def start(self) -> None:
        """Begin showing the status."""
        if self._tty:
            self._thread = threading.Thread(target=self._spin, daemon=True)
            self._thread.start()
        else:
            print(f"... {self.message}", file=self._stream, flush=True)

    def finish(self, outcome: str | None = None) -> None:
        """Stop the spinner and print the final line (`outcome` defaults to "done")."""
        if outcome is None:
            outcome = _("done")
        self._stop.set()
        if self._thread:
            self._thread.join()
        line = f"{self.message}: {outcome} ({self.elapsed:.1f}s)"
        if self._tty:
            self._stream.write("\r\033[K✔ " + line + "\n")
        else:
            self._stream.write("    " + line + "\n")
        self._stream.flush()

    def stop(self) -> None:
        """Stop the spinner and clear its line, printing no outcome (Ctrl-C: none is true)."""
        self._stop.set()
        if self._thread:
            self._thread.join()
            self._stream.write("\r\033[K")
            self._stream.flush()

    def _spin(self) -> None:
        i = 0
        while not self._stop.wait(0.1):
            detail = f" · {self.detail}" if self.detail else ""
            frame = _FRAMES[i % len(_FRAMES)]
            self._stream.write(f"\r\033[K{frame} {self.message}{detail} ({self.elapsed:.0f}s)")
            self._stream.flush()
            i += 1


@contextmanager
def status(message: str, *, stream: TextIO | None = None) -> Iterator[Status]:
    """Show live status for the duration of a block."""
    s = Status(message, stream=stream)
    s.start()
    try:
        yield s
    except KeyboardInterrupt:
        s.stop()  # the CLI's "interrupted" is the one line a Ctrl-C prints
        raise
    except BaseException:
        s.finish(_("failed"))
        raise
    s.finish()
