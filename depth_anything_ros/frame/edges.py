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


class EdgeGeometry:
    """The ray terms of one camera's (H, W, 3) z = 1 ray grid the surface angles need, computed once per camera.

    For a pixel of ray r_p and depth a and its next neighbour of ray r_q = r_p + s and depth b, with k = b - a,
    n = |r|^2, e_p = r_p . s, e_q = r_q . s and g = |s|^2: q - p = k r_p + b s, so |q - p|^2 = k^2 n_p + 2 k b e_p
    + b^2 g, cos^2 xi = (k n_p + b e_p)^2 / (n_p |q - p|^2) at p and (k n_q + a e_q)^2 / (n_q |q - p|^2) at q.
    Written with the ray step s (not r_q . r_p) nothing cancels in float32: per frame only (H, W) maps.
    """

    def __init__(self, rays: torch.Tensor):
        self.rays = rays  # the grid these terms belong to (a cache key for the caller)
        self.norm2 = (rays * rays).sum(-1)  # (H, W) n
        self.row = _step_terms(rays, dim=1)  # e_p, e_q, g with the next pixel in the row, (H, W - 1) each
        self.column = _step_terms(rays, dim=0)  # ... in the column, (H - 1, W) each

    def grazing(self, depth: torch.Tensor) -> torch.Tensor:
        """Return (H, W) float32 cos^2 of the angle the surface at each pixel is seen at (0 facing, 1 along the ray).

        The surface angle is, over the row and the column axes, the smaller of the two axes' larger neighbour angle
        xi. Invalid depth (NaN, <= 0) and border sides give 0.
        """
        d = torch.where(depth > 0, depth.float(), math.nan)
        row = _axis_cos2(d, self.norm2, self.row, dim=1)
        return torch.maximum(row, _axis_cos2(d, self.norm2, self.column, dim=0), out=row)


def _step_terms(rays: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (r_p . s, r_q . s, |s|^2) of each pixel p and its next neighbour q = p + 1 along `dim`, s = r_q - r_p."""
    size = rays.shape[dim]
    first, second = rays.narrow(dim, 0, size - 1), rays.narrow(dim, 1, size - 1)
    step = second - first
    return (first * step).sum(-1), (second * step).sum(-1), (step * step).sum(-1)


def _axis_cos2(depth: torch.Tensor, norm2: torch.Tensor, terms: tuple, dim: int) -> torch.Tensor:
    """Return (H, W) min of cos^2 xi over the two neighbours along `dim` (1: in the row); 0 where one is missing."""
    e_p, e_q, g = terms
    size = depth.shape[dim]
    a, b = depth.narrow(dim, 0, size - 1), depth.narrow(dim, 1, size - 1)  # pixel, next neighbour
    n_p, n_q = norm2.narrow(dim, 0, size - 1), norm2.narrow(dim, 1, size - 1)
    k = b - a
    ahead = k * n_p  # in place from here on: fewer multi-megabyte allocations
    b_e = b * e_p
    step2 = torch.mul(k, ahead).addcmul_(k, b_e, value=2.0).addcmul_(b * g, b)  # |q - p|^2
    ahead.add_(b_e).square_().div_(step2).div_(n_p)  # at p, towards its next neighbour
    behind = k.mul_(n_q).addcmul_(a, e_q).square_().div_(step2).div_(n_q)  # at q, towards its previous neighbour
    out = torch.zeros_like(depth)  # border pixels lack a neighbour on this axis: 0
    torch.minimum(ahead.narrow(dim, 1, size - 2), behind.narrow(dim, 0, size - 2), out=out.narrow(dim, 1, size - 2))
    return out.nan_to_num_(0.0)


def flying(cos2: torch.Tensor, angle_deg: float) -> torch.Tensor:
    """Return the (H, W) bool mask of flying pixels: surface seen at less than angle_deg (cos2 of grazing)."""
    return cos2 > math.cos(math.radians(angle_deg)) ** 2
