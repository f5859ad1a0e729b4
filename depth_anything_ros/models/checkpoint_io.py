"""Safe checkpoint reading all families share: safetensors, weights_only pickles, the Hub, synthetic marker, errors.

Importable without torch (torch loads when a file is read), so the command line can catch CheckpointError cheaply.
"""

from __future__ import annotations

import difflib
import os
import pickle
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from depth_anything_ros.models.checkpoint_meta import read_meta
from depth_anything_ros.models.variants import CHECKPOINTS, FORMAT_HF, CheckpointSpec

if TYPE_CHECKING:
    import torch

PICKLE_SUFFIXES = (".pth", ".pt")
SAFETENSORS_SUFFIX = ".safetensors"
HF_CONFIG = "config.json"
HF_WEIGHTS = "model.safetensors"
SYNTHETIC_KEY = "depth_anything_ros.synthetic"  # safetensors metadata of files write_synthetic_checkpoint made


class CheckpointError(Exception):
    """A checkpoint cannot be found, read or used; the message says why and what to do."""


def write_safetensors(path: Path, state: dict, metadata: dict[str, str]) -> None:
    """Write tensors as .safetensors with a new file's usual mode (safetensors itself creates files 0600)."""
    from safetensors.torch import save_file

    save_file(state, str(path), metadata=metadata)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def read_pickle(path: Path) -> dict:
    """torch.load with weights_only=True; code-running pickles and damaged files become CheckpointError."""
    import torch  # here, not at the top: the command line imports this module for its errors without torch

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
            f"cannot read {path}: the file is truncated or corrupt ({first_sentence(exc)}); download it again"
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
    if path.suffix == ".onnx":  # an exported network: its sidecar says (models/backends/sidecar.py)
        from depth_anything_ros.models.backends.sidecar import read_sidecar

        try:
            return read_sidecar(path).synthetic
        except ValueError:
            return False
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


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a .safetensors file on the CPU; a damaged file becomes CheckpointError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"cannot read {path}: the file is truncated or corrupt ({first_sentence(exc)}); download it again"
        ) from None


def first_sentence(exc: BaseException) -> str:
    """'Type: first sentence' of an exception message, without the library's long advice."""
    text = (str(exc).strip().splitlines() or [""])[0].split(". ")[0].rstrip(".")
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def unknown_checkpoint_error(name: str) -> CheckpointError:
    """Error for a name that is neither a variant nor an existing path: the closest variant names, then all of them."""
    by_lower = {n.lower(): n for n in CHECKPOINTS}
    close = [by_lower[n] for n in difflib.get_close_matches(name.lower(), by_lower, n=3, cutoff=0.6)]
    guess = f"did you mean {' or '.join(repr(n) for n in close)}? " if close else ""
    return CheckpointError(
        f"unknown checkpoint '{name}': no variant has that name and no such file or folder exists; {guess}"
        f"variant names: {', '.join(CHECKPOINTS)}; or pass a .pth/.pt/.safetensors file or a transformers folder"
    )


def missing_file_error(path: Path) -> CheckpointError:
    """Error for a checkpoint path that does not exist, with the download command of a known file name."""
    known = next((c for c in CHECKPOINTS.values() if c.filename == path.name and c.format != FORMAT_HF), None)
    hint = (f"; get it with: {known.download_command(str(path.parent))}" if known
            else "; pass an existing .pth/.pt/.safetensors file, a transformers folder, or a variant name such as "
                 "'hypersim-vits'")
    return CheckpointError(f"checkpoint file not found: {path}{hint}")


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
            raise _offline_error(spec, f"the download failed: {first_sentence(exc)}") from None
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
        return f"{url.hostname} is unreachable ({first_sentence(exc)})"
    return None


def _offline_error(spec: CheckpointSpec, why: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint '{spec.name}' ({spec.repo_id}: {', '.join(spec.files)}) is not in the Hugging Face cache and "
        f"{why}. On a machine with network run: {spec.download_command()} "
        f"(fills the cache), or {spec.download_command('checkpoints')} and pass the file or folder path"
    )
