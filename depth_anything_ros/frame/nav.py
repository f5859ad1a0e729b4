"""Per-frame navigation outputs around the cloud: confidence, and the depth the cloud and the scan are made of.

The published depth image is never changed; the cloud and the scan see NaN (invalid) where the edge filter finds
a flying pixel (frame/edges.py) or the confidence (frame/confidence.py) is below their min_confidence.
"""

from __future__ import annotations

import math

import torch

from depth_anything_ros.frame.confidence import confidence
from depth_anything_ros.frame.edges import EdgeGeometry, flying
from depth_anything_ros.frame.frame_io import FrameOptions


def wants_confidence(outputs: tuple[str, ...], options: FrameOptions) -> bool:
    """Return True when a frame with these outputs needs the confidence (published, or gating points or scan)."""
    return ("confidence" in outputs or ("points" in outputs and options.cloud_min_confidence > 0)
            or ("scan" in outputs and options.scan.min_confidence > 0))


def needs_surface(options: FrameOptions, outputs: tuple[str, ...], agreement: torch.Tensor | None) -> bool:
    """Return True when the surface angles (frame/edges.py) are needed: edge filter or confidence."""
    return agreement is not None or (options.edge_filter and bool({"points", "scan"} & set(outputs)))


def gated_depths(depth: torch.Tensor, geometry: EdgeGeometry | None, agreement: torch.Tensor | None,
                 options: FrameOptions, outputs: tuple[str, ...]) -> tuple[torch.Tensor | None, torch.Tensor,
                                                                           torch.Tensor]:
    """Return ((H, W) confidence or None, (H, W) depth for the cloud, (H, W) depth for the scan).

    depth (H, W) metres; geometry: the camera's EdgeGeometry, needed when needs_surface (else None); agreement:
    the (H, W) flip agreement, or None when no confidence is wanted.
    """
    cos2 = geometry.grazing(depth) if needs_surface(options, outputs, agreement) else None
    conf = None if agreement is None else confidence(agreement, cos2)
    drop = flying(cos2, options.edge_angle_deg) if cos2 is not None and options.edge_filter else None

    def gated(min_confidence: float) -> torch.Tensor:
        mask = drop
        if min_confidence > 0 and conf is not None:
            low = conf < min_confidence
            mask = low if mask is None else mask | low
        return depth if mask is None else torch.where(mask, math.nan, depth)

    return conf, gated(options.cloud_min_confidence), gated(options.scan.min_confidence)
