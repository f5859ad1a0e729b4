"""What made a result: package version, model (checkpoint, its sha256, encoder, input size, precision, synthetic)."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import metadata
from pathlib import Path

from depth_anything_ros.models.checkpoint_io import HF_WEIGHTS, is_synthetic

SYNTHETIC_LABEL = "SYNTHETIC WEIGHTS"


def package_version() -> str:
    """Installed version of depth_anything_ros, or 'unknown' when running from an uninstalled checkout."""
    try:
        return metadata.version("depth_anything_ros")
    except metadata.PackageNotFoundError:
        return "unknown"


@cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str | None:
    """sha256 of a checkpoint file (of model.safetensors for a transformers folder); None when there is no file."""
    path = Path(path)
    if path.is_dir():
        path = path / HF_WEIGHTS
    if not path.is_file():
        return None
    stat = path.stat()
    return _sha256(path, stat.st_size, stat.st_mtime_ns)


def model_provenance(estimator, requested: str | None = None) -> dict:
    """Describe the model of a DepthEstimator as JSON-ready fields; `requested` is the name or path given."""
    path = Path(estimator.checkpoint_path)
    out = {"checkpoint": requested or str(path), "path": str(path), "sha256": file_sha256(path),
           "encoder": estimator.encoder, "max_depth": estimator.max_depth, "input_size": estimator.input_size,
           "precision": str(estimator.dtype).replace("torch.", ""), "device": str(estimator.device),
           "synthetic": bool(is_synthetic(path))}
    if estimator.needs_focal:  # DA3: no head scale, metres from each frame's focal length
        out.update(max_depth=None, scale="network output x focal / 300", sky=estimator.sky)
    if getattr(estimator, "temporal", False):  # VDA: relu head in metres, each frame attends to its camera's past
        out.update(max_depth=None, scale="relu head, metres", temporal="stream per camera")
    return out


def model_label(model: dict | None) -> str:
    """One line naming the model for figure titles and footers, loud when the weights are synthetic."""
    if model is None:
        return "recorded predictions"
    label = (f"{Path(model['checkpoint']).name} ({model['encoder']}, input {model['input_size']}, "
             f"{model['precision']})")
    return f"{SYNTHETIC_LABEL}: {label}" if model["synthetic"] else label
