"""Temporal models' state per camera: which stream a frame continues, and when a stream starts over (no ROS).

A temporal estimator (Video Depth Anything, `estimator.temporal`) keeps the hidden states of a camera's past frames.
A camera's stream starts over (its state is dropped, the frame becomes a first frame) when
- the frame's size differs from the stream's (a camera reconfigured),
- its stamp is earlier than the previous frame's (a bag looped or replayed, a clock reset),
- its stamp is more than `max_gap` seconds after the previous frame's (a camera restart, a long drop-out);
  max_gap 0 never starts over for a gap; a stamp of 0 (unknown, e.g. image files) never counts,
- or on request (`reset`: lifecycle deactivate, the node's model.reset_temporal, a new bag topic pass).
Memory per camera is the estimator's stream state (for VDA at most 42 frames' hidden states, temporal.py there).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import torch

DEFAULT_MAX_GAP = 1.0  # seconds


@dataclass
class _Stream:
    state: object  # the estimator's StreamState
    stamp: float = 0.0


class TemporalStreams:
    """The stream state of every camera of one temporal estimator."""

    def __init__(self, estimator):
        self.estimator = estimator
        self._streams: dict[Hashable, _Stream] = {}

    def reset(self, camera: Hashable | None = None) -> None:
        """Start over the stream of one camera, or of every camera with None."""
        if camera is None:
            self._streams.clear()
        else:
            self._streams.pop(camera, None)

    def restart_reason(self, camera: Hashable, size: tuple[int, int], stamp: float, max_gap: float) -> str | None:
        """Why this frame cannot continue the camera's stream (see the module text), or None when it can."""
        stream = self._streams.get(camera)
        if stream is None or stream.state.size is None:
            return None
        if stream.state.size != size:
            return (f"image size changed from {stream.state.size[1]}x{stream.state.size[0]} to {size[1]}x{size[0]}: "
                    "temporal state reset")
        if stamp and stream.stamp:
            if stamp < stream.stamp:
                return f"stamp went back by {stream.stamp - stamp:.3f} s: temporal state reset"
            if max_gap > 0 and stamp - stream.stamp > max_gap:
                return f"{stamp - stream.stamp:.3f} s since the previous frame (> {max_gap:g} s): temporal state reset"
        return None

    def depth(self, camera: Hashable, raw: torch.Tensor, encoding: str, stamp: float, max_gap: float,
              mirrored: bool) -> tuple[torch.Tensor, str | None]:
        """One frame (1, H, W[, C]) -> (1 or 2, H, W) depth (the mirrored image's second) and the restart reason.

        The mirrored image (for the confidence) attends to the same past frames and leaves the stream unchanged.
        """
        size = (int(raw.shape[1]), int(raw.shape[2]))
        reason = self.restart_reason(camera, size, stamp, max_gap)
        if reason is not None or camera not in self._streams:
            self._streams[camera] = _Stream(self.estimator.new_stream())
        stream = self._streams[camera]
        est = self.estimator
        flipped = [est.estimate_stream(raw.flip(2), encoding, stream.state, commit=False)] if mirrored else []
        depth = est.estimate_stream(raw, encoding, stream.state)
        stream.stamp = stamp
        return torch.cat([depth] + flipped), reason
