"""Video Depth Anything metric checkpoints: recognise, load safely (weights_only / safetensors), synthetic weights."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType

import torch

from depth_anything_ros.models.checkpoint_io import (
    PICKLE_SUFFIXES,
    SAFETENSORS_SUFFIX,
    CheckpointError,
    missing_file_error,
    read_pickle,
    read_safetensors,
    resolve_variant,
)
from depth_anything_ros.models.checkpoint_meta import read_meta
from depth_anything_ros.models.synthetic_weights import random_weights, write_synthetic_state
from depth_anything_ros.models.variants import CHECKPOINTS, ENCODERS, METRIC_VIDEO
from depth_anything_ros.models.vda.network import VideoDepthAnything

MARKER = "head.motion_modules.0.temporal_transformer.norm.weight"  # a tensor only Video Depth Anything files hold
_RELATIVE_FILES = {f"video_depth_anything_{enc}.pth" for enc in ENCODERS}  # the official relative models


@cache
def expected_shapes(encoder: str) -> MappingProxyType[str, tuple[int, ...]]:
    """Official state_dict key -> shape of one encoder size, in module order (read-only)."""
    with torch.device("meta"):
        model = VideoDepthAnything(encoder)
    return MappingProxyType({k: tuple(v.shape) for k, v in model.state_dict().items()})


def is_vda_checkpoint(source: str | os.PathLike | Mapping[str, torch.Tensor]) -> bool:
    """Return True for a vda-metric-* name, a state_dict with temporal modules, or a file named as a VDA model."""
    if isinstance(source, Mapping):
        return MARKER in source
    if isinstance(source, str) and source in CHECKPOINTS:
        return CHECKPOINTS[source].kind == METRIC_VIDEO
    path = Path(source).expanduser()
    return "video_depth_anything" in path.name or _has_marker(path)


def _has_marker(path: Path) -> bool:
    """Whether a file holds the temporal modules' tensors, read without loading the tensors (memory-mapped)."""
    if not path.is_file():
        return False
    if path.suffix in PICKLE_SUFFIXES:
        try:
            return MARKER in torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # noqa: BLE001 - an old-format or damaged pickle: the V2 reader says what is wrong
            return False
    if path.suffix != SAFETENSORS_SUFFIX:
        return False
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return MARKER in handle.keys()
    except (SafetensorError, OSError, ValueError):
        return False


def _refuse_relative(path: Path) -> None:
    """Raise for the official relative Video Depth Anything files (same tensors, but not metres)."""
    try:
        kind = (read_meta(path) or {}).get("kind")
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    if path.name in _RELATIVE_FILES or kind == "relative":
        raise CheckpointError(
            f"{path} is a relative Video Depth Anything model (affine-invariant inverse depth, not metres); this "
            f"package serves the metric ones: {', '.join(n for n, c in CHECKPOINTS.items() if c.kind == METRIC_VIDEO)}")


def check_state(state: Mapping[str, torch.Tensor], source: str) -> tuple[dict[str, torch.Tensor], str]:
    """Return (float32 state_dict, encoder) when the keys and shapes are an official VDA model's.

    Else CheckpointError naming the missing/unexpected tensors or the first mismatching shape.
    """
    token = state.get("pretrained.cls_token")
    by_dim = {spec.embed_dim: name for name, spec in ENCODERS.items()}
    if token is None or token.shape[-1] not in by_dim:
        raise CheckpointError(f"{source} is not a Video Depth Anything checkpoint: no class token of width "
                              f"{'/'.join(map(str, by_dim))} ('pretrained.cls_token')")
    encoder = by_dim[token.shape[-1]]
    expected = expected_shapes(encoder)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        hint = (" (a Depth-Anything-V2 file: its head is 'depth_head.', without temporal modules)"
                if any(k.startswith("depth_head.") for k in state) else "")
        raise CheckpointError(
            f"{source} is not a Video Depth Anything '{encoder}' checkpoint{hint}: {len(missing)} missing tensor(s), "
            f"first: {', '.join(missing[:3]) or '-'}; {len(unexpected)} unexpected, first: "
            f"{', '.join(unexpected[:3]) or '-'}")
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise CheckpointError(f"{source}: tensor '{key}' has shape {tuple(state[key].shape)}, expected {shape} "
                                  f"for encoder '{encoder}'")
    return {k: state[k].float() for k in expected}, encoder


def load_vda_state_dict(source: str | os.PathLike | Mapping[str, torch.Tensor], encoder: str | None = None,
                        download: bool = True) -> tuple[dict[str, torch.Tensor], str, Path]:
    """Return (float32 official state_dict, encoder, path) of a vda-metric-* name, a file or a mapping.

    Files are .pth/.pt (torch.load weights_only=True) or .safetensors; relative VDA files and encoder mismatches
    are refused.
    """
    if isinstance(source, Mapping):
        state, path = dict(source), Path("<state_dict>")
    else:
        if isinstance(source, str) and source in CHECKPOINTS:
            source = resolve_variant(source, download=download)
        path = Path(source).expanduser()
        if not path.is_file():
            raise missing_file_error(path)
        _refuse_relative(path)
        if path.suffix == SAFETENSORS_SUFFIX:
            state = read_safetensors(path)
        elif path.suffix in PICKLE_SUFFIXES:
            state = read_pickle(path)
        else:
            raise CheckpointError(f"unsupported checkpoint type '{path.suffix}' for {path}: a Video Depth Anything "
                                  "checkpoint is a .pth/.pt or .safetensors file")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()
             if isinstance(v, torch.Tensor)}
    state, found = check_state(state, str(path))
    if encoder not in (None, found):
        raise CheckpointError(f"{path} is a Video Depth Anything '{found}' model, not encoder '{encoder}'")
    return state, found, path


# ---------------------------------------------------------------------------------------------------------------
# synthetic weights


def synthetic_vda_state_dict(encoder: str = "vits", seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic random float32 weights with the official keys, calibrated to plausible metres.

    Weights as V2's synthetic ones (N(0, 1/fan_in), LayerNorm scales near 1, LayerScale 0.2), the position tables
    the official sinusoids; the temporal output projections are N(0, 1/fan_in) too (the official initialisation
    zeroes them, trained ones are not zero), so the past frames change the output. The last 1x1 conv is rescaled on
    a smooth 126x168 image so the metres are about N(4, 1.5^2) before the relu.
    """
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    out = random_weights(expected_shapes(encoder), gen)
    model = VideoDepthAnything(encoder).eval()
    for key, value in model.state_dict().items():
        if key.endswith("pos_encoder.pe"):
            out[key] = value.clone()
    model.load_state_dict(out)
    image = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 8, generator=gen), size=(126, 168), mode="bilinear")
    with torch.no_grad():
        logits = model.head(model.pretrained((image - 0.45) / 0.225), 9, 12, 1)[0]  # before the relu
    scale = 1.5 / logits.std()
    w, b = "head.scratch.output_conv2.2.weight", "head.scratch.output_conv2.2.bias"
    out[w] = out[w] * scale
    out[b] = (out[b] - logits.mean()) * scale + 4.0
    return out


def write_synthetic_vda_checkpoint(path: str | os.PathLike, encoder: str = "vits", seed: int = 0) -> Path:
    """Write `synthetic_vda_state_dict(encoder, seed)` as .pth (torch.save, as the official files) or .safetensors."""
    return write_synthetic_state(path, synthetic_vda_state_dict(encoder, seed), f"vda encoder={encoder} seed={seed}")
