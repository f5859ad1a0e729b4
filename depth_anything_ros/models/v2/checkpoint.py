"""Depth-Anything-V2 checkpoints: official .pth/.safetensors files, transformers folders, hub names -> official keys."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType

import torch

from depth_anything_ros.models.checkpoint_io import (
    HF_CONFIG,
    HF_WEIGHTS,
    PICKLE_SUFFIXES,
    SAFETENSORS_SUFFIX,
    CheckpointError,
    missing_file_error,
    read_pickle,
    read_safetensors,
    resolve_variant,
    unknown_checkpoint_error,
)
from depth_anything_ros.models.checkpoint_meta import read_meta
from depth_anything_ros.models.v2.network import DepthAnythingV2
from depth_anything_ros.models.variants import (
    CHECKPOINTS,
    ENCODERS,
    METRIC,
    RELATIVE,
    encoder_spec,
)


@dataclass(frozen=True)
class LoadedCheckpoint:
    """Official-named float state_dict plus what the source says about the output (None where it says nothing)."""

    state_dict: dict[str, torch.Tensor]
    encoder: str
    path: Path
    kind: str | None  # METRIC, RELATIVE or None when the file does not tell
    max_depth: float | None


@cache
def expected_shapes(encoder: str) -> MappingProxyType[str, tuple[int, ...]]:
    """Official state_dict key -> shape for an encoder, in module order (read-only)."""
    with torch.device("meta"):
        model = DepthAnythingV2(encoder_spec(encoder).name, max_depth=None)
    return MappingProxyType({k: tuple(v.shape) for k, v in model.state_dict().items()})


# ---------------------------------------------------------------------------------------------------------------
# transformers (DepthAnythingForDepthEstimation) <-> official key names


def _hf_key_pairs(encoder: str) -> list[tuple[str, str]]:
    """(official name, transformers name) pairs for every tensor except the fused qkv."""
    spec = encoder_spec(encoder)
    pairs = [
        ("pretrained.cls_token", "backbone.embeddings.cls_token"),
        ("pretrained.mask_token", "backbone.embeddings.mask_token"),
        ("pretrained.pos_embed", "backbone.embeddings.position_embeddings"),
        ("pretrained.patch_embed.proj.weight", "backbone.embeddings.patch_embeddings.projection.weight"),
        ("pretrained.patch_embed.proj.bias", "backbone.embeddings.patch_embeddings.projection.bias"),
        ("pretrained.norm.weight", "backbone.layernorm.weight"),
        ("pretrained.norm.bias", "backbone.layernorm.bias"),
    ]
    for i in range(spec.depth):
        ours, theirs = f"pretrained.blocks.{i}", f"backbone.encoder.layer.{i}"
        pairs += [(f"{ours}.ls1.gamma", f"{theirs}.layer_scale1.lambda1"),
                  (f"{ours}.ls2.gamma", f"{theirs}.layer_scale2.lambda1")]
        for p in ("weight", "bias"):
            pairs += [(f"{ours}.{m}.{p}", f"{theirs}.{m}.{p}") for m in ("norm1", "norm2", "mlp.fc1", "mlp.fc2")]
            pairs.append((f"{ours}.attn.proj.{p}", f"{theirs}.attention.output.dense.{p}"))
    for p in ("weight", "bias"):
        for i in range(4):
            pairs.append((f"depth_head.projects.{i}.{p}", f"neck.reassemble_stage.layers.{i}.projection.{p}"))
            if i != 2:
                pairs.append((f"depth_head.resize_layers.{i}.{p}", f"neck.reassemble_stage.layers.{i}.resize.{p}"))
        for i in range(1, 5):  # refinenet1 is the last fusion layer in transformers
            ours, theirs = f"depth_head.scratch.refinenet{i}", f"neck.fusion_stage.layers.{4 - i}"
            pairs.append((f"{ours}.out_conv.{p}", f"{theirs}.projection.{p}"))
            pairs += [(f"{ours}.resConfUnit{u}.conv{c}.{p}", f"{theirs}.residual_layer{u}.convolution{c}.{p}")
                      for u in (1, 2) for c in (1, 2)]
        pairs += [(f"depth_head.scratch.output_conv1.{p}", f"head.conv1.{p}"),
                  (f"depth_head.scratch.output_conv2.0.{p}", f"head.conv2.{p}"),
                  (f"depth_head.scratch.output_conv2.2.{p}", f"head.conv3.{p}")]
    pairs += [(f"depth_head.scratch.layer{i + 1}_rn.weight", f"neck.convs.{i}.weight") for i in range(4)]
    return pairs


def to_hf_state_dict(state: dict[str, torch.Tensor], encoder: str) -> dict[str, torch.Tensor]:
    """Official names -> transformers DepthAnythingForDepthEstimation names (qkv split into query/key/value)."""
    out = {theirs: state[ours] for ours, theirs in _hf_key_pairs(encoder)}
    for i in range(encoder_spec(encoder).depth):
        for p in ("weight", "bias"):
            q, k, v = state[f"pretrained.blocks.{i}.attn.qkv.{p}"].chunk(3, dim=0)
            for part, t in (("query", q), ("key", k), ("value", v)):
                out[f"backbone.encoder.layer.{i}.attention.attention.{part}.{p}"] = t
    return out


def from_hf_state_dict(state: dict[str, torch.Tensor], encoder: str) -> dict[str, torch.Tensor]:
    """Map transformers names to official names; a missing tensor raises CheckpointError naming it."""
    spec = encoder_spec(encoder)

    def take(key: str) -> torch.Tensor:
        if key not in state:
            raise CheckpointError(f"transformers checkpoint lacks tensor '{key}' (expected for encoder '{encoder}')")
        return state[key]

    out = {}
    for ours, theirs in _hf_key_pairs(encoder):
        if theirs == "backbone.embeddings.mask_token" and theirs not in state:
            out[ours] = torch.zeros(1, spec.embed_dim)  # pre-training only; some exports drop it
        else:
            out[ours] = take(theirs)
    for i in range(spec.depth):
        for p in ("weight", "bias"):
            parts = [take(f"backbone.encoder.layer.{i}.attention.attention.{n}.{p}") for n in ("query", "key", "value")]
            out[f"pretrained.blocks.{i}.attn.qkv.{p}"] = torch.cat(parts, dim=0)
    return out


def _is_hf_naming(state: dict[str, torch.Tensor]) -> bool:
    return any(k.startswith("backbone.embeddings.") for k in state)


# ---------------------------------------------------------------------------------------------------------------
# reading files


def _check_shapes(state: dict[str, torch.Tensor], encoder: str, path: Path) -> dict[str, torch.Tensor]:
    """Verify keys and shapes against the encoder; name the first mismatch and the encoder that would fit."""
    expected = expected_shapes(encoder)
    for key, shape in expected.items():
        if key in state and tuple(state[key].shape) != shape:
            fits = _encoder_that_fits(state)
            hint = (f"; the checkpoint's shapes fit encoder '{fits}': pass encoder='{fits}'" if fits
                    else "; its shapes fit none of " + ", ".join(ENCODERS))
            raise CheckpointError(
                f"{path} does not fit encoder '{encoder}': first mismatching tensor '{key}' has shape "
                f"{tuple(state[key].shape)}, expected {shape}{hint}"
            )
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        fits = _encoder_that_fits(state)
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing tensor(s), first: {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensor(s), first: {', '.join(unexpected[:3])}")
        hint = f"; its shapes fit encoder '{fits}'" if fits and fits != encoder else ""
        raise CheckpointError(
            f"{path} is not a Depth-Anything-V2 '{encoder}' checkpoint: {'; '.join(parts)}{hint}"
        )
    return {k: state[k].float() for k in expected}


def _encoder_that_fits(state: dict[str, torch.Tensor]) -> str | None:
    for name in ENCODERS:
        shapes = expected_shapes(name)
        if shapes.keys() == state.keys() and all(tuple(state[k].shape) == s for k, s in shapes.items()):
            return name
    return None


def _load_hf_folder(folder: Path, encoder: str | None) -> LoadedCheckpoint:
    config_path, weights_path = folder / HF_CONFIG, folder / HF_WEIGHTS
    for needed in (config_path, weights_path):
        if not needed.is_file():
            raise CheckpointError(f"transformers checkpoint folder {folder} lacks {needed.name}")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot parse {config_path}: {exc}") from None
    hidden = config.get("backbone_config", {}).get("hidden_size")
    by_dim = {spec.embed_dim: name for name, spec in ENCODERS.items()}
    if encoder is None:
        if hidden not in by_dim:
            raise CheckpointError(f"{config_path}: backbone hidden_size {hidden} matches no encoder; pass encoder")
        encoder = by_dim[hidden]
    if hidden in by_dim and by_dim[hidden] != encoder:
        raise CheckpointError(
            f"{folder} holds a '{by_dim[hidden]}' model (backbone hidden_size {hidden}) but encoder '{encoder}' "
            f"was requested: pass encoder='{by_dim[hidden]}'"
        )
    kind = config.get("depth_estimation_type", RELATIVE)
    max_depth = float(config["max_depth"]) if kind == METRIC and config.get("max_depth") else None
    state = _check_shapes(from_hf_state_dict(read_safetensors(weights_path), encoder), encoder, weights_path)
    return LoadedCheckpoint(state, encoder, folder, kind, max_depth)


def load_file(path: str | os.PathLike, encoder: str | None = None) -> LoadedCheckpoint:
    """Load a .pth/.pt/.safetensors file or a transformers folder as an official-named float32 state_dict.

    With `encoder` None the encoder is the one whose shapes the file fits (the shapes tell it unambiguously).
    """
    path = Path(path).expanduser()
    if encoder is not None:
        encoder_spec(encoder)
    if path.is_dir():
        return _load_hf_folder(path, encoder)
    if path.suffix not in PICKLE_SUFFIXES + (SAFETENSORS_SUFFIX,):
        if not path.exists():
            raise unknown_checkpoint_error(str(path))
        raise CheckpointError(
            f"unsupported checkpoint type '{path.suffix or path.name}' for {path}: expected a .pth/.pt file "
            f"(torch.save state_dict), a .safetensors file, a transformers folder with {HF_CONFIG} and "
            f"{HF_WEIGHTS}, or a variant name ({', '.join(CHECKPOINTS)})"
        )
    if not path.is_file():
        raise missing_file_error(path)
    raw = read_safetensors(path) if path.suffix == SAFETENSORS_SUFFIX else unwrap_state_dict(read_pickle(path))
    if encoder is None:
        encoder = _detect_encoder(raw, path)
    if _is_hf_naming(raw):
        raw = from_hf_state_dict(raw, encoder)
    state = _check_shapes(raw, encoder, path)
    try:
        meta = read_meta(path) or {}
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    if meta and meta["encoder"] != encoder:
        raise CheckpointError(f"{path} holds a '{encoder}' model but its metadata says '{meta['encoder']}'")
    return LoadedCheckpoint(state, encoder, path, meta.get("kind"), meta.get("max_depth"))


def _detect_encoder(raw: dict[str, torch.Tensor], path: Path) -> str:
    """Pick the encoder whose width equals the class token width (official or transformers names)."""
    token = raw.get("pretrained.cls_token", raw.get("backbone.embeddings.cls_token"))
    by_dim = {spec.embed_dim: name for name, spec in ENCODERS.items()}
    if token is None or token.shape[-1] not in by_dim:
        raise CheckpointError(f"{path} is not a Depth-Anything-V2 checkpoint: no class token of width "
                              f"{'/'.join(str(d) for d in by_dim)} (pretrained.cls_token)")
    return by_dim[token.shape[-1]]


# ---------------------------------------------------------------------------------------------------------------
# variant names through the Hugging Face cache


def load_checkpoint(source: str | os.PathLike | Mapping[str, torch.Tensor], encoder: str | None = None,
                    cache_dir: str | os.PathLike | None = None, download: bool = True) -> LoadedCheckpoint:
    """Load a variant name, a path or an in-memory state_dict; the encoder defaults to the variant's or the shapes'."""
    if isinstance(source, Mapping):
        state = unwrap_state_dict(dict(source))
        encoder = encoder or _detect_encoder(state, Path("<state_dict>"))
        return LoadedCheckpoint(_check_shapes(state, encoder, Path("<state_dict>")), encoder, Path("<state_dict>"),
                                None, None)
    if isinstance(source, str) and source in CHECKPOINTS:
        spec = CHECKPOINTS[source]
        if encoder is not None and encoder != spec.encoder:
            raise CheckpointError(
                f"checkpoint '{source}' is a '{spec.encoder}' model but encoder '{encoder}' was requested")
        loaded = load_file(resolve_variant(source, cache_dir, download), spec.encoder)
        return LoadedCheckpoint(loaded.state_dict, spec.encoder, loaded.path, spec.kind, spec.max_depth)
    return load_file(source, encoder)


def load_state_dict(source: str | os.PathLike | Mapping[str, torch.Tensor],
                    encoder: str | None = None) -> dict[str, torch.Tensor]:
    """Official-named float32 state_dict from a variant name, a .pth/.pt/.safetensors file or a transformers folder."""
    return load_checkpoint(source, encoder).state_dict


def unwrap_state_dict(obj: dict) -> dict[str, torch.Tensor]:
    """Accept a bare state_dict, a training checkpoint {'model': ...} / {'state_dict': ...}, and DDP prefixes."""
    for key in ("model", "state_dict"):
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    state = {}
    for k, v in obj.items():
        if isinstance(v, torch.Tensor):
            state[k[len("module."):] if k.startswith("module.") else k] = v
    return state
