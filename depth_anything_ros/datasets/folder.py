"""Plain folders: rgb/NAME.(png|jpg|...) beside depth/NAME.(png|tif|tiff|npy), the same NAME for the same frame.

Depth: a 16-bit PNG holds millimetres (0 = no measurement), a TIFF float metres, an NPY float metres (NaN, inf and
values <= 0 invalid). One depth encoding per folder. Intrinsics: `intrinsics.txt` beside rgb/ (fx fy cx cy, or
the 3x3 K row major), else --fx --fy --cx --cy. A `split.txt` is not read: folders have no official split.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from depth_anything_ros.datasets.base import (
    IMAGE_SUFFIXES,
    Dataset,
    DatasetError,
    Protocol,
    Sample,
    listing,
    read_intrinsics_file,
    read_png16,
    read_rgb,
    scaled_depth,
)

DEPTH_SUFFIXES = (".png", ".tif", ".tiff", ".npy")
PROTOCOL = Protocol("folder", min_depth=0.001, max_depth=80.0)


def detect(root: Path) -> bool:
    """Say whether root is a folder with rgb/ and depth/ subfolders and no rgb.txt (that is a TUM sequence)."""
    return (root / "rgb").is_dir() and (root / "depth").is_dir() and not (root / "rgb.txt").is_file()


def read_depth(path: Path) -> np.ndarray:
    """(H,W) float32 metres, NaN invalid, of one depth file in a folder encoding."""
    suffix = path.suffix.lower()
    if suffix == ".png":
        return scaled_depth(read_png16(path), 0.001)
    if suffix in (".tif", ".tiff"):
        depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if depth is None:
            raise DatasetError(f"cannot read depth TIFF {path}: missing or damaged")
        if depth.ndim != 2 or depth.dtype not in (np.float32, np.float64):
            raise DatasetError(f"{path}: unknown depth encoding ({depth.dtype}, shape {depth.shape}); a depth TIFF "
                               "must be one channel of float metres")
    elif suffix == ".npy":
        try:
            depth = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read depth {path}: {exc}") from None
        if depth.ndim != 2 or depth.dtype.kind != "f":
            raise DatasetError(f"{path}: unknown depth encoding ({depth.dtype}, shape {depth.shape}); a depth .npy "
                               "must be a 2-D float array of metres")
    else:
        raise DatasetError(f"{path}: unknown depth encoding {path.suffix!r}; expected .png (16-bit mm), .tiff or "
                           ".npy (float metres)")
    depth = depth.astype(np.float32)
    with np.errstate(invalid="ignore"):
        depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


def open_folder(root: Path) -> Dataset:
    """Pair rgb/ and depth/ by file stem; DatasetError for unpaired, mixed or empty folders."""
    rgbs = {p.stem: p for p in listing(root / "rgb", IMAGE_SUFFIXES)}
    depths = {}
    for path in sorted((root / "depth").iterdir()):
        if path.is_file():
            if path.suffix.lower() not in DEPTH_SUFFIXES:
                raise DatasetError(f"{path}: unknown depth encoding {path.suffix!r}; expected .png (16-bit mm), "
                                   ".tiff or .npy (float metres)")
            depths[path.stem] = path
    if not rgbs or not depths:
        raise DatasetError(f"{root}: rgb/ has {len(rgbs)} image(s) and depth/ {len(depths)} depth file(s); both "
                           "need some")
    kinds = sorted({".tiff" if p.suffix.lower() == ".tif" else p.suffix.lower() for p in depths.values()})
    if len(kinds) > 1:
        raise DatasetError(f"{root}/depth mixes depth encodings {', '.join(kinds)}; use one per folder")
    unpaired = sorted(set(rgbs) ^ set(depths))
    if unpaired:
        side = "rgb/" if unpaired[0] in rgbs else "depth/"
        raise DatasetError(f"{root}: {len(unpaired)} file(s) without a partner of the same name, e.g. "
                           f"{side}{unpaired[0]}; rgb/ and depth/ must hold the same names")
    intrinsics = read_intrinsics_file(root / "intrinsics.txt") if (root / "intrinsics.txt").is_file() else None
    names = sorted(rgbs)

    def load(index: int) -> Sample:
        name = names[index]
        return Sample(name, read_rgb(rgbs[name]), read_depth(depths[name]), intrinsics)

    return Dataset("folder", root, names, [""] * len(names), PROTOCOL, load)
