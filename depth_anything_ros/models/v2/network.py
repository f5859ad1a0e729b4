"""Depth-Anything-V2: DINOv2 ViT-14 encoder + DPT head, with state_dict keys equal to the official checkpoints."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from depth_anything_ros.models.blocks import DinoV2, DPTHead
from depth_anything_ros.models.variants import encoder_spec


class DepthAnythingV2(nn.Module):
    """Depth-Anything-V2 network: normalised RGB (B, 3, H, W), H and W multiples of 14 -> depth (B, H, W).

    With `max_depth` set (metric checkpoints) the output is sigmoid(x) * max_depth in metres; with
    `max_depth=None` (relative checkpoints) it is relu(x), affine-invariant inverse depth.
    """

    def __init__(self, encoder: str = "vits", max_depth: float | None = 20.0):
        super().__init__()
        self.spec = encoder_spec(encoder)
        self.encoder = encoder
        self.max_depth = None if max_depth is None else float(max_depth)
        self.pretrained = DinoV2(self.spec)
        self.depth_head = DPTHead(self.spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised image in the model dtype -> (B, H, W) float32 depth."""
        grid_h, grid_w = x.shape[-2] // self.spec.patch_size, x.shape[-1] // self.spec.patch_size
        out = self.depth_head(self.pretrained(x), grid_h, grid_w)
        if self.max_depth is None:
            return F.relu(out).squeeze(1)
        return (torch.sigmoid(out) * self.max_depth).squeeze(1)
