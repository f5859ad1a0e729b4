"""Dataset formats by name, auto-detection from the path, and the one entry point `open_dataset`."""

from __future__ import annotations

from pathlib import Path

from depth_anything_ros.datasets import folder, kitti, nyu, sun, tum
from depth_anything_ros.datasets.base import Dataset, DatasetError, Intrinsics

# name -> (detect(root) -> bool, open(root) -> Dataset); detection tries the formats in this order
FORMATS = {
    "folder": (folder.detect, folder.open_folder),
    "nyu": (nyu.detect, nyu.open_nyu),
    "sun": (sun.detect, sun.open_sun),
    "tum": (tum.detect, tum.open_tum),
    "kitti": (kitti.detect, kitti.open_kitti),
}


def detect_format(root: Path) -> str:
    """Return the one format the path looks like; DatasetError for none, several, an empty folder or a missing path."""
    if not root.exists():
        raise DatasetError(f"dataset {root} does not exist")
    if root.is_dir() and not any(root.iterdir()):
        raise DatasetError(f"dataset {root} is an empty folder")
    found = [name for name, (detect, _) in FORMATS.items() if detect(root)]
    if not found:
        raise DatasetError(f"{root} is no dataset layout this reads (folder with rgb/ and depth/, NYU .h5/.mat/list "
                           "file, SUN RGB-D scenes, TUM rgb.txt+depth.txt, KITTI groundtruth_depth); see "
                           "docs/datasets.md")
    if len(found) > 1:
        raise DatasetError(f"{root} mixes dataset layouts ({', '.join(found)}); pass --format to pick one, or "
                           "separate them")
    return found[0]


def open_dataset(path: str | Path, format: str | None = None, intrinsics: Intrinsics | None = None) -> Dataset:
    """Open a dataset (auto-detected unless `format` is given); `intrinsics` override the dataset's own."""
    root = Path(path)
    if format is None:
        format = detect_format(root)
    elif format not in FORMATS:
        raise DatasetError(f"unknown dataset format {format!r}; expected one of {', '.join(FORMATS)}")
    elif not root.exists():
        raise DatasetError(f"dataset {root} does not exist")
    detect, open_format = FORMATS[format]
    if not detect(root):
        raise DatasetError(f"{root} does not look like a {format} dataset; see docs/datasets.md for its layout")
    dataset = open_format(root)
    if len(dataset) == 0:
        raise DatasetError(f"{root}: the {format} dataset has no samples")
    if intrinsics is not None:
        loader = dataset.loader

        def with_intrinsics(index: int):
            sample = loader(index)
            sample.intrinsics = intrinsics
            return sample

        dataset.loader = with_intrinsics
    return dataset


def is_dataset(path: Path) -> bool:
    """Whether a path looks like any dataset format (train: datasets beside bags; a bag has metadata.yaml)."""
    return path.exists() and not (path / "metadata.yaml").is_file() and any(d(path) for d, _ in FORMATS.values())


def add_dataset_options(p) -> None:
    """--format and the intrinsics override of commands that read datasets (evaluate, train)."""
    g = p.add_argument_group("datasets", "how DATASET paths are read (docs/datasets.md)")
    g.add_argument("--format", dest="dataset_format", choices=tuple(FORMATS),
                   help="dataset format (default: detected from each path's layout)")
    for name in ("fx", "fy", "cx", "cy"):
        g.add_argument(f"--{name}", type=float, help=f"{name} in pixels for every sample, over the dataset's own "
                                                     "(give all four)" if name == "fx" else None)


def dataset_intrinsics(args) -> Intrinsics | None:
    """Return fx fy cx cy from the flags, all four or none; DatasetError otherwise."""
    values = [args.fx, args.fy, args.cx, args.cy]
    if all(v is None for v in values):
        return None
    if any(v is None for v in values) or values[0] <= 0 or values[1] <= 0:
        raise DatasetError("give all of --fx --fy --cx --cy (fx, fy > 0), or none")
    return tuple(float(v) for v in values)
