"""What every runtime of an exported network shares: the torch input as an array, the arrays back as torch tensors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def network_feed(x: torch.Tensor) -> np.ndarray:
    """(B, 3, h, w) network input -> a C-contiguous float32 array of it on the CPU."""
    return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())


def torch_outputs(arrays: Sequence[np.ndarray], device: torch.device) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Turn a runtime's output arrays (the caller's own) into torch tensors on `device`: one, or a tuple (DA3)."""
    tensors = tuple(torch.from_numpy(array).to(device) for array in arrays)
    return tensors[0] if len(tensors) == 1 else tensors
