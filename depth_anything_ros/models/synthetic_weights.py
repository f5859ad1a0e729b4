"""Synthetic weights: deterministic random tensors with the official keys and shapes, for tests and the demo."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from depth_anything_ros.models.checkpoint_io import (
    PICKLE_SUFFIXES,
    SAFETENSORS_SUFFIX,
    SYNTHETIC_KEY,
    CheckpointError,
    first_sentence,
    write_safetensors,
)
from depth_anything_ros.models.v2.checkpoint import expected_shapes
from depth_anything_ros.models.v2.network import DepthAnythingV2


def synthetic_state_dict(encoder: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random float32 weights with the official keys, scaled so the metric output is not saturated.

    Linear/conv weights are N(0, 1/fan_in), LayerNorm scales near 1, LayerScale gammas 0.2. The last 1x1 conv
    is then rescaled so that its output has mean 0 and std 1.5 on a fixed smooth calibration image: sigmoid
    spans much of (0, 1) and the depth varies strongly over an image.
    """
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    out = random_weights(expected_shapes(encoder), gen)
    _calibrate_output(out, encoder, gen)
    return out


def random_weights(shapes: Mapping[str, tuple[int, ...]], gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Float32 tensors of `shapes`, drawn from `gen` in order: the rule both families' synthetic weights share.

    Linear/conv weights N(0, 1/fan_in) (the transposed convs' fan-in is their first dimension), LayerNorm scales
    1 + N(0, 0.1^2), LayerScale gammas 0.2 + N(0, 0.02^2), position embeddings and tokens N(0, 0.2^2), other
    vectors N(0, 0.02^2).
    """
    out: dict[str, torch.Tensor] = {}
    for name, shape in shapes.items():
        noise = torch.randn(shape, generator=gen, dtype=torch.float32)
        if name.endswith(".gamma"):
            value = 0.2 + 0.02 * noise
        elif ".norm" in name and name.endswith(".weight"):
            value = 1.0 + 0.1 * noise
        elif name.endswith("pos_embed") or name.endswith("_token"):
            value = 0.2 * noise
        elif len(shape) >= 2:
            fan_in = shape[0] if "resize_layers.0" in name or "resize_layers.1" in name else math.prod(shape[1:])
            value = noise / math.sqrt(fan_in)
        else:
            value = 0.02 * noise
        out[name] = value.contiguous()
    return out


def _calibrate_output(state: dict[str, torch.Tensor], encoder: str, gen: torch.Generator) -> None:
    """Rescale `output_conv2.2` in place so its output is N(0, 1.5^2)-like on a smooth 126x168 image."""
    model = DepthAnythingV2(encoder, max_depth=None).eval()
    model.load_state_dict(state)
    image = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 8, generator=gen), size=(126, 168), mode="bilinear")
    with torch.no_grad():
        logits = model.depth_head(model.pretrained((image - 0.45) / 0.225), 9, 12)
    scale = 1.5 / logits.std()
    w, b = "depth_head.scratch.output_conv2.2.weight", "depth_head.scratch.output_conv2.2.bias"
    state[w] = state[w] * scale
    state[b] = (state[b] - logits.mean()) * scale


def write_synthetic_checkpoint(path: str | os.PathLike, encoder: str = "vits", seed: int = 0) -> Path:
    """Write `synthetic_state_dict(encoder, seed)` as .pth/.pt (torch.save) or .safetensors, by extension."""
    return write_synthetic_state(path, synthetic_state_dict(encoder, seed), f"encoder={encoder} seed={seed}")


def write_synthetic_state(path: str | os.PathLike, state: Mapping[str, torch.Tensor], mark: str) -> Path:
    """Write `state` as .pth/.pt (torch.save, as the official files) or as .safetensors marked synthetic by `mark`."""
    path = Path(path)
    if path.suffix not in (SAFETENSORS_SUFFIX, *PICKLE_SUFFIXES):
        raise CheckpointError(f"cannot write {path}: extension must be .pth, .pt or .safetensors")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == SAFETENSORS_SUFFIX:
            write_safetensors(path, dict(state), {SYNTHETIC_KEY: mark})
        else:
            torch.save(dict(state), path)
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {first_sentence(exc)}") from None
    return path
