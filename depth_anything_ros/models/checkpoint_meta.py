"""Metadata beside a fine-tuned checkpoint: `NAME.json` next to `NAME.pth` tells encoder, head kind and max_depth.

The .pth stays a plain official state_dict (what the official run.py loads); the JSON lets this package load it by
path alone. A JSON of the same name without our `format` key is someone else's file and is ignored.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

FORMAT = "depth_anything_ros.checkpoint/1"
KINDS = ("metric", "relative")


def meta_path(checkpoint: str | os.PathLike) -> Path:
    """Return the metadata file of a checkpoint file: the same name with .json."""
    return Path(checkpoint).with_suffix(".json")


def write_meta(checkpoint: str | os.PathLike, encoder: str, max_depth: float, **extra) -> Path:
    """Write the metadata of a metric checkpoint atomically (temporary file, then rename); returns its path."""
    path = meta_path(checkpoint)
    content = {"format": FORMAT, "encoder": encoder, "kind": "metric", "max_depth": float(max_depth), **extra}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(content, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def read_meta(checkpoint: str | os.PathLike) -> dict | None:
    """Our metadata of a checkpoint file, or None without one; ValueError naming the file when it is damaged."""
    path = meta_path(checkpoint)
    if Path(checkpoint).suffix == ".json" or not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the checkpoint metadata {path}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return None
    depth = meta.get("max_depth")
    if meta.get("kind") not in KINDS or not isinstance(meta.get("encoder"), str) or (
            meta["kind"] == "metric" and not (isinstance(depth, (int, float)) and math.isfinite(depth) and depth > 0)):
        raise ValueError(f"checkpoint metadata {path} is damaged: need encoder, kind metric|relative and a positive "
                         "max_depth for metric")
    return meta
