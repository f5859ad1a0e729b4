"""Latest-frame slots: one pending frame per camera, stale frames dropped and counted, fair batches for one worker."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from typing import Any


class LatestFrameSlots:
    """Newest frame per camera; `take` hands a worker every pending frame, at most `max_batch`, round-robin."""

    def __init__(self, cameras: Sequence[Hashable], max_batch: int = 0):
        if not cameras:
            raise ValueError("LatestFrameSlots needs at least one camera")
        if len(set(cameras)) != len(cameras):
            raise ValueError(f"camera names must be unique, got {list(cameras)}")
        if max_batch < 0:
            raise ValueError(f"max_batch must be >= 0 (0 = all cameras), got {max_batch}")
        self._cameras = list(cameras)
        self._max_batch = max_batch or len(self._cameras)
        self._pending: dict[Hashable, Any] = {}
        self._next = 0  # index of the camera served first in the next batch
        self._closed = False
        self._cond = threading.Condition()
        self.received = dict.fromkeys(self._cameras, 0)
        self.dropped = dict.fromkeys(self._cameras, 0)

    @property
    def cameras(self) -> list[Hashable]:
        """Camera keys in scheduling order."""
        return list(self._cameras)

    def put(self, camera: Hashable, frame: Any) -> bool:
        """Store `frame` as the newest of `camera`; True when it replaced a frame nobody took (counted as dropped)."""
        with self._cond:
            if camera not in self.received:
                raise KeyError(f"unknown camera {camera!r}")
            replaced = camera in self._pending
            self._pending[camera] = frame
            self.received[camera] += 1
            if replaced:
                self.dropped[camera] += 1
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> list[tuple[Hashable, Any]]:
        """Wait for at least one pending frame and return up to `max_batch` (camera, frame) pairs, fairly ordered.

        Returns an empty list on timeout or once `close` was called. Cameras are served round-robin, starting
        after the last camera served, so a fast camera cannot starve a slow one when `max_batch` < cameras.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._pending or self._closed, timeout):
                return []
            if self._closed:
                return []
            batch = []
            n = len(self._cameras)
            for k in range(n):
                idx = (self._next + k) % n
                camera = self._cameras[idx]
                if camera in self._pending:
                    batch.append((camera, self._pending.pop(camera)))
                    self._next = (idx + 1) % n
                    if len(batch) == self._max_batch:
                        break
            return batch

    def clear(self) -> int:
        """Drop every pending frame (counted as dropped); returns how many were dropped."""
        with self._cond:
            for camera in self._pending:
                self.dropped[camera] += 1
            count = len(self._pending)
            self._pending.clear()
            return count

    def close(self) -> None:
        """Wake every waiting `take` and make later ones return immediately."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        """Accept `take` calls again after `close`."""
        with self._cond:
            self._closed = False
