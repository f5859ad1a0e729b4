"""`bag process --temporal offline`: a temporal model's official offline windows over one image topic.

Frames go into the estimator's offline clip in message order; each comes back with its depth once the windows
have made it final (up to a window of frames later), and then goes through the frame pipeline with that depth.
A frame of another size ends the clip (its frames are finished) and starts a new one; a frame that cannot be
decoded or is refused for its size gets no depth and goes through the pipeline, which reports it.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from depth_anything_ros.bag.frames import Frame
from depth_anything_ros.frame.pipeline import decode
from depth_anything_ros.models.image import check_work


class OfflineFeed:
    """Frames in, (frame, depth or None) out in the same order, depth from the estimator's offline windows."""

    def __init__(self, estimator):
        self.estimator = estimator
        self.clip = None
        self.waiting: deque[Frame] = deque()  # frames pushed into the clip whose depth is not final yet
        self.size: tuple[int, int] | None = None

    def add(self, frames: list[Frame]) -> list[tuple[Frame, torch.Tensor | None]]:
        """Push frames; return those whose depth is final (frames that cannot be pushed with None), in order."""
        ready: list[tuple[Frame, torch.Tensor | None]] = []
        for frame in frames:
            try:
                pixels, encoding = decode(frame.message)
                check_work(pixels.shape[0], pixels.shape[1], self.estimator.input_size)
            except ValueError:  # the pipeline reports the same problem
                ready += self.finish()
                ready.append((frame, None))
                continue
            if self.clip is not None and pixels.shape[:2] != self.size:
                ready += self.finish()
            if self.clip is None:
                self.clip, self.size = self.estimator.offline_clip(), pixels.shape[:2]
            self.waiting.append(frame)
            raw = self.estimator.upload([np.array(pixels)], encoding)
            ready += self._pair(self.clip.push(raw, encoding))
        return ready

    def finish(self) -> list[tuple[Frame, torch.Tensor]]:
        """End the current clip: every frame still waiting, with its depth."""
        if self.clip is None:
            return []
        ready = self._pair(self.clip.finish())
        self.clip = None
        return ready

    def _pair(self, depths: list[torch.Tensor]) -> list[tuple[Frame, torch.Tensor]]:
        return [(self.waiting.popleft(), depth) for depth in depths]
