"""Depth-Anything-V2 metric depth for ROS 2: model, estimator, and the node built on them."""

from __future__ import annotations

__all__ = ["CheckpointError", "DepthAnythingV2", "DepthEstimator"]

_LAZY = {
    "CheckpointError": "checkpoint",
    "DepthAnythingV2": "model",
    "DepthEstimator": "estimator",
}


def __getattr__(name: str):
    """Import the torch-heavy public names on first use, so `import depth_anything_ros.image_codec` stays light."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
