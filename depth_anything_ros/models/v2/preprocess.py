"""Depth-Anything-V2 input/output transforms on torch tensors, on any device, matching the official infer_image."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from depth_anything_ros.models.image import ENCODINGS, IMAGENET_MEAN, IMAGENET_STD, imagenet_stats, to_rgb


@lru_cache(maxsize=64)
def cubic_taps(n_in: int, n_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Source indices (n_out, 4) and weights (n_out, 4) of OpenCV's INTER_CUBIC resize along one axis.

    As cv2.resize: source position (d + 0.5) * n_in / n_out - 0.5 rounded to float32, Keys cubic with
    A = -0.75 evaluated in float32 (last tap = 1 - the others), borders replicated. torch's bicubic
    differs from it by up to 8e-5 (of full scale) because it rounds positions differently, which is
    enough to miss the 2e-5 m mean agreement with the official depth on some inputs.
    """
    pos = ((np.arange(n_out) + 0.5) * (1.0 / (n_out / n_in)) - 0.5).astype(np.float32)
    start = np.floor(pos)
    t = pos - start
    a, one = np.float32(-0.75), np.float32(1.0)
    w0 = ((a * (t + one) - 5 * a) * (t + one) + 8 * a) * (t + one) - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + one
    w2 = ((a + 2) * (one - t) - (a + 3)) * (one - t) * (one - t) + one
    weights = np.stack([w0, w1, w2, one - w0 - w1 - w2], axis=1).astype(np.float32)
    index = np.clip(start.astype(np.int64)[:, None] + np.arange(-1, 3)[None], 0, n_in - 1)
    return torch.from_numpy(index).to(device), torch.from_numpy(weights).to(device)


def _resize_axis(x: torch.Tensor, n_out: int, dim: int) -> torch.Tensor:
    """Cubic-resize `x` along dim (-1 or -2) to n_out with the OpenCV taps."""
    index, weights = cubic_taps(x.shape[dim], n_out, x.device)
    taps = x.index_select(dim, index.flatten())
    if dim == -1:
        return (taps.unflatten(-1, (n_out, 4)) * weights.to(x.dtype)).sum(-1)
    return (taps.unflatten(-2, (n_out, 4)) * weights.to(x.dtype)[:, :, None]).sum(-2)


def resize_cubic_torch(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) float -> (B, C, *size) with the OpenCV INTER_CUBIC taps as torch ops (any device)."""
    if x.shape[-1] != size[1]:
        x = _resize_axis(x, size[1], -1)
    if x.shape[-2] != size[0]:
        x = _resize_axis(x, size[0], -2)
    return x


def resize_cubic(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) float -> (B, C, *size), equal to the official cv2.resize(float64 image, INTER_CUBIC).

    On the CPU this is that very call (OpenCV's resize is several times faster there than torch ops);
    on other devices it is `resize_cubic_torch`, which agrees with it to float32 rounding.
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.device.type != "cpu":
        return resize_cubic_torch(x, size)
    out = np.empty((x.shape[0], x.shape[1], *size), np.float64)
    for b, image in enumerate(x):  # one channel at a time: the float64 copy of a large frame is a third as big
        for c, channel in enumerate(image):
            out[b, c] = cv2.resize(channel.numpy().astype(np.float64), (size[1], size[0]),
                                   interpolation=cv2.INTER_CUBIC)
    return torch.from_numpy(out).to(x.dtype)


def network_input(raw: torch.Tensor, encoding: str, size: tuple[int, int],
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Raw pixels (B, H, W[, C]) in `encoding` -> (B, 3, *size) network input: cubic resize, ImageNet mean/std.

    On the CPU each channel goes from the raw integers through OpenCV's float64 cubic resize, scaled and normalised
    in float64 as the official code does, so a large frame never has a full-size float copy. Other devices convert
    with `to_rgb` and resize with `resize_cubic_torch`.
    """
    if raw.device.type != "cpu":
        return normalise_resized(to_rgb(raw, encoding), size, dtype)
    channels, _, full_scale, order = ENCODINGS[encoding]
    pixels = raw.numpy()
    out = np.empty((pixels.shape[0], 3, *size), np.float64)
    for b, image in enumerate(pixels):
        for c in range(3):
            plane = (image.reshape(image.shape[:2]) if channels == 1 else image[..., order[c]]).astype(np.float64)
            if plane.shape != tuple(size):
                plane = cv2.resize(plane, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
            out[b, c] = (plane / full_scale - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
    return torch.from_numpy(out).to(dtype)


def normalise_resized(rgb: torch.Tensor, size: tuple[int, int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, 3, H, W) float RGB in [0, 1] -> (B, 3, *size) network input: cubic resize, ImageNet mean/std."""
    x = resize_cubic(rgb, size)
    mean, std = imagenet_stats(x.device, x.dtype)
    return ((x - mean) / std).to(dtype)


def upsample_depth(depth: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, h, w) network depth -> (B, *size) float32, bilinear with align_corners=True as the official code."""
    return F.interpolate(depth.float()[:, None], size=size, mode="bilinear", align_corners=True)[:, 0]
