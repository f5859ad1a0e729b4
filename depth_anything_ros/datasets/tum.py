"""TUM RGB-D: a sequence folder with rgb.txt and depth.txt (lines `TIMESTAMP FILE`, '#' comments) and the PNGs.

Depth is a 16-bit PNG, 5000 units per metre, 0 = no measurement. RGB and depth are paired as the benchmark's
associate.py does: every pair closer than 0.02 s is a candidate, candidates are taken in order of rising time
difference, each frame used at most once, and the pairs sorted by RGB time. The intrinsics are the published ones
of the sequence's camera (freiburg1, 2, 3 from the folder name; the ROS default 525, 525, 319.5, 239.5 otherwise).
There is no per-frame split (train uses its time split). Protocol: 0.001 .. 10 m, no crop.
"""

from __future__ import annotations

import re
from pathlib import Path

from depth_anything_ros.datasets.base import Dataset, DatasetError, Protocol, Sample, read_png16, read_rgb, scaled_depth

PROTOCOL = Protocol("tum", min_depth=0.001, max_depth=10.0)
DEPTH_FACTOR = 5000.0
MAX_DIFFERENCE_S = 0.02  # associate.py --max_difference default
CAMERAS = {  # fx fy cx cy of the colour camera, from the dataset's file-formats page
    "freiburg1": (517.3, 516.5, 318.6, 255.3),
    "freiburg2": (520.9, 521.0, 325.1, 249.7),
    "freiburg3": (535.4, 539.2, 320.1, 247.6),
}
DEFAULT_CAMERA = (525.0, 525.0, 319.5, 239.5)


def detect(root: Path) -> bool:
    """Say whether root is a folder with rgb.txt and depth.txt."""
    return root.is_dir() and (root / "rgb.txt").is_file() and (root / "depth.txt").is_file()


def read_list(path: Path) -> dict[float, str]:
    """Read timestamp (s) -> file of a TUM list file."""
    entries = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        words = line.replace(",", " ").split()
        if not words or words[0].startswith("#"):
            continue
        try:
            entries[float(words[0])] = words[1]
        except (ValueError, IndexError):
            raise DatasetError(f"{path}:{number}: expected 'TIMESTAMP FILE', got {line.strip()!r}") from None
    return entries


def associate(first: list[float], second: list[float], max_difference: float = MAX_DIFFERENCE_S) -> list[tuple]:
    """Pair timestamps as (a, b), |a - b| < max_difference, greedy by rising difference, each used once."""
    candidates = sorted((abs(a - b), a, b) for a in first for b in second if abs(a - b) < max_difference)
    used_a, used_b, pairs = set(), set(), []
    for _, a, b in candidates:
        if a not in used_a and b not in used_b:
            used_a.add(a)
            used_b.add(b)
            pairs.append((a, b))
    return sorted(pairs)


def camera_of(root: Path) -> tuple[float, float, float, float]:
    """Return the published intrinsics of the sequence's camera, from 'freiburgN' in the folder name."""
    found = re.search(r"freiburg(\d)", root.resolve().name)
    return CAMERAS.get(f"freiburg{found.group(1)}", DEFAULT_CAMERA) if found else DEFAULT_CAMERA


def open_tum(root: Path) -> Dataset:
    """Associated (rgb, depth) pairs of one sequence."""
    rgb, depth = read_list(root / "rgb.txt"), read_list(root / "depth.txt")
    pairs = associate(list(rgb), list(depth))
    if not pairs:
        raise DatasetError(f"{root}: no rgb.txt / depth.txt timestamps within {MAX_DIFFERENCE_S} s of each other "
                           f"({len(rgb)} RGB, {len(depth)} depth entries)")
    camera = camera_of(root)
    names = [f"{a:.6f}" for a, _ in pairs]

    def load(index: int) -> Sample:
        a, b = pairs[index]
        return Sample(names[index], read_rgb(root / rgb[a]),
                      scaled_depth(read_png16(root / depth[b]), 1.0 / DEPTH_FACTOR), camera)

    return Dataset("tum", root, names, [""] * len(pairs), PROTOCOL, load)
