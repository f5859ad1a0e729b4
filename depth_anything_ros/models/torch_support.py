"""The oldest PyTorch this package runs on, and the check that says so with a fix instead of failing mid-frame (no ROS).

The floor is what the code needs, not what CI pins (2.13.0):
- 2.3 added `torch.uint16`, with `torch.from_numpy` of uint16 arrays, conversions and view ops, which mono16 images go
  through (`preprocess.to_rgb`, `to_rgb8`); torch 2.2 has no `torch.uint16` and raises TypeError on a uint16 array.
  2.3 is also the first release that runs with numpy 2 (2.2 finds no numpy at all there).
- Everything else used is older: `F.scaled_dot_product_attention` and `torch.compile` (2.0), `torch.load(...,
  weights_only=True)` (1.13), `inference_mode` (1.9). `torch._dynamo.config.cache_size_limit` became
  `recompile_limit` in 2.7; the estimator reads whichever exists.
The test suite passes on torch 2.3.0 and 2.3.1 (CPU, numpy 2.4); on 2.2.2 (numpy 1.26) the mono16 tests fail.
"""

from __future__ import annotations

import re

MIN_TORCH = "2.3"

_INSTALL_HINT = ("install a suitable one into this Python: `pip install 'torch>={min}'`, or for a GPU the CUDA build "
                 "that matches your driver from pytorch.org; on a ROS install whose python3-torch is too old, run "
                 "rosdep with `--skip-keys python3-torch` and install torch with pip instead")


def _major_minor(version: str) -> tuple[int, int]:
    """'2.3.1+cu121' | '2.4.0a0+git1234' | '1.13.1' -> (major, minor); ValueError for anything else."""
    match = re.match(r"\s*(\d+)\.(\d+)", version)
    if not match:
        raise ValueError(f"not a torch version: {version!r}")
    return int(match.group(1)), int(match.group(2))


def check_torch(version: str | None = None) -> str:
    """Return the torch version (installed one, or `version` when given) if it is at least MIN_TORCH.

    Raises ImportError naming that version, the minimum and how to install a suitable torch otherwise. Without
    `version` this imports torch (callers are modules that import it anyway).
    """
    if version is None:
        import torch

        version = torch.__version__
    if _major_minor(version) < _major_minor(MIN_TORCH):
        raise ImportError(f"depth_anything_ros needs torch >= {MIN_TORCH}, but torch {version} is installed; "
                          + _INSTALL_HINT.format(min=MIN_TORCH))
    return version
