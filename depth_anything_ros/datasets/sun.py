"""SUN RGB-D: a folder per scene with image/, depth_bfx/ (or raw depth/) and intrinsics.txt (3x3 K, row major).

The depth PNGs hold millimetres bit-rotated by three: the toolbox's read3dPoints.m decodes a pixel v as
(v >> 3) | (v << 13) in 16 bits, divides by 1000 and caps at 8 m (values above become 8). 0 is no measurement.
The official train/test split is allsplit.mat of the toolbox (MATLAB, not read); scenes get no split here.
Protocol: 0.001 .. 8 m, no crop (frames differ in size by sensor).
"""

from __future__ import annotations

from pathlib import Path

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
)

PROTOCOL = Protocol("sun", min_depth=0.001, max_depth=8.0)
CAP_M = 8.0  # read3dPoints.m: depthInpaint(depthInpaint > 8) = 8


def decode_depth(raw: np.ndarray) -> np.ndarray:
    """(H,W) uint16 bit-rotated millimetres -> (H,W) float32 metres capped at 8, NaN where the PNG holds 0."""
    rotated = (raw >> np.uint16(3)) | (raw << np.uint16(13))  # uint16 arithmetic drops the bits shifted out
    depth = np.minimum(rotated.astype(np.float32) / 1000.0, np.float32(CAP_M))
    depth[rotated == 0] = np.nan
    return depth


def scenes(root: Path) -> list[Path]:
    """Scene folders below the root (or the root itself): those with intrinsics.txt and image/."""
    found = [p.parent for p in sorted(root.rglob("intrinsics.txt")) if (p.parent / "image").is_dir()]
    return found


def detect(root: Path) -> bool:
    """Say whether some folder below root has with intrinsics.txt, image/ and depth_bfx/ or depth/."""
    return any((s / "depth_bfx").is_dir() or (s / "depth").is_dir() for s in scenes(root))


def _only(folder: Path, suffixes: tuple[str, ...]) -> Path:
    files = listing(folder, suffixes) if folder.is_dir() else []
    if len(files) != 1:
        raise DatasetError(f"{folder}: expected exactly one file, found {len(files)}")
    return files[0]


def open_sun(root: Path) -> Dataset:
    """Every scene below root, one sample each."""
    found = scenes(root)
    if not found:
        raise DatasetError(f"{root}: no SUN RGB-D scene (a folder with image/, depth_bfx/ and intrinsics.txt)")
    names = [str(s.relative_to(root)) if s != root else s.name for s in found]

    def load(index: int) -> Sample:
        scene = found[index]
        depth_dir = scene / "depth_bfx" if (scene / "depth_bfx").is_dir() else scene / "depth"
        rgb = read_rgb(_only(scene / "image", IMAGE_SUFFIXES))
        depth = decode_depth(read_png16(_only(depth_dir, (".png",))))
        return Sample(names[index], rgb, depth, read_intrinsics_file(scene / "intrinsics.txt"))

    return Dataset("sun", root, names, [""] * len(found), PROTOCOL, load)
