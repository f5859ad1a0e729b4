"""Streaming Video Depth Anything one frame at a time, with the official rule for which past frames it attends to.

The official streaming mode (video_depth_stream.py, infer_video_depth_one) keeps the hidden states of past frames
in a list of slots. The first frame's states fill WINDOW slots (as if a whole window of that frame had been seen);
each later frame attends to the states of slots 0 and 1 and of the last WINDOW - 3 slots (WINDOW - 1 past frames
plus itself make one window), then its states are appended. From frame KEEP_FROM_FRAME on, slot 1 is dropped after
each append, so the list holds at most MAX_SLOTS entries: memory per camera is bounded by
MAX_SLOTS frames' hidden states (8 tensors per frame, `StreamState.state_bytes`).

Offline (video_depth.py, infer_video_depth): windows of WINDOW frames advance by WINDOW - OVERLAP; the first
OVERLAP inputs of a window are replaced by KEYFRAMES of the previous window's input (its first frame, one from the
middle and its last BLEND), and the depth of the frames two windows share is blended linearly over BLEND frames.
The metric models take no scale and shift between windows. `OfflineWindows` does this with at most one window of
frames held, returning each depth once it is final.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from depth_anything_ros.models.vda.network import MAX_FRAMES, HiddenStates

WINDOW = MAX_FRAMES  # 32 frames per forward pass, as in offline inference
OVERLAP = 10  # offline windows share this many frames
BLEND = 8  # offline: frames blended linearly between consecutive windows
MAX_SLOTS = (WINDOW - OVERLAP) * 2 - 1 - (OVERLAP - BLEND) + 1  # 42: the official "gap" + 1
KEEP_FROM_FRAME = MAX_SLOTS - WINDOW + 1  # 11: from this frame index on, slot 1 is dropped after each append
STEP = WINDOW - OVERLAP  # 22 new frames per offline window
KEYFRAMES = (0, 12) + tuple(range(WINDOW - BLEND, WINDOW))  # inputs of the previous window a window starts with


def attended_slots(slots: list[HiddenStates]) -> list[HiddenStates]:
    """Return the past frames' states a new frame attends to: slots 0 and 1 and the last WINDOW - 3."""
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
        """Return the hidden states the next frame attends to, each (N, WINDOW - 1, C); None at first."""
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


def blend_weights() -> list[float]:
    """Weights of the newer window over the BLEND shared frames: 0, 1/7, ..., 6/7, 1 (as the official floats)."""
    step = 1.0 / (BLEND - 1)
    return [0.0] + [i * step for i in range(1, BLEND - 1)] + [1.0]


class OfflineWindows:
    """Official offline inference fed one frame at a time: network inputs (3, h, w) in, final depths (H, W) out.

    `run` maps a window (WINDOW, 3, h, w) to its depths (WINDOW, H, W). `push` returns the depths that became final
    (in frame order, none until a window is full); `finish` runs the last window(s), filled with copies of the last
    frame, and returns the rest. A clip shorter than a window is one padded window.
    """

    def __init__(self, run: Callable[[torch.Tensor], torch.Tensor]):
        self.run = run
        self.pending: list[torch.Tensor] = []  # inputs from the current window's start on
        self.previous: torch.Tensor | None = None  # the previous window's input, keyframes included
        self.held: torch.Tensor | None = None  # depth of the last BLEND frames of the previous window, not final
        self.seen = self.emitted = 0

    def push(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Add a frame's network input (3, h, w); return the depths now final."""
        self.pending.append(x)
        self.seen += 1
        return self._window() if len(self.pending) == WINDOW else []

    def finish(self) -> list[torch.Tensor]:
        """Run what is left (padded) and return every remaining depth."""
        out = []
        while self.pending:
            out += self._window()
        out += self._emit([] if self.held is None else list(self.held))
        self.held = None
        return out

    def _window(self) -> list[torch.Tensor]:
        window = torch.stack(self.pending + [self.pending[-1]] * (WINDOW - len(self.pending)))
        if self.previous is not None:
            window[:OVERLAP] = self.previous[list(KEYFRAMES)]
        depth = self.run(window)
        if self.held is None:
            final = list(depth[:WINDOW - BLEND])
        else:
            shared = depth[OVERLAP - BLEND:OVERLAP]
            final = [h * (1 - w) + s * w for h, s, w in zip(self.held, shared, blend_weights(), strict=True)]
            final += list(depth[OVERLAP:WINDOW - BLEND])
        self.held, self.previous, self.pending = depth[WINDOW - BLEND:], window, self.pending[STEP:]
        return self._emit(final)

    def _emit(self, depths: list[torch.Tensor]) -> list[torch.Tensor]:
        """Depths of real frames only (a padded window's copies are dropped)."""
        kept = depths[:max(0, self.seen - self.emitted)]
        self.emitted += len(kept)
        return kept
