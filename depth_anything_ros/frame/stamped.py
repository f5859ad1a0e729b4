"""Messages kept by header stamp, with the two pairing rules the package uses (thread-safe, no ROS)."""

from __future__ import annotations

import bisect
import threading


class StampedHistory:
    """Items by stamp (ns), sorted; the oldest dropped beyond `capacity` (None: keep all).

    `latest_at` is the camera_info rule (the item of the stamp, else the latest before, else the first), `nearest`
    the reference-depth rule (the nearest stamp within a bound). The node adds from the executor and looks up from
    the worker, hence the lock.
    """

    def __init__(self, capacity: int | None = None):
        self._capacity = capacity
        self._stamps: list[int] = []
        self._items: list[object] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._stamps)

    def add(self, stamp_ns: int, item) -> None:
        """Keep `item` for `stamp_ns` (the same stamp again replaces it), dropping the oldest beyond capacity."""
        with self._lock:
            index = bisect.bisect_left(self._stamps, stamp_ns)
            if index < len(self._stamps) and self._stamps[index] == stamp_ns:
                self._items[index] = item
                return
            self._stamps.insert(index, stamp_ns)
            self._items.insert(index, item)
            if self._capacity is not None and len(self._stamps) > self._capacity:
                del self._stamps[0], self._items[0]

    def latest_at(self, stamp_ns: int):
        """Return the item of `stamp_ns`, else the latest before it, else the earliest; None when empty."""
        with self._lock:
            if not self._stamps:
                return None
            index = bisect.bisect_right(self._stamps, stamp_ns)
            return self._items[max(index - 1, 0)]

    def nearest(self, stamp_ns: int, max_diff_ns: int):
        """Return the item stamped nearest to `stamp_ns` within `max_diff_ns`, or None."""
        with self._lock:
            index = bisect.bisect_left(self._stamps, stamp_ns)
            candidates = [i for i in (index - 1, index) if 0 <= i < len(self._stamps)]
            if not candidates:
                return None
            best = min(candidates, key=lambda i: abs(self._stamps[i] - stamp_ns))
            return self._items[best] if abs(self._stamps[best] - stamp_ns) <= max_diff_ns else None
