"""What every family's preprocessing shares: pixel encodings -> RGB, ImageNet constants, input-size and work bounds."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from depth_anything_ros.models.input_size import PATCH

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Bounded work per frame: the lower-bound resize makes the long side grow with the aspect ratio, so a 1 x 384 image
# would need a 518 x 198,912 network input. Images outside these bounds are refused before any work is done.
MIN_IMAGE_SIDE = 2
MAX_ASPECT_RATIO = 8.0
MAX_NETWORK_PIXELS = 9  # times input_size ** 2 (an aspect ratio of 8 needs about 8)


class ImageSizeError(ValueError):
    """An image whose network input would be degenerate or unreasonably large; the message says which bound."""


# encoding -> (channels, numpy dtype, full-scale value, channel indices that give R, G, B)
ENCODINGS: dict[str, tuple[int, type, float, tuple[int, int, int]]] = {
    "rgb8": (3, np.uint8, 255.0, (0, 1, 2)),
    "bgr8": (3, np.uint8, 255.0, (2, 1, 0)),
    "rgba8": (4, np.uint8, 255.0, (0, 1, 2)),
    "bgra8": (4, np.uint8, 255.0, (2, 1, 0)),
    "mono8": (1, np.uint8, 255.0, (0, 0, 0)),
    "mono16": (1, np.uint16, 65535.0, (0, 0, 0)),
}


def _multiple_of(x: float, min_val: int) -> int:
    """Round x to a multiple of 14 (numpy half-to-even), rounding up instead when that falls below min_val."""
    y = int(np.round(x / PATCH) * PATCH)
    if y < min_val:
        y = int(np.ceil(x / PATCH) * PATCH)
    return y


def network_input_size(height: int, width: int, input_size: int = 518) -> tuple[int, int]:
    """Network input (h, w) for an image: keep aspect, shorter side >= input_size, both multiples of 14.

    This is the official `Resize(keep_aspect_ratio=True, ensure_multiple_of=14, resize_method='lower_bound')`.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if input_size < PATCH:
        raise ValueError(f"input_size must be at least {PATCH}, got {input_size}")
    scale_h, scale_w = input_size / height, input_size / width
    scale = scale_w if scale_w > scale_h else scale_h
    return _multiple_of(scale * height, input_size), _multiple_of(scale * width, input_size)


def check_work(height: int, width: int, input_size: int) -> tuple[int, int]:
    """Return the network input size of a height x width image, or raise ImageSizeError when the work is unbounded.

    Refused: a side under MIN_IMAGE_SIDE px, an aspect ratio over MAX_ASPECT_RATIO, or a network input of more than
    MAX_NETWORK_PIXELS x input_size ** 2 pixels. Nothing is allocated before the check.
    """
    if min(height, width) < MIN_IMAGE_SIDE:
        raise ImageSizeError(f"image of {width}x{height} pixels is too small: both sides must be at least "
                             f"{MIN_IMAGE_SIDE} pixels")
    aspect = max(height, width) / min(height, width)
    if aspect > MAX_ASPECT_RATIO:
        raise ImageSizeError(f"image of {width}x{height} pixels has an aspect ratio of {aspect:.1f}, more than "
                             f"{MAX_ASPECT_RATIO:g}: its network input would be {aspect:.0f} times input_size long")
    size = network_input_size(height, width, input_size)
    if size[0] * size[1] > MAX_NETWORK_PIXELS * input_size ** 2:
        raise ImageSizeError(f"image of {width}x{height} pixels needs a {size[1]}x{size[0]} network input, more "
                             f"than {MAX_NETWORK_PIXELS} x input_size^2 pixels")
    return size


def check_image(image: np.ndarray, encoding: str) -> None:
    """Raise ValueError naming the problem when an (H, W[, C]) array does not fit `encoding`."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unsupported encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")
    channels, dtype, _, _ = ENCODINGS[encoding]
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != dtype:
        raise ValueError(f"{encoding} image must be {np.dtype(dtype).name}, got {image.dtype}")
    if channels == 1:
        ok = image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)
    else:
        ok = image.ndim == 3 and image.shape[2] == channels
    if not ok or image.shape[0] == 0 or image.shape[1] == 0:
        layout = "(H, W)" if channels == 1 else f"(H, W, {channels})"
        raise ValueError(f"{encoding} image must be {layout} with H, W > 0, got shape {image.shape}")


def to_rgb(raw: torch.Tensor, encoding: str) -> torch.Tensor:
    """Raw pixels (B, H, W[, C]) uint8/uint16 in `encoding` -> (B, 3, H, W) float32 RGB in [0, 1], same device."""
    channels, _, full_scale, order = ENCODINGS[encoding]
    if channels == 1:
        x = raw.reshape(raw.shape[0], 1, raw.shape[1], raw.shape[2]).float().div_(full_scale)
        return x.expand(-1, 3, -1, -1)
    else:
        x = raw[..., :3] if order == (0, 1, 2) else raw[..., :3].flip(-1)  # slices and flips, no index tensor
        x = x.permute(0, 3, 1, 2).float()
    return x.div_(full_scale)  # in place: a large frame's float copy is its biggest buffer


def to_rgb8(raw: torch.Tensor, encoding: str) -> torch.Tensor:
    """Raw pixels (B, H, W[, C]) in `encoding` -> (B, 3, H, W) uint8 RGB for colouring clouds (mono16: high byte)."""
    channels, _, _, order = ENCODINGS[encoding]
    if raw.dtype == torch.uint16:
        raw = (raw.to(torch.int32) >> 8).to(torch.uint8)
    if channels == 1:
        return raw.reshape(raw.shape[:3])[:, None].expand(-1, 3, -1, -1)
    x = raw[..., :3] if order == (0, 1, 2) else raw[..., :3].flip(-1)
    return x.permute(0, 3, 1, 2)


@lru_cache(maxsize=16)
def imagenet_stats(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std as (1, 3, 1, 1) tensors, made once per device (no host copy per frame)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=dtype).view(1, 3, 1, 1).to(device)
    return mean, torch.tensor(IMAGENET_STD, dtype=dtype).view(1, 3, 1, 1).to(device)
