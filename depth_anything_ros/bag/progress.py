"""Progress line on stderr with frames/s and ETA: rewritten in place on a terminal, a line every 10 s in a log."""

from __future__ import annotations

import sys
import time

TERMINAL_PERIOD_S = 0.5
LOG_PERIOD_S = 10.0


class Progress:
    """Counts frames (or `unit`) towards a known total; a context manager. The final state is printed exactly once."""

    def __init__(self, total: int, desc: str, enabled: bool = True, stream=None, unit: str = "frames", done: int = 0):
        self.total, self.desc, self.enabled, self.unit = total, desc, enabled, unit
        self.stream = stream if stream is not None else sys.stderr
        self.done = self._first = done  # a resumed job starts at `done`; the rate counts from there
        self.note = ""  # shown after the count, e.g. "loss 0.41"
        self.start = time.monotonic()
        self._last_print = -float("inf")
        self._printed = ""  # the last line printed
        self._terminal = bool(getattr(self.stream, "isatty", lambda: False)())

    @property
    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.start

    @property
    def rate(self) -> float:
        """Units (frames) per second so far."""
        return (self.done - self._first) / self.elapsed if self.elapsed > 0 else 0.0

    def update(self, n: int) -> None:
        """Count n more frames; print when the period has passed or the total is reached."""
        self.done += n
        period = TERMINAL_PERIOD_S if self._terminal else LOG_PERIOD_S
        if self.enabled and (time.monotonic() - self._last_print >= period or self.done >= self.total):
            self._print()

    def _print(self) -> None:
        eta = (self.total - self.done) / self.rate if self.rate > 0 else float("nan")
        note = f", {self.note}" if self.note else ""
        line = (f"{self.desc}: {self.done}/{self.total} {self.unit}{note}, {self.rate:.2f} {self.unit}/s, "
                f"ETA {eta:.0f} s")
        if line.split(",")[0] == self._printed.split(",")[0]:
            return  # the same count again (e.g. a final update of 0 frames)
        self._last_print, self._printed = time.monotonic(), line
        print(f"\r{line}" if self._terminal else line, end="" if self._terminal else "\n", file=self.stream,
              flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled and self.done > self._first and self.done < self.total:
            self._print()  # interrupted or fewer frames than announced: say where it stopped
        if self.enabled and self._terminal and self._printed:
            print(file=self.stream, flush=True)
