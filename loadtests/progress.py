"""Progress while a run goes: one live line on a terminal, plain lines in a log.

Everything goes to stderr so stdout stays free for results (``compare``).
"""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, stream=None, quiet: bool = False, min_interval: float = 0.25):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.min_interval = min_interval
        self._last_update = 0.0
        self._width = 0

    def update(self, text: str) -> None:
        """A transient status (overwritten by the next one on a terminal; throttled in logs)."""
        if self.quiet:
            return
        now = time.monotonic()
        if self.live:
            if now - self._last_update < self.min_interval:
                return
            self._last_update = now
            padded = text.ljust(self._width)
            self._width = len(text)
            self.stream.write("\r" + padded)
            self.stream.flush()
        elif now - self._last_update >= 5.0:  # a log file gets a line every few seconds
            self._last_update = now
            self.stream.write(text + "\n")
            self.stream.flush()

    def line(self, text: str) -> None:
        """A permanent line (a finished step)."""
        if self.quiet:
            return
        if self.live and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.stream.write(text + "\n")
        self.stream.flush()
        self._last_update = 0.0


def bar(done: float, total: float, width: int = 24) -> str:
    share = 0.0 if total <= 0 else min(1.0, max(0.0, done / total))
    filled = int(round(share * width))
    return "[" + "#" * filled + "." * (width - filled) + f"] {share * 100:3.0f}%"
