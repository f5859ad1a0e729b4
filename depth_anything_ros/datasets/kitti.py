"""KITTI depth (the depth prediction / completion benchmark): 16-bit PNGs, metres = value / 256, 0 = invalid.

Two layouts, as the benchmark ships them:
- `val_selection_cropped` (and its like): image/, groundtruth_depth/ and intrinsics/ side by side; a depth
  `..._groundtruth_depth_FRAME_image_0X.png` belongs to the image `..._image_FRAME_image_0X.png` and the K in
  `intrinsics/..._image_FRAME_image_0X.txt` (9 numbers, row major); split 'val'.
- the annotated depth inside the raw tree: DATE/DRIVE_sync/proj_depth/groundtruth/image_0X/FRAME.png beside the raw
  DATE/DRIVE_sync/image_0X/data/FRAME.png, intrinsics from P_rect_0X of DATE/calib_cam_to_cam.txt; a 'train' or
  'val' folder on the path is the split.
Protocol: the Garg crop and 0.001 .. 80 m.
"""

from __future__ import annotations

from pathlib import Path

from depth_anything_ros.datasets.base import (
    Dataset,
    DatasetError,
    Protocol,
    Sample,
    read_intrinsics_file,
    read_png16,
    read_rgb,
    scaled_depth,
)

PROTOCOL = Protocol("kitti", min_depth=0.001, max_depth=80.0, crop="garg")
GT_MARK, IMAGE_MARK = "_groundtruth_depth_", "_image_"


def detect(root: Path) -> bool:
    """Say whether root is a val_selection_cropped-like folder or a tree with proj_depth/groundtruth."""
    return root.is_dir() and ((root / "groundtruth_depth").is_dir() and (root / "image").is_dir()
                              or any(root.glob("**/proj_depth/groundtruth")))


def read_calibration(path: Path, camera: str) -> tuple[float, float, float, float]:
    """Read fx fy cx cy of P_rect_<camera> (a 3x4 row-major projection) in calib_cam_to_cam.txt."""
    try:
        lines = dict(line.split(":", 1) for line in path.read_text().splitlines() if ":" in line)
        p = [float(v) for v in lines[f"P_rect_{camera}"].split()]
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(f"cannot read P_rect_{camera} from {path}: {exc!r}") from None
    if len(p) != 12:
        raise DatasetError(f"{path}: P_rect_{camera} must have 12 numbers, got {len(p)}")
    return p[0], p[5], p[2], p[6]


def open_kitti(root: Path) -> Dataset:
    """Pair every ground-truth depth with its image and intrinsics."""
    rows = _selection(root) if (root / "groundtruth_depth").is_dir() else _tree(root)
    if not rows:
        raise DatasetError(f"{root}: no KITTI ground-truth depth PNG found")
    names = [name for name, *_ in rows]

    def load(index: int) -> Sample:
        name, image, depth, intrinsics, _ = rows[index]
        return Sample(name, read_rgb(image), scaled_depth(read_png16(depth), 1.0 / 256.0), intrinsics())

    return Dataset("kitti", root, names, [split for *_, split in rows], PROTOCOL, load)


def _selection(root: Path) -> list[tuple]:
    rows = []
    for depth in sorted((root / "groundtruth_depth").glob("*.png")):
        if GT_MARK not in depth.name:
            raise DatasetError(f"{depth}: expected a name like DRIVE{GT_MARK}FRAME_image_02.png")
        stem = depth.stem.replace(GT_MARK, IMAGE_MARK, 1)
        image, calib = root / "image" / f"{stem}.png", root / "intrinsics" / f"{stem}.txt"
        if not image.is_file():
            raise DatasetError(f"{depth}: its image {image} is missing")
        rows.append((stem, image, depth, lambda calib=calib: read_intrinsics_file(calib), "val"))
    return rows


def _tree(root: Path) -> list[tuple]:
    rows = []
    for depth in sorted(root.glob("**/proj_depth/groundtruth/image_0[23]/*.png")):
        drive, camera = depth.parents[3], depth.parent.name  # DRIVE_sync, image_0X
        image = drive / camera / "data" / depth.name
        if not image.is_file():
            raise DatasetError(f"{depth}: its raw image {image} is missing (unpack the raw drive beside it)")
        calib = drive.parent / "calib_cam_to_cam.txt"
        parts = depth.relative_to(root).parts
        split = "train" if "train" in parts else "val" if "val" in parts else ""
        rows.append((f"{drive.name}/{camera}/{depth.stem}", image, depth,
                     lambda calib=calib, cam=camera[-2:]: read_calibration(calib, cam), split))
    return rows
