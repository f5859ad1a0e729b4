"""DA3 metric checkpoints: recognise, load (safetensors only, never a pickle), write synthetic official-format ones."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType

import torch

from depth_anything_ros.models.checkpoint_io import (
    HF_WEIGHTS,
    SAFETENSORS_SUFFIX,
    SYNTHETIC_KEY,
    CheckpointError,
    first_sentence,
    read_safetensors,
    resolve_variant,
    write_safetensors,
)
from depth_anything_ros.models.da3.network import FILE_PREFIX, DepthAnything3Metric
from depth_anything_ros.models.synthetic_weights import random_weights
from depth_anything_ros.models.variants import CHECKPOINTS, METRIC_FOCAL

_MARKER = FILE_PREFIX + "backbone.pretrained.cls_token"  # a tensor only DA3 files hold


@cache
def expected_shapes() -> MappingProxyType[str, tuple[int, ...]]:
    """Official file key ('model.'-prefixed) -> shape of DA3METRIC-LARGE, in module order (read-only)."""
    with torch.device("meta"):
        model = DepthAnything3Metric()
    return MappingProxyType({FILE_PREFIX + k: tuple(v.shape) for k, v in model.state_dict().items()})


def _file_of(source: str | os.PathLike) -> Path | None:
    """Return the .safetensors file a path names (a file, or a folder holding model.safetensors), or None."""
    path = Path(source).expanduser()
    if path.is_dir():
        path = path / HF_WEIGHTS
    return path if path.suffix == SAFETENSORS_SUFFIX and path.is_file() else None


def is_da3_checkpoint(source: str | os.PathLike | Mapping[str, torch.Tensor]) -> bool:
    """Return True for the DA3 metric variant name, a DA3 state_dict, or a safetensors file/folder of DA3 keys."""
    if isinstance(source, Mapping):
        return _MARKER in source or _MARKER[len(FILE_PREFIX):] in source
    if isinstance(source, str) and source in CHECKPOINTS:
        return CHECKPOINTS[source].kind == METRIC_FOCAL
    path = _file_of(source)
    if path is None:
        return False
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return _MARKER in handle.keys()
    except (SafetensorError, OSError, ValueError):
        return False


def load_da3_state_dict(source: str | os.PathLike | Mapping[str, torch.Tensor],
                        download: bool = True) -> tuple[dict[str, torch.Tensor], Path]:
    """(float32 state_dict without the 'model.' prefix, path) from the variant name, a file/folder or a mapping.

    Keys and shapes must equal the official checkpoint's; CheckpointError names the first difference.
    """
    if isinstance(source, Mapping):
        state, path = dict(source), Path("<state_dict>")
        if _MARKER not in state:
            state = {FILE_PREFIX + k: v for k, v in state.items()}
    else:
        if isinstance(source, str) and source in CHECKPOINTS:
            source = resolve_variant(source, download=download)
        path = _file_of(source)
        if path is None:
            raise CheckpointError(f"{source} is not a DA3 checkpoint: expected its model.safetensors file or the "
                                  "folder holding it (pickled .pth files are not accepted for DA3)")
        state = read_safetensors(path)
    expected = expected_shapes()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(f"{path} is not a DA3METRIC-LARGE checkpoint: {len(missing)} missing tensor(s) "
                              f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}")
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise CheckpointError(f"{path}: tensor '{key}' has shape {tuple(state[key].shape)}, expected {shape}")
    return {k[len(FILE_PREFIX):]: state[k].float() for k in expected}, path


# ---------------------------------------------------------------------------------------------------------------
# synthetic weights


def synthetic_da3_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random float32 weights with the official file keys, calibrated to a plausible output.

    Weights as for V2's synthetic ones (N(0, 1/fan_in), LayerNorm scales near 1, LayerScale 0.2); then the last
    1x1 convs are rescaled on a smooth 126x168 image: depth logits N(log 4, 0.5^2) (about 1.5-15 m at a focal of
    300-500 px) and sky logits N(0, 0.5^2), so that about a quarter of the pixels are sky (>= 0.3).
    """
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    out = random_weights(expected_shapes(), gen)
    _calibrate(out, gen)
    return out


def _calibrate(state: dict[str, torch.Tensor], gen: torch.Generator) -> None:
    """Rescale the depth and sky output convolutions in place (see synthetic_da3_state_dict)."""
    model = DepthAnything3Metric().eval()
    model.load_state_dict({k[len(FILE_PREFIX):]: v for k, v in state.items()})
    image = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 8, generator=gen), size=(126, 168), mode="bilinear")
    with torch.no_grad():
        taps = model.backbone.pretrained((image - 0.45) / 0.225)
        feat = model.head.neck(taps, 9, 12)
        for branch, mean in (("output_conv2", math.log(4.0)), ("sky_output_conv2", 0.0)):
            conv_a, relu, conv_b = getattr(model.head.scratch, branch)
            logits = conv_b(relu(conv_a(feat)))
            scale = 0.5 / logits.std()
            w, b = f"{FILE_PREFIX}head.scratch.{branch}.2.weight", f"{FILE_PREFIX}head.scratch.{branch}.2.bias"
            state[w] = state[w] * scale
            state[b] = (state[b] - logits.mean()) * scale + mean


def write_synthetic_da3_checkpoint(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write `synthetic_da3_state_dict(seed)` as an official-format .safetensors marked as synthetic (~1.3 GB)."""
    path = Path(path)
    if path.suffix != SAFETENSORS_SUFFIX:
        raise CheckpointError(f"cannot write {path}: a DA3 checkpoint is a .safetensors file")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_safetensors(path, synthetic_da3_state_dict(seed), {SYNTHETIC_KEY: f"da3metric-large seed={seed}"})
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {first_sentence(exc)}") from None
    return path
