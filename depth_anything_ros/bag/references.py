"""Reference depth for `bag process --scale-reference`: paired with images by stamp while the bag streams by.

A bag is read in log-time order and a reference depth is often logged a little after its image, so images are
held back until the reader is `max_stamp_diff` + LAG_MARGIN_S of log time past them, then paired with the reference
of the nearest stamp within `max_stamp_diff` (the node's rule, StampedHistory.nearest). Only a window of references is
kept, so memory does not grow with the bag.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from depth_anything_ros.bag import messages
from depth_anything_ros.bag.bagfile import BagError
from depth_anything_ros.bag.frames import Frame
from depth_anything_ros.frame import image_codec
from depth_anything_ros.frame.stamped import StampedHistory

LAG_MARGIN_S = 0.5
WINDOW = 256  # references kept; at 30 Hz about 8 s of bag


class ReferenceFeed:
    """References of one topic by header stamp, and the frames waiting for theirs (topic None: no waiting)."""

    def __init__(self, topic: str | None, max_stamp_diff: float):
        self.topic = topic
        self.max_diff_ns = round(max_stamp_diff * 1e9)
        self.lag_ns = round((max_stamp_diff + LAG_MARGIN_S) * 1e9)
        self._history = StampedHistory(WINDOW)
        self._pending: deque[Frame] = deque()

    def add(self, topic: str, msgtype: str, raw: bytes | memoryview) -> None:
        """Keep a message of the reference topic (others are ignored)."""
        if topic == self.topic:
            if msgtype != messages.IMAGE:
                raise BagError(f"--scale-reference {topic} has type {msgtype}, expected {messages.IMAGE} "
                               "(32FC1 metres or 16UC1 millimetres)")
            self._history.add(messages.header_stamp(raw), bytes(raw))

    def hold(self, frame: Frame) -> list[Frame]:
        """Queue an image; return the frames whose reference can no longer arrive, in order."""
        if self.topic is None:
            return [frame]
        self._pending.append(frame)
        return self.release(frame.log_time)

    def release(self, log_time: int | None) -> list[Frame]:
        """Return the held frames at least the lag older than `log_time` (all of them for None)."""
        ready = []
        while self._pending and (log_time is None or self._pending[0].log_time + self.lag_ns <= log_time):
            ready.append(self._pending.popleft())
        return ready

    def reference_for(self, frame: Frame) -> np.ndarray | None:
        """(h, w) float32 reference depth in metres (NaN invalid) nearest the frame's stamp, or None."""
        if self.topic is None:
            return None
        raw = self._history.nearest(frame.stamp, self.max_diff_ns)
        if raw is None:
            return None
        try:
            return image_codec.depth_from_image(messages.deserialize(raw, messages.IMAGE))
        except image_codec.ImageDecodeError as exc:
            raise BagError(f"--scale-reference {self.topic}: {exc}") from exc
