"""Progress line on stderr with frames/s and ETA: tqdm when installed, else a plain line once a second."""

from __future__ import annotations

import sys
import time


class Progress:
    """Counts frames towards a known total; use as a context manager."""

    def __init__(self, total: int, desc: str, enabled: bool = True):
        self.total, self.desc, self.enabled = total, desc, enabled
        self.done = 0
        self.start = time.monotonic()
        self._last_print = 0.0
        self._bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, desc=desc, unit="frame", file=sys.stderr, dynamic_ncols=True)

    @property
    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.start

    @property
    def rate(self) -> float:
        """Frames per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def update(self, n: int) -> None:
        """Count n more frames."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and (time.monotonic() - self._last_print >= 1.0 or self.done >= self.total):
            self._last_print = time.monotonic()
            eta = (self.total - self.done) / self.rate if self.rate > 0 else float("nan")
            print(f"\r{self.desc}: {self.done}/{self.total} frames, {self.rate:.2f} frames/s, ETA {eta:.0f} s",
                  end="", file=sys.stderr, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            print(file=sys.stderr)
