"""NYU Depth V2 in its three common layouts.

- Per-sample HDF5 (the sparse-to-dense / FastDepth conversion the metric fine-tuning walkthroughs use): *.h5 files
  below the root, each with `rgb` (3, H, W) uint8 and `depth` (H, W) float metres; a `train` or `val` folder on a
  file's path is its split (val is the official 654-image test set).
- The official labeled file `nyu_depth_v2_labeled.mat` (MATLAB v7.3 = HDF5): `images` (1449, 3, 640, 480) uint8 and
  `depths` (1449, 640, 480) float metres as h5py sees them, MATLAB's column-major (480, 640, 3, 1449) transposed;
  the official split is the toolbox's `splits.mat` beside it (MATLAB v5: `trainNdxs` 795 and `testNdxs` 654
  1-based indices, read with scipy); without that file the samples have no split.
- List file + PNG (BTS / ZoeDepth / Depth Anything metric_depth): a .txt whose lines are `RGB DEPTH [FOCAL]`, paths
  relative to the list file's folder, depth a 16-bit PNG of millimetres; the split is the list file's stem
  (nyudepthv2_test_files_with_gt -> test when the stem says test, train when it says train).

Intrinsics: the NYU toolbox's camera_params.m RGB camera (fx 518.8579, fy 519.4696, cx 325.5824, cy 253.7362) for
the 640x480 frames, scaled for other sizes. Protocol: the Eigen crop and 0.001 .. 10 m.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from depth_anything_ros.datasets.base import (
    Dataset,
    DatasetError,
    Protocol,
    Sample,
    read_png16,
    read_rgb,
    scaled_depth,
)

PROTOCOL = Protocol("nyu", min_depth=0.001, max_depth=10.0, crop="eigen")
CAMERA = (518.8579, 519.4696, 325.5824, 253.7362)  # camera_params.m fx_rgb fy_rgb cx_rgb cy_rgb at 640x480


def intrinsics_for(width: int, height: int) -> tuple[float, float, float, float]:
    """Return the NYU RGB intrinsics scaled from 640x480 to the frame's size."""
    sx, sy = width / 640.0, height / 480.0
    return CAMERA[0] * sx, CAMERA[1] * sy, CAMERA[2] * sx, CAMERA[3] * sy


def _h5py():
    import h5py  # only the HDF5 layouts need it

    return h5py


def labeled_mat(root: Path) -> Path | None:
    """Find the labeled .mat: the root itself or one nyu_depth_v2_labeled.mat in it."""
    if root.is_file() and root.suffix.lower() == ".mat":
        return root
    path = root / "nyu_depth_v2_labeled.mat"
    return path if path.is_file() else None


def list_file(root: Path) -> Path | None:
    """Find the list file: the root (a .txt) or the one .txt in it whose first line names two files."""
    if root.is_file():
        return root if root.suffix.lower() == ".txt" else None
    found = [p for p in sorted(root.glob("*.txt")) if _is_list(p)]
    return found[0] if len(found) == 1 else None


