"""A per-pixel confidence in [0, 1] for any model: flip agreement times how squarely the surface is seen (no ROS).

- Flip agreement (test-time augmentation): the image and its horizontal mirror run in the same batch, the mirror's
  depth is mirrored back, and a = max(0, 1 - |d - d'| / (TOLERANCE (d + d') / 2)): 1 where both agree, 0 where
  they differ by TOLERANCE (10 %) of their mean or more. A network is not flip-equivariant where it is unsure
  (object boundaries, textureless and reflective regions, the far field), so disagreement marks doubt. It doubles
  the network's work for the frames that need it.
- Surface angle: s = sqrt(1 - cos^2), the sine of the angle at which the pixel's surface is seen (frame/edges.py):
  1 facing the ray, about 0 inside a smear between two depths (flying pixels) and at grazing incidence.

confidence = a * s; 0 where the depth is invalid. It is computed on the model's output before any metric scale.
"""

from __future__ import annotations

import torch

TOLERANCE = 0.1  # relative disagreement of the two passes at which the flip agreement reaches 0


def flip_agreement(depth: torch.Tensor, mirrored: torch.Tensor) -> torch.Tensor:
    """Return (H, W) float32 agreement in [0, 1] of depth and the mirrored-back depth of the flipped image."""
    d, m = depth.float(), mirrored.float()
    scale = (d + m).mul_(0.5 * TOLERANCE)
    agreement = (d - m).abs_().div_(scale).neg_().add_(1.0).clamp_(0.0, 1.0)  # in place: fewer allocations
    return agreement.masked_fill_(~((d > 0) & (m > 0)), 0.0).nan_to_num_(0.0)  # NaN, inf, <= 0: invalid


def confidence(agreement: torch.Tensor, cos2: torch.Tensor) -> torch.Tensor:
    """Return (H, W) float32 confidence: (H, W) flip agreement times the sine of the (H, W) cos^2 surface angle."""
    return agreement * (1.0 - cos2).clamp_(0.0, 1.0).sqrt_()
