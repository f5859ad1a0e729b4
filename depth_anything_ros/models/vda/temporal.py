"""Streaming Video Depth Anything one frame at a time, with the official rule for which past frames it attends to.

The official streaming mode (video_depth_stream.py, infer_video_depth_one) keeps the hidden states of past frames
in a list of slots. The first frame's states fill WINDOW slots (as if a whole window of that frame had been seen);
each later frame attends to the states of slots 0 and 1 and of the last WINDOW - 3 slots (WINDOW - 1 past frames
plus itself make one window), then its states are appended. From frame KEEP_FROM_FRAME on, slot 1 is dropped after
each append, so the list holds at most MAX_SLOTS entries: memory per camera is bounded by
MAX_SLOTS x 8 hidden states of (h/14 * w/14 * 2 ... ) values, see `StreamState.state_bytes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from depth_anything_ros.models.vda.network import MAX_FRAMES, HiddenStates

WINDOW = MAX_FRAMES  # 32 frames per forward pass, as in offline inference
OVERLAP = 10  # offline windows share this many frames
BLEND = 8  # offline: frames blended linearly between consecutive windows
MAX_SLOTS = (WINDOW - OVERLAP) * 2 - 1 - (OVERLAP - BLEND) + 1  # 42: the official "gap" + 1
KEEP_FROM_FRAME = MAX_SLOTS - WINDOW + 1  # 11: from this frame index on, slot 1 is dropped after each append


def attended_slots(slots: list[HiddenStates]) -> list[HiddenStates]:
    """The past frames' states a new frame attends to: slots 0 and 1 and the last WINDOW - 3 (WINDOW - 1 in all)."""
    return slots[:2] + slots[-(WINDOW - 3):]


@dataclass
class StreamState:
    """One camera's stream: the frame size it started with, frames seen, and the slots of past hidden states."""

    size: tuple[int, int] | None = None  # (H, W) of the frames as they come; a different size needs a reset
    frames: int = 0
    slots: list[HiddenStates] = field(default_factory=list)

    def reset(self) -> None:
        """Forget every past frame: the next frame starts a new stream."""
        self.size, self.frames, self.slots = None, 0, []

    def past(self) -> HiddenStates | None:
        """The hidden states the next frame attends to, each (N, WINDOW - 1, C), or None before the first frame."""
        if not self.slots:
            return None
        chosen = attended_slots(self.slots)
        return [torch.cat([states[i] for states in chosen], dim=1) for i in range(len(chosen[0]))]

    def push(self, states: HiddenStates) -> None:
        """Record the hidden states of the frame just run (official slot rule)."""
        if self.frames == 0:
            self.slots = [states] * WINDOW
        else:
            self.slots.append(states)
        if self.frames >= KEEP_FROM_FRAME:
            del self.slots[1]
        self.frames += 1

    def state_bytes(self) -> int:
        """Bytes the distinct hidden states held in the slots take (at most MAX_SLOTS frames' worth)."""
        distinct = {id(states): states for states in self.slots}.values()
        return sum(t.numel() * t.element_size() for states in distinct for t in states)
