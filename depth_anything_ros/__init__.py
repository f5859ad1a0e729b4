"""Metric depth for ROS 2 from Depth Anything models: the public Python API, imported lazily.

`import depth_anything_ros` loads neither torch nor rclpy; a public name loads its module on first use.
"""

from __future__ import annotations

import importlib

# public name -> module that defines it
_PUBLIC = {
    "CheckpointError": "models.checkpoint_io",
    "DA3Estimator": "models.da3.estimator",
    "DepthEstimator": "models.v2.estimator",
    "FrameOptions": "frame.pipeline",
    "FramePipeline": "frame.pipeline",
    "load_estimator": "models.registry",
    "write_synthetic_checkpoint": "models.synthetic_weights",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    """Import a public name's module on first use, so `import depth_anything_ros` stays light."""
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """Return the module's names plus the lazy public names."""
    return sorted(set(globals()) | set(__all__))
