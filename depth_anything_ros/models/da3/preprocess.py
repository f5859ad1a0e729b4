"""DA3 transforms (no ROS): the official input resize, the focal at the network input, sky, back to the image size.

The official processor works on uint8 RGB with OpenCV: (1) the longer side to `process_res` (sizes rounded with
Python's round), INTER_CUBIC when enlarging, else INTER_AREA, back to uint8; (2) each side to the nearest multiple of
14 (ties up), INTER_CUBIC if either side grows, else INTER_AREA, uint8 again; (3) /255 and ImageNet mean/std in
float32. The intrinsics follow both resizes: fx, cx times the width ratio, fy, cy times the height ratio, each step.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from depth_anything_ros.models.image import IMAGENET_MEAN, IMAGENET_STD
from depth_anything_ros.models.input_size import PATCH

SKY_THRESHOLD = 0.3  # sky probability at or above which a pixel is sky (the official compute_sky_mask)
SKY_MODES = ("invalid", "official_fill")  # sky -> NaN (default) | the official 0.99-quantile fill
FILL_QUANTILE = 0.99
FILL_MIN_PIXELS = 10  # the official fill needs more than 10 sky and more than 10 other pixels


def _nearest_multiple(x: int) -> int:
    """Nearest multiple of 14, ties up, at least 1 (the official _make_divisible_by_resize)."""
    down = (x // PATCH) * PATCH
    up = down + PATCH
    return max(1, up if abs(up - x) <= abs(x - down) else down)


def resize_steps(height: int, width: int, process_res: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """((h1, w1) after the upper-bound resize, (h2, w2) the network input) for a height x width image."""
    h1, w1 = height, width
    if max(height, width) != process_res:
        scale = process_res / float(max(height, width))
        w1, h1 = max(1, int(round(width * scale))), max(1, int(round(height * scale)))
    return (h1, w1), (_nearest_multiple(h1), _nearest_multiple(w1))


def _resize_uint8(rgb: np.ndarray, size: tuple[int, int], enlarge: bool) -> np.ndarray:
    """(H, W, 3) uint8 -> (*size, 3) uint8 with cv2 INTER_CUBIC (enlarge) or INTER_AREA."""
    if rgb.shape[:2] == tuple(size):
        return rgb
    return cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_CUBIC if enlarge else cv2.INTER_AREA)


def network_input(rgb: np.ndarray, process_res: int) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, h, w) float32 network input, as the official input processor makes it."""
    (h1, w1), (h2, w2) = resize_steps(rgb.shape[0], rgb.shape[1], process_res)
    step1 = _resize_uint8(np.ascontiguousarray(rgb), (h1, w1), process_res > max(rgb.shape[:2]))
    step2 = _resize_uint8(step1, (h2, w2), h2 > h1 or w2 > w1)
    x = torch.from_numpy(np.ascontiguousarray(step2)).permute(2, 0, 1).float().div(255)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)
    return x.sub_(mean).div_(std)


def network_focal(fx: float, fy: float, height: int, width: int, process_res: int) -> float:
    """Focal length in px at the network input, (fx' + fy') / 2, with fx, fy of the height x width image.

    fx' = fx (w1 / W) (w2 / w1) and fy' = fy (h1 / H) (h2 / h1), in float64, then float32 as the official code
    converts its intrinsics before averaging them.
    """
    (h1, w1), (h2, w2) = resize_steps(height, width, process_res)
    fx_net = np.float32(fx * (w1 / float(width)) * (w2 / float(w1)))
    fy_net = np.float32(fy * (h1 / float(height)) * (h2 / float(h1)))
    return float((fx_net + fy_net) / np.float32(2))


def official_fill(depth: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
    """(B, h, w) depth, sky -> depth with sky pixels set to the 0.99-quantile of the other pixels of its image.

    As the official _process_mono_sky_estimation, except that the quantile is exact (the official code samples
    100,000 pixels at random above that count): images with 10 or fewer sky or other pixels are left as they are.
    """
    out = depth.clone()
    for b in range(depth.shape[0]):
        other = sky[b] < SKY_THRESHOLD
        if int(other.sum()) <= FILL_MIN_PIXELS or int((~other).sum()) <= FILL_MIN_PIXELS:
            continue
        out[b][~other] = torch.quantile(depth[b][other].float(), FILL_QUANTILE).to(depth.dtype)
    return out


def to_image_size(depth: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, h, w) network-resolution depth (NaN = invalid) -> (B, *size) float32, bilinear with pixel centres aligned.

    Pixel-centre alignment (align_corners=False) is the geometry of the cv2 resizes that made the network input; a
    NaN (sky) reaches every output pixel it contributes to, so invalid regions grow by under one network pixel.
    """
    if tuple(depth.shape[-2:]) == tuple(size):
        return depth.float()
    return F.interpolate(depth.float()[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def check_sky_mode(sky: str) -> str:
    """Return `sky` if it is one of SKY_MODES, else raise ValueError naming them."""
    if sky not in SKY_MODES:
        raise ValueError(f"unknown sky mode {sky!r}; expected one of {', '.join(SKY_MODES)}")
    return sky
