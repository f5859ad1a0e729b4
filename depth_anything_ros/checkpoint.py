"""Safe checkpoint loading (official .pth, .safetensors, transformers folders, hub names) and synthetic weights."""

from __future__ import annotations

import difflib
import json
import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType

import torch

from .checkpoint_meta import read_meta
from .synthetic_weights import SYNTHETIC_KEY, synthetic_state_dict, write_synthetic_checkpoint  # noqa: F401 - kept here
from .variants import CHECKPOINTS, ENCODERS, FORMAT_HF, METRIC, RELATIVE, CheckpointSpec, encoder_spec

PICKLE_SUFFIXES = (".pth", ".pt")
SAFETENSORS_SUFFIX = ".safetensors"
HF_CONFIG = "config.json"
HF_WEIGHTS = "model.safetensors"


class CheckpointError(Exception):
    """A checkpoint cannot be found, read or used; the message says why and what to do."""


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
    from .model import DepthAnythingV2

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


def _read_pickle(path: Path) -> dict:
    """torch.load with weights_only=True; code-running pickles and damaged files become CheckpointError."""
    try:
        with warnings.catch_warnings():  # torch warns about pickles not written by torch.save; we judge them below
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).strip().splitlines()
        detail = next((ln for ln in reason if "GLOBAL" in ln or "Unsupported" in ln), reason[0] if reason else "")
        raise CheckpointError(
            f"refused to load {path}: it is not a plain tensor checkpoint and unpickling it could run code "
            f"(loaded with weights_only=True; {detail.strip()[:200]}). Only load files from sources you trust."
        ) from None
    except Exception as exc:  # noqa: BLE001 - a damaged pickle fails in any way the unpickler's stack allows
        raise CheckpointError(
            f"cannot read {path}: the file is truncated or corrupt ({_first_sentence(exc)}); download it again"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state_dict")
    return obj


def is_synthetic(path: str | os.PathLike) -> bool:
    """Return True for a .safetensors file write_synthetic_checkpoint made, or a file whose metadata says so.

    (Random weights; a bare .pth cannot say.) A checkpoint fine-tuned from synthetic weights is marked in its
    metadata (checkpoint_meta.py).
    """
    path = Path(path)
    if path.is_dir():
        path = path / HF_WEIGHTS
    try:
        if (read_meta(path) or {}).get("synthetic"):
            return True
    except ValueError:
        return False
    if path.suffix != SAFETENSORS_SUFFIX or not path.is_file():
        return False
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return SYNTHETIC_KEY in (handle.metadata() or {})
    except (SafetensorError, OSError, ValueError):
        return False


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"cannot read {path}: the file is truncated or corrupt ({_first_sentence(exc)}); download it again"
        ) from None


def _first_sentence(exc: BaseException) -> str:
    """'Type: first sentence' of an exception message, without the library's long advice."""
    text = (str(exc).strip().splitlines() or [""])[0].split(". ")[0].rstrip(".")
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _unwrap(obj: dict) -> dict[str, torch.Tensor]:
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


def unknown_checkpoint_error(name: str) -> CheckpointError:
    """Error for a name that is neither a variant nor an existing path: the closest variant names, then all of them."""
    by_lower = {n.lower(): n for n in CHECKPOINTS}
    close = [by_lower[n] for n in difflib.get_close_matches(name.lower(), by_lower, n=3, cutoff=0.6)]
    guess = f"did you mean {' or '.join(repr(n) for n in close)}? " if close else ""
    return CheckpointError(
        f"unknown checkpoint '{name}': no variant has that name and no such file or folder exists; {guess}"
        f"variant names: {', '.join(CHECKPOINTS)}; or pass a .pth/.pt/.safetensors file or a transformers folder"
    )


def _missing_file_error(path: Path) -> CheckpointError:
    known = next((c for c in CHECKPOINTS.values() if c.filename == path.name and c.format != FORMAT_HF), None)
    hint = (f"; get it with: {known.download_command(str(path.parent))}" if known
            else "; pass an existing .pth/.pt/.safetensors file, a transformers folder, or a variant name such as "
                 "'hypersim-vits'")
    return CheckpointError(f"checkpoint file not found: {path}{hint}")


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
    state = _check_shapes(from_hf_state_dict(_read_safetensors(weights_path), encoder), encoder, weights_path)
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
        raise _missing_file_error(path)
    raw = _read_safetensors(path) if path.suffix == SAFETENSORS_SUFFIX else _unwrap(_read_pickle(path))
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


def resolve_variant(name: str, cache_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Local path of a known checkpoint (file, or folder for -hf), from the hub cache or downloaded into it."""
    spec = CHECKPOINTS[name]
    from huggingface_hub import hf_hub_download

    paths = []
    for filename in spec.files:
        try:
            paths.append(Path(hf_hub_download(spec.repo_id, filename, cache_dir=cache_dir, local_files_only=True)))
            continue
        except Exception:  # noqa: BLE001 - any cache miss falls through to the download attempt
            pass
        if not download:
            raise _offline_error(spec, "downloading is switched off")
        unreachable = _hub_unreachable()
        if unreachable:
            raise _offline_error(spec, unreachable)
        try:
            paths.append(Path(hf_hub_download(spec.repo_id, filename, cache_dir=cache_dir)))
        except Exception as exc:  # noqa: BLE001 - network, auth and hub errors all mean "not available"
            raise _offline_error(spec, f"the download failed: {_first_sentence(exc)}") from None
    return paths[-1] if spec.format != FORMAT_HF else paths[-1].parent


def _hub_unreachable(timeout_s: float = 3.0) -> str | None:
    """Why the hub cannot be reached (HF_HUB_OFFLINE, no route), or None; saves huggingface_hub's long retries."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout_s).close()
    except OSError as exc:
        return f"{url.hostname} is unreachable ({_first_sentence(exc)})"
    return None


def _offline_error(spec: CheckpointSpec, why: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint '{spec.name}' ({spec.repo_id}: {', '.join(spec.files)}) is not in the Hugging Face cache and "
        f"{why}. On a machine with network run: {spec.download_command()} "
        f"(fills the cache), or {spec.download_command('checkpoints')} and pass the file or folder path"
    )


def load_checkpoint(source: str | os.PathLike | Mapping[str, torch.Tensor], encoder: str | None = None,
                    cache_dir: str | os.PathLike | None = None, download: bool = True) -> LoadedCheckpoint:
    """Load a variant name, a path or an in-memory state_dict; the encoder defaults to the variant's or the shapes'."""
    if isinstance(source, Mapping):
        state = _unwrap(dict(source))
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
