"""Depth Anything 3 metric (DA3METRIC-LARGE) network: DINOv2 ViT-L + DPT head with an exp depth and a sky head.

Written from the published architecture, with the state_dict keys of the official checkpoint less its 'model.'
prefix: ``backbone.pretrained.*`` (no mask, register or camera token; final LayerNorm eps 1e-5) and ``head.*`` (V2's
DPT layout without the unused skip unit of the top fusion block, plus ``scratch.sky_output_conv2``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from depth_anything_ros.models.blocks import DinoV2, DPTHead
from depth_anything_ros.models.variants import encoder_spec

ENCODER = "vitl"
FILE_PREFIX = "model."  # the official API module holds the network as `self.model`
FINAL_NORM_EPS = 1e-5  # the backbone's last LayerNorm is torch's default; the blocks' norms use 1e-6
FOCAL_REFERENCE = 300.0  # metric depth = network output x focal (px at the network input) / 300


class SkyDPTHead(DPTHead):
    """DPT head with two output branches from one neck: depth logits and sky logits."""

    def __init__(self):
        spec = encoder_spec(ENCODER)
        super().__init__(spec, top_skip_unit=False)
        half = spec.features // 2
        self.scratch.sky_output_conv2 = nn.Sequential(
            nn.Conv2d(half, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 1, kernel_size=1),
        )

    def forward(self, taps: list[torch.Tensor], grid_h: int, grid_w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Four (B, gh*gw, D) maps -> depth and sky logits, each (B, 14*gh, 14*gw)."""
        feat = self.neck(taps, grid_h, grid_w)
        return self.scratch.output_conv2(feat)[:, 0], self.scratch.sky_output_conv2(feat)[:, 0]


class DepthAnything3Metric(nn.Module):
    """DA3METRIC-LARGE: normalised RGB (B, 3, H, W), H and W multiples of 14 -> (depth, sky), each (B, H, W) float32.

    depth = exp(logits) is the focal-normalised output (metres only after x focal / 300, see `metric_depth`);
    sky = relu(logits), sky where >= 0.3. The head runs in float32 whatever the backbone's dtype, as in the
    official forward, where the head is outside autocast.
    """

    def __init__(self):
        super().__init__()
        self.spec = encoder_spec(ENCODER)
        self.backbone = nn.Module()
        self.backbone.pretrained = DinoV2(self.spec, mask_token=False, norm_eps=FINAL_NORM_EPS)
        self.head = SkyDPTHead()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) in the backbone's dtype -> depth (B, H, W), sky (B, H, W), both float32."""
        grid_h, grid_w = x.shape[-2] // self.spec.patch_size, x.shape[-1] // self.spec.patch_size
        taps = [t.float() for t in self.backbone.pretrained(x)]
        depth_logits, sky_logits = self.head(taps, grid_h, grid_w)
        return torch.exp(depth_logits), F.relu(sky_logits)


def metric_depth(depth: torch.Tensor, focal: torch.Tensor) -> torch.Tensor:
    """(B, h, w) network depth, (B,) focal px at the network input -> (B, h, w) metres: depth x focal / 300."""
    return depth * (focal.to(depth.dtype)[:, None, None] / FOCAL_REFERENCE)
