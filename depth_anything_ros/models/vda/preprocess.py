"""Video Depth Anything input/output transforms, as the official infer_video_depth(_one) prepare each frame.

The official code turns a frame into float32 in [0, 1], resizes the three channels together with OpenCV's
INTER_CUBIC in float32 (V2 resizes in float64), normalises with the ImageNet statistics in float64 and casts to
float32. Wide frames (aspect ratio over 1.78) get a smaller input size first, so their long side stays bounded.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from depth_anything_ros.models.image import ENCODINGS, IMAGENET_MEAN, IMAGENET_STD, check_work
from depth_anything_ros.models.input_size import PATCH

WIDE_RATIO = 1.78  # above this aspect ratio the official code shrinks the input size
WIDE_SCALE = 1.777


def stream_input_size(height: int, width: int, input_size: int) -> int:
    """Return the official input size for height x width frames: smaller for frames wider than 1.78:1."""
    ratio = max(height, width) / min(height, width)
    if ratio <= WIDE_RATIO:
        return input_size
    return round(int(input_size * WIDE_SCALE / ratio) / PATCH) * PATCH


def network_size(height: int, width: int, input_size: int) -> tuple[int, int]:
    """Network input (h, w) of a height x width frame (aspect rule, then the lower-bound resize to multiples of 14)."""
    return check_work(height, width, max(PATCH, stream_input_size(height, width, input_size)))


def network_input(raw: torch.Tensor, encoding: str, size: tuple[int, int]) -> torch.Tensor:
    """Raw pixels (B, H, W[, C]) in `encoding` on the CPU -> (B, 3, *size) float32 network input, as the official code.

    Pixels / full scale in float32, cv2 INTER_CUBIC resize of the three float32 channels together, ImageNet
    normalisation in float64, float32 out.
    """
    channels, _, full_scale, order = ENCODINGS[encoding]
    pixels = raw.cpu().numpy()
    out = np.empty((pixels.shape[0], 3, *size), np.float32)
    mean, std = np.asarray(IMAGENET_MEAN), np.asarray(IMAGENET_STD)
    for b, image in enumerate(pixels):
        plane = image.reshape(image.shape[:2]) if channels == 1 else None
        rgb = np.stack([plane] * 3, -1) if channels == 1 else image[..., list(order)]
        rgb = rgb.astype(np.float32) / np.float32(full_scale)
        if rgb.shape[:2] != tuple(size):
            rgb = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
        out[b] = ((rgb - mean) / std).transpose(2, 0, 1)
    return torch.from_numpy(out)


def upsample_depth(depth: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, h, w) network depth -> (B, *size) float32, bilinear with align_corners=True as the official code."""
    return F.interpolate(depth.float()[:, None], size=size, mode="bilinear", align_corners=True)[:, 0]