def _is_list(path: Path) -> bool:
    lines = [line.split() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return bool(lines) and len(lines[0]) in (2, 3) and (path.parent / lines[0][0].lstrip("/")).is_file()


def h5_files(root: Path) -> list[Path]:
    """Every .h5 below the root, sorted."""
    return sorted(root.rglob("*.h5")) if root.is_dir() else []


def detect(root: Path) -> bool:
    """Say whether root is a labeled .mat, a list file, or a tree of .h5 files."""
    return labeled_mat(root) is not None or list_file(root) is not None or bool(h5_files(root))


def open_nyu(root: Path) -> Dataset:
    """Open whichever NYU layout the root is (the .mat, then a list file, then .h5 files)."""
    if labeled_mat(root) is not None:
        return _open_mat(labeled_mat(root))
    if list_file(root) is not None:
        return _open_list(list_file(root))
    files = h5_files(root)
    if not files:
        raise DatasetError(f"{root}: no NYU Depth V2 layout found (nyu_depth_v2_labeled.mat, a list file or .h5 "
                           "files)")
    return _open_h5(root, files)


def _open_h5(root: Path, files: list[Path]) -> Dataset:
    h5py = _h5py()
    names = [str(p.relative_to(root).with_suffix("")) for p in files]
    parts = [p.relative_to(root).parts for p in files]
    splits = ["train" if "train" in s else "test" if ("val" in s or "test" in s) else "" for s in parts]

    def load(index: int) -> Sample:
        path = files[index]
        try:
            with h5py.File(path, "r") as h5:
                missing = [k for k in ("rgb", "depth") if k not in h5]
                if missing:
                    raise DatasetError(f"{path}: no dataset {' or '.join(missing)} (expected rgb (3, H, W) uint8 and "
                                       "depth (H, W) metres)")
                rgb, depth = np.asarray(h5["rgb"]), np.asarray(h5["depth"])
        except OSError as exc:
            raise DatasetError(f"cannot read {path} as HDF5: {exc}") from None
        if rgb.ndim != 3 or rgb.shape[0] != 3 or rgb.dtype != np.uint8:
            raise DatasetError(f"{path}: rgb must be (3, H, W) uint8, got {rgb.shape} {rgb.dtype}")
        if depth.dtype.kind != "f":
            raise DatasetError(f"{path}: unknown depth encoding {depth.dtype}; expected float metres")
        return Sample(names[index], np.ascontiguousarray(rgb.transpose(1, 2, 0)), _metres(depth),
                      intrinsics_for(rgb.shape[2], rgb.shape[1]))

    return Dataset("nyu", root, names, splits, PROTOCOL, load)


def _open_mat(path: Path) -> Dataset:
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as h5:
            shapes = {k: h5[k].shape for k in ("images", "depths") if k in h5}
    except OSError as exc:
        raise DatasetError(f"cannot read {path} as a MATLAB v7.3 (HDF5) file: {exc}") from None
    if set(shapes) != {"images", "depths"}:
        raise DatasetError(f"{path}: no 'images' and 'depths' in it; expected the labeled NYU Depth V2 .mat")
    count, channels, width, height = shapes["images"]
    if channels != 3 or shapes["depths"] != (count, width, height):
        raise DatasetError(f"{path}: images {shapes['images']} and depths {shapes['depths']} are not the labeled "
                           "layout (N, 3, W, H) and (N, W, H)")
    names = [f"{i + 1:04d}" for i in range(count)]  # MATLAB's 1-based index, as splits.mat counts
    splits = official_splits(path.parent / "splits.mat", count)

    def load(index: int) -> Sample:
        with h5py.File(path, "r") as h5:
            rgb = np.asarray(h5["images"][index]).transpose(2, 1, 0)  # (3, W, H) -> (H, W, 3)
            depth = np.asarray(h5["depths"][index]).T  # (W, H) -> (H, W)
        return Sample(names[index], np.ascontiguousarray(rgb), _metres(depth), intrinsics_for(width, height))

    return Dataset("nyu", path, names, splits, PROTOCOL, load)


def official_splits(path: Path, count: int) -> list[str]:
    """Split of each of `count` labeled samples from the toolbox's splits.mat ("train"/"test"), or "" without one."""
    if not path.is_file():
        return [""] * count
    from scipy.io import loadmat  # MATLAB v5; only this file needs it

    try:
        content = loadmat(path)
    except (OSError, ValueError, TypeError, NotImplementedError) as exc:
        raise DatasetError(f"cannot read {path} as the NYU toolbox's MATLAB splits file: {exc}") from None
    splits = [""] * count
    for key, split in (("trainNdxs", "train"), ("testNdxs", "test")):
        if key not in content:
            raise DatasetError(f"{path}: no {key} in it; expected the NYU toolbox's splits.mat")
        indices = np.asarray(content[key]).ravel()
        if indices.size and (not np.all(indices == np.round(indices)) or indices.min() < 1 or indices.max() > count):
            raise DatasetError(f"{path}: {key} holds indices outside 1..{count}, the labeled file's samples")
        for index in indices.astype(int) - 1:
            if splits[index]:
                raise DatasetError(f"{path}: sample {index + 1} is in both trainNdxs and testNdxs")
            splits[index] = split
    return splits


def _open_list(path: Path) -> Dataset:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        words = line.split()
        if not words:
            continue
        if len(words) not in (2, 3):
            raise DatasetError(f"{path}:{number}: expected 'RGB DEPTH [FOCAL]', got {line.strip()!r}")
        rows.append((path.parent / words[0].lstrip("/"), path.parent / words[1].lstrip("/")))
    stem = path.stem.lower()
    split = "test" if "test" in stem or "val" in stem else "train" if "train" in stem else ""
    names = [str(rgb.relative_to(path.parent).with_suffix("")) for rgb, _ in rows]

    def load(index: int) -> Sample:
        rgb_path, depth_path = rows[index]
        rgb = read_rgb(rgb_path)
        return Sample(names[index], rgb, scaled_depth(read_png16(depth_path), 0.001),
                      intrinsics_for(rgb.shape[1], rgb.shape[0]))

    return Dataset("nyu", path, names, [split] * len(rows), PROTOCOL, load)


def _metres(depth: np.ndarray) -> np.ndarray:
    depth = depth.astype(np.float32)
    with np.errstate(invalid="ignore"):
        depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth
