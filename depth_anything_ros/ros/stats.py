"""Thread-safe running figures for diagnostics: event rates and mean durations over a reporting window."""

from __future__ import annotations

import threading
import time


class WindowStats:
    """Counts events and accumulates named durations; `snapshot` returns rates and means since the last snapshot."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._counts: dict[str, int] = {}
        self._sums: dict[str, float] = {}
        self._samples: dict[str, int] = {}

    def count(self, name: str, n: int = 1) -> None:
        """Add `n` events to counter `name`."""
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def add(self, name: str, seconds: float) -> None:
        """Add one duration sample (seconds) to `name`."""
        with self._lock:
            self._sums[name] = self._sums.get(name, 0.0) + seconds
            self._samples[name] = self._samples.get(name, 0) + 1

    def snapshot(self) -> tuple[float, dict[str, float], dict[str, float]]:
        """Return (window seconds, {counter: events per second}, {duration: mean seconds}) and start a new window."""
        with self._lock:
            now = self._clock()
            window = max(now - self._start, 1e-9)
            rates = {k: v / window for k, v in self._counts.items()}
            means = {k: self._sums[k] / self._samples[k] for k in self._sums}
            self._start = now
            self._counts.clear()
            self._sums.clear()
            self._samples.clear()
            return window, rates, means
