"""Flying pixels: how obliquely each pixel's surface is seen, from its neighbours' points (no ROS).

A monocular network smooths depth across object boundaries, so the pixels between a foreground object and the
background get depths in between: a curtain of points along the viewing rays that no surface holds. The rule is
the jump-edge filter of May et al., "Three-dimensional mapping with time-of-flight cameras", J. Field Robotics
26(11), 2009 (also PCL's ShadowPoints idea): for a point p and the point q of a neighbouring pixel, the angle xi
at p between the viewing ray (p to the camera) and the segment p -> q, with sin xi = |q| sin(phi) / |q - p| (phi
the angle between the two rays); xi near 0 means the segment runs along the ray.

Here a pixel is flying when both its row neighbours, or both its column neighbours, are seen at less than the
threshold angle: the inside of a smear is dropped, while the last pixel of each true surface (one neighbour on its
surface) stays, and so does a step without a smear. A missing neighbour (image border, invalid depth) never
counts as grazing. A real surface seen at less than the threshold (a floor far ahead of a low camera) is dropped
too: at a 5 degree threshold and a camera 0.3 m above the floor, the floor beyond 3.4 m. The angles of a smear
shrink with the pixel size: a 1 m -> 3 m boundary smeared over 5 columns is seen at about 1 degree with a VGA
camera (fx 500 px) but 6 to 10 degrees at fx 50 px, so very coarse images need a larger threshold.
"""

from __future__ import annotations

import math

import torch


def grazing(depth: torch.Tensor, rays: torch.Tensor) -> torch.Tensor:
    """Return (H, W) float32 cos^2 of the angle the surface at each pixel is seen at (0 facing, 1 along the ray).

    The surface angle is, over the row and the column axes, the smaller of the two axes' larger neighbour angle
    xi: cos^2 xi = (p . (q - p))^2 / (|p|^2 |q - p|^2). Invalid depth (NaN, <= 0) and border sides give 0.
    """
    d = torch.where(depth > 0, depth.float(), math.nan)
    points = rays * d[..., None]  # (H, W, 3)
    norm2 = (points * points).sum(-1)  # (H, W)
    row = _axis_cos2(points, norm2, dim=1)
    column = _axis_cos2(points, norm2, dim=0)
    return torch.maximum(row, column)


def _axis_cos2(points: torch.Tensor, norm2: torch.Tensor, dim: int) -> torch.Tensor:
    """Return (H, W) min of cos^2 xi over the two neighbours along `dim` (1: in the row); 0 where one is missing."""
    size = points.shape[dim]
    first, second = points.narrow(dim, 0, size - 1), points.narrow(dim, 1, size - 1)
    step = second - first  # (.., size - 1, .., 3): q - p for the next neighbour, p - q for the previous one
    step2 = (step * step).sum(-1)
    ahead = (first * step).sum(-1).square_() / (norm2.narrow(dim, 0, size - 1) * step2)  # p, next neighbour
    behind = (second * step).sum(-1).square_() / (norm2.narrow(dim, 1, size - 1) * step2)  # q, previous one
    after, before = ([0, 1, 0, 0], [1, 0, 0, 0]) if dim == 1 else ([0, 0, 0, 1], [0, 0, 1, 0])
    ahead, behind = torch.nn.functional.pad(ahead, after), torch.nn.functional.pad(behind, before)
    return torch.minimum(ahead, behind).nan_to_num_(0.0)


def flying(cos2: torch.Tensor, angle_deg: float) -> torch.Tensor:
    """Return the (H, W) bool mask of flying pixels: surface seen at less than angle_deg (cos2 from grazing)."""
    return cos2 > math.cos(math.radians(angle_deg)) ** 2
