"""What every dataset reader gives: samples of (RGB, metric depth, intrinsics), a split per sample and a protocol.

Depth is float32 metres with NaN where the dataset marks it invalid (0 in every integer encoding here). Readers
check what they can without decoding every file when opened (names, pairing, sizes of the first sample) and the
rest as each sample loads; every problem is a DatasetError, one line naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

Intrinsics = tuple[float, float, float, float]  # fx, fy, cx, cy in pixels of the RGB image


class DatasetError(ValueError):
    """A dataset that cannot be read as asked: one line naming the file and what is wrong."""


@dataclass(frozen=True)
class Protocol:
    """Which ground-truth pixels count: depth range (metres) and the evaluation crop (none | eigen | garg)."""

    name: str
    min_depth: float
    max_depth: float
    crop: str = "none"

    def eval_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """(H,W) bool: the pixels inside the protocol's crop (all for none)."""
        height, width = shape
        mask = np.zeros(shape, bool)
        if self.crop == "none":
            mask[:] = True
        elif self.crop == "eigen":  # rows 45:471, columns 41:601 of 480x640 (Eigen et al. 2014), scaled to the size
            mask[round(45 * height / 480):round(471 * height / 480),
                 round(41 * width / 640):round(601 * width / 640)] = True
        elif self.crop == "garg":  # Garg et al. 2016, fractions of the KITTI image
            mask[int(0.40810811 * height):int(0.99189189 * height),
                 int(0.03594771 * width):int(0.96405229 * width)] = True
        else:
            raise ValueError(f"unknown crop {self.crop!r}")
        return mask

    def ground_truth(self, depth: np.ndarray) -> np.ndarray:
        """Copy of depth (H,W) metres with the pixels outside the crop set to NaN (invalid for every metric)."""
        out = depth.astype(np.float32, copy=True)
        out[~self.eval_mask(depth.shape)] = np.nan
        return out


@dataclass
class Sample:
    """One frame: rgb (H,W,3) uint8, depth (H,W) float32 metres (NaN invalid), intrinsics or None."""

    name: str
    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics | None


@dataclass
class Dataset:
    """A readable dataset: `names[i]` is sample i, `splits[i]` its official split ('' when the dataset has none)."""

    format: str
    root: Path
    names: list[str]
    splits: list[str]
    protocol: Protocol
    loader: object = field(repr=False)  # function index -> Sample

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int) -> Sample:
        """Read sample `index`, its sizes checked; DatasetError when a file cannot be used."""
        sample = self.loader(index)
        check_sizes(sample.name, sample.rgb, sample.depth)
        return sample

    def indices(self, split: str | None) -> list[int]:
        """Sample indices of one split (all for None); DatasetError for a split the dataset does not have."""
        if split is None:
            return list(range(len(self)))
        chosen = [i for i, s in enumerate(self.splits) if s == split]
        if not chosen:
            known = sorted({s for s in self.splits if s}) or ["none: use no --split"]
            raise DatasetError(f"{self.root}: no sample in split {split!r}; its splits: {', '.join(known)}")
        return chosen


def check_sizes(name: str, rgb: np.ndarray, depth: np.ndarray) -> None:
    """DatasetError unless rgb (H,W,3) and depth (H,W) have the same height and width."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise DatasetError(f"{name}: RGB must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if depth.ndim != 2 or rgb.shape[:2] != depth.shape:
        raise DatasetError(f"{name}: RGB {rgb.shape[1]}x{rgb.shape[0]} and depth "
                           f"{'x'.join(map(str, depth.shape[::-1]))} differ in size; depth must be registered to "
                           "the RGB image")


def read_rgb(path: Path) -> np.ndarray:
    """(H,W,3) uint8 RGB of an image file (8-bit colour or grey)."""
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if pixels is None:
        raise DatasetError(f"cannot read RGB image {path}: missing or not an image OpenCV decodes")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def read_png16(path: Path) -> np.ndarray:
    """(H,W) uint16 of a single-channel 16-bit PNG; DatasetError for any other encoding."""
    if path.suffix.lower() != ".png":
        raise DatasetError(f"{path}: unknown depth encoding {path.suffix!r}; expected a 16-bit PNG")
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise DatasetError(f"cannot read depth PNG {path}: missing or damaged")
    if pixels.dtype != np.uint16 or pixels.ndim != 2:
        channels = pixels.shape[2] if pixels.ndim == 3 else 1
        raise DatasetError(f"{path}: unknown depth encoding ({pixels.dtype}, {channels} channel(s)); expected a "
                           "single-channel 16-bit PNG")
    return pixels


def scaled_depth(raw: np.ndarray, metres_per_unit: float) -> np.ndarray:
    """(H,W) float32 metres of integer depth: raw * metres_per_unit, 0 (no measurement) as NaN."""
    depth = raw.astype(np.float32) * np.float32(metres_per_unit)
    depth[raw == 0] = np.nan
    return depth


def read_intrinsics_file(path: Path) -> Intrinsics:
    """Read fx fy cx cy from a text file of 4 numbers (fx fy cx cy) or 9 (the 3x3 K, row major)."""
    try:
        values = [float(v) for v in path.read_text().replace(",", " ").split()]
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read intrinsics {path}: {exc}") from None
    if len(values) == 9:
        values = [values[0], values[4], values[2], values[5]]
    if len(values) != 4 or not all(np.isfinite(values)) or values[0] <= 0 or values[1] <= 0:
        raise DatasetError(f"{path}: expected 4 numbers (fx fy cx cy) or 9 (3x3 K, row major) with fx, fy > 0")
    return tuple(values)


def listing(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files of folder (not recursive) with one of the suffixes (lower case compare), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff")
